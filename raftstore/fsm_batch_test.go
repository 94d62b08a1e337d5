package raftstore

import (
	"strings"
	"testing"

	"github.com/amld/amld/api"
	"github.com/hashicorp/raft"
)

// TestRollbackTakesBackEveryWrite: an insert of a new record, an update
// and a delete, taken back inside a shared transaction, leave the state
// (every index included) as it was.
func TestRollbackTakesBackEveryWrite(t *testing.T) {
	h := newHarness(t)
	h.cluster("a", 2)
	h.submit("r-1", "a", nil)
	h.submit("r-2", "a", nil)
	before := dump(t, h.st())

	txn := h.f.db.Txn(true)
	a := &applier{txn: txn, index: h.index + 1, ids: h.f.ids}
	changed := *a.run("r-1")
	changed.State, changed.Target = api.RunCanceled, "b"
	a.putRun(&changed)
	a.putRun(&api.Run{ID: "r-3", RunSpec: api.RunSpec{Target: "a"}, State: api.RunQueued, QueueSeq: 99})
	a.remove(tableRuns, a.run("r-2"))
	a.putRun(&api.Run{ID: "r-3", RunSpec: api.RunSpec{Target: "b"}, State: api.RunQueued, QueueSeq: 100})
	if got := len(a.writes); got != 4 {
		t.Fatalf("%d writes journaled, want 4", got)
	}
	a.rollback()
	txn.Commit()
	h.f.publish(h.index)

	if after := dump(t, h.st()); after != before {
		t.Fatalf("rollback left another state:\n%s\nwant\n%s", after, before)
	}
	if got := runIDs(h.st().PendingRuns()); strings.Join(got, ",") != "r-1,r-2" {
		t.Fatalf("pending index %v after rollback", got)
	}
}

// TestApplyBatchRefusedEntryInTheMiddle: in one batch, a refused command
// between two good ones gets its error and changes nothing; the others
// apply, and non-command entries get nil.
func TestApplyBatchRefusedEntryInTheMiddle(t *testing.T) {
	h := newHarness(t)
	h.cluster("a", 2)
	enc := func(i uint64, mt MsgType, req any) *raft.Log {
		b, err := EncodeCommand(mt, req)
		if err != nil {
			t.Fatal(err)
		}
		return &raft.Log{Index: h.index + i, Type: raft.LogCommand, Data: b}
	}
	run := func(id, target string) *RunSubmitRequest {
		return &RunSubmitRequest{Run: &api.Run{ID: id, RunSpec: api.RunSpec{Target: target, Command: []string{"true"}, NodeCount: 1},
			Owner: "alice", SubmittedAt: t0}}
	}
	logs := []*raft.Log{
		enc(1, MsgRunSubmit, run("r-1", "a")),
		enc(2, MsgRunSubmit, run("r-2", "no-such-target")),
		{Index: h.index + 3, Type: raft.LogNoop},
		enc(4, MsgRunSubmit, run("r-3", "a")),
	}
	resps := h.f.ApplyBatch(logs)
	if resps[0] != nil || resps[2] != nil || resps[3] != nil {
		t.Fatalf("responses %v, want nil for entries 1, 3 and 4", resps)
	}
	if _, ok := resps[1].(error); !ok {
		t.Fatalf("entry 2 answered %v, want an error", resps[1])
	}
	st := h.st()
	if st.Index() != h.index+4 {
		t.Fatalf("state at index %d, want %d", st.Index(), h.index+4)
	}
	if st.Run("r-1") == nil || st.Run("r-2") != nil || st.Run("r-3") == nil {
		t.Fatalf("runs after the batch: r-1 %v, r-2 %v, r-3 %v", st.Run("r-1") != nil, st.Run("r-2") != nil, st.Run("r-3") != nil)
	}
}

// TestBatchEntryAnswersEachCommand: one MsgBatch entry of three submits,
// the middle one refused, answers one error per command; the others apply
// at the entry's index, queued in the entry's order.
func TestBatchEntryAnswersEachCommand(t *testing.T) {
	h := newHarness(t)
	h.cluster("a", 2)
	var cmds [][]byte
	for _, c := range []struct{ id, target string }{{"r-2", "a"}, {"r-x", "nope"}, {"r-1", "a"}} {
		b, err := EncodeCommand(MsgRunSubmit, &RunSubmitRequest{Run: &api.Run{ID: c.id,
			RunSpec: api.RunSpec{Target: c.target, Command: []string{"true"}, NodeCount: 1}, Owner: "alice", SubmittedAt: t0}})
		if err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, b)
	}
	index := h.index + 1
	resp := h.f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: encodeBatch(cmds)})
	errs, ok := resp.([]error)
	if !ok || len(errs) != 3 {
		t.Fatalf("response %#v, want 3 errors", resp)
	}
	if errs[0] != nil || errs[1] == nil || errs[2] != nil {
		t.Fatalf("errors %v, want only the second", errs)
	}
	st := h.st()
	r2, r1 := st.Run("r-2"), st.Run("r-1")
	if r2 == nil || r1 == nil || st.Run("r-x") != nil {
		t.Fatalf("runs r-2 %v, r-1 %v, r-x %v", r2 != nil, r1 != nil, st.Run("r-x") != nil)
	}
	if r2.CreateIndex != index || r1.CreateIndex != index || r2.QueueSeq != queueSeq(index, 0) || r1.QueueSeq != queueSeq(index, 2) {
		t.Fatalf("r-2 index %d seq %d, r-1 index %d seq %d", r2.CreateIndex, r2.QueueSeq, r1.CreateIndex, r1.QueueSeq)
	}
	if got := runIDs(st.PendingRuns()); strings.Join(got, ",") != "r-2,r-1" {
		t.Fatalf("queue order %v, want submit order r-2,r-1", got)
	}
	// A malformed batch is refused whole.
	if resp := h.f.Apply(&raft.Log{Index: index + 1, Type: raft.LogCommand, Data: []byte{byte(MsgBatch), 0xff}}); resp == nil {
		t.Fatal("a malformed batch was accepted")
	} else if _, ok := resp.(error); !ok {
		t.Fatalf("a malformed batch answered %#v, want an error", resp)
	}
}

// FuzzDecodeBatch: decodeBatch never panics, and what it accepts encodes
// back to an entry that decodes to the same commands.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(encodeBatch([][]byte{[]byte("a"), []byte("bc")}))
	f.Add([]byte{byte(MsgBatch)})
	f.Add([]byte{byte(MsgBatch), 0x80})
	f.Add([]byte{byte(MsgBatch), 0x05, 'x'})
	f.Fuzz(func(t *testing.T, b []byte) {
		cmds, err := decodeBatch(b)
		if err != nil {
			return
		}
		again, err := decodeBatch(encodeBatch(cmds))
		if err != nil || len(again) != len(cmds) {
			t.Fatalf("re-encoded batch: %v, %d commands of %d", err, len(again), len(cmds))
		}
		for i := range cmds {
			if string(again[i]) != string(cmds[i]) {
				t.Fatalf("command %d changed", i)
			}
		}
	})
}
