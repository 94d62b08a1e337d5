package raftstore

import (
	"fmt"
	"testing"

	"github.com/amld/amld/api"
	"github.com/hashicorp/raft"
)

// BenchmarkFSMSubmitAndReason is the state machine's share of one submit
// during a burst, on every head: a batch entry of 64 RunSubmit commands,
// then the scheduler's plan giving those runs their wait reason, applied
// the way raft hands them over, into a state already holding 20,000
// queued runs. No disk, no network: ns/op is per submit.
func BenchmarkFSMSubmitAndReason(b *testing.B) {
	h := newHarness(b)
	h.cluster("cpu", 1)
	const batch = 64
	encode := func(t MsgType, req any) []byte {
		data, err := EncodeCommand(t, req)
		if err != nil {
			b.Fatal(err)
		}
		return data
	}
	n := 0
	next := func() ([]*raft.Log, uint64) {
		var cmds [][]byte
		plan := &PlanApplyRequest{Time: t0}
		for range batch {
			n++
			// IDs as the heads make them: a prefix and random letters.
			id := fmt.Sprintf("run-%010x", uint64(n)*0x9e3779b97f4a7c15>>24)
			cmds = append(cmds, encode(MsgRunSubmit, &RunSubmitRequest{Run: &api.Run{
				ID:      id,
				RunSpec: api.RunSpec{Target: "cpu", Command: []string{"python", "train.py", "--epochs", "10"}, NodeCount: 1},
				Owner:   "alice", Request: half, SubmittedAt: t0,
			}}))
			plan.Reasons = append(plan.Reasons, WaitReason{RunID: id, Reason: "waiting for a node: cpu is at max_nodes 1"})
		}
		h.index += 2
		return []*raft.Log{
			{Index: h.index - 1, Term: 1, Type: raft.LogCommand, Data: encodeBatch(cmds)},
			{Index: h.index, Term: 1, Type: raft.LogCommand, Data: encode(MsgPlanApply, plan)},
		}, h.index
	}
	for range 20000 / batch {
		logs, _ := next()
		h.f.ApplyBatch(logs)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		b.StopTimer()
		logs, _ := next()
		b.StartTimer()
		for _, resp := range h.f.ApplyBatch(logs) {
			if errs, ok := resp.([]error); ok {
				for _, err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
			} else if resp != nil {
				b.Fatal(resp)
			}
		}
	}
}
