package raftstore

import (
	"strings"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

const evictReason = "evicted by the local provider (simulated eviction, 30s notice)"

// evictScene has run r-1 running on n-1 of a 2-node cluster.
func evictScene(t *testing.T, mod func(*api.Run)) *harness {
	h := newHarness(t)
	h.cluster("spot", 2)
	h.readyNode("n-1", "spot", size4)
	h.readyNode("n-2", "spot", size4)
	h.submit("r-1", "spot", mod)
	h.place("r-1", "n-1")
	h.mustReport("r-1", "n-1", 0, running)
	return h
}

func (h *harness) evict(node string, grace int) {
	h.t.Helper()
	h.must(MsgNodeEvict, &NodeEvictRequest{NodeID: node, Reason: evictReason, GraceSeconds: grace, Time: h.tick()})
}

func TestEvictionGivesNoticeThenRequeuesAsAPreemption(t *testing.T) {
	h := evictScene(t, nil)
	seq := h.run("r-1").QueueSeq
	h.evict("n-1", 30)
	n := h.node("n-1")
	if n.State != api.NodePreempted || n.Reason != evictReason || !n.EvictionDeadline.Equal(h.now.Add(30*time.Second)) {
		t.Fatalf("node %s %q deadline %v", n.State, n.Reason, n.EvictionDeadline)
	}
	why := "preempted: node n-1 " + evictReason
	r := h.run("r-1")
	checkRun(t, r, api.RunRunning, "stopping (grace 30s): "+why)
	if a := r.LiveAttempt(); a == nil || a.StopReason != why || a.StopGraceSeconds != 30 || !a.StopDeadline.Equal(n.EvictionDeadline) {
		t.Fatalf("attempt %+v, want it live and stopping", r.Current())
	}
	if tg := h.st().Target("spot"); tg.NodeStateCounts.Preempted != 1 || tg.CurrentNodeCount != 1 {
		t.Fatalf("target counts %+v current %d", tg.NodeStateCounts, tg.CurrentNodeCount)
	}
	// Nothing new lands on it; the report of the stop ends the attempt.
	h.submit("r-2", "spot", nil)
	h.place("r-2", "n-1")
	checkRun(t, h.run("r-2"), api.RunQueued, reasonSubmitted)

	st := exited(143)
	st.Stopped = true
	h.mustReport("r-1", "n-1", 0, st)
	r = h.run("r-1")
	checkRun(t, r, api.RunQueued, "requeued: "+why)
	a := r.Attempts[0]
	if !a.Ended || a.Reason != why || a.ExitCode == nil || *a.ExitCode != 143 {
		t.Fatalf("attempt ended=%v reason %q code %v", a.Ended, a.Reason, a.ExitCode)
	}
	if r.Preemptions != 1 || r.Retries != 0 || r.QueueSeq != seq {
		t.Fatalf("preemptions %d retries %d seq %d (want %d)", r.Preemptions, r.Retries, r.QueueSeq, seq)
	}
	if len(h.st().RunsOnNode("n-1")) != 0 {
		t.Fatal("the evicted node still holds work")
	}
	// A second notice is refused for a node that is gone from service.
	h.must(MsgNodeDown, &NodeDownRequest{NodeID: "n-1", State: api.NodeLeaving, Reason: "x", Time: h.tick()})
	wantAPIError(t, h.apply(MsgNodeEvict, &NodeEvictRequest{NodeID: "n-1", GraceSeconds: 1, Time: h.tick()}), api.CodeFailedPre)
	wantAPIError(t, h.apply(MsgNodeEvict, &NodeEvictRequest{NodeID: "n-9", Time: h.tick()}), api.CodeNotFound)
	wantAPIError(t, h.apply(MsgNodeEvict, &NodeEvictRequest{NodeID: "n-2", GraceSeconds: -1, Time: h.tick()}), api.CodeInvalid)
}

func TestCommandFinishingDuringTheNoticeCompletes(t *testing.T) {
	h := evictScene(t, nil)
	h.evict("n-1", 30)
	h.mustReport("r-1", "n-1", 0, exited(0)) // exited by itself, not stopped
	checkRun(t, h.run("r-1"), api.RunCompleted, "")

	// Exit code 0 after the agent's SIGTERM is no completion.
	h = evictScene(t, nil)
	h.evict("n-1", 30)
	st := exited(0)
	st.Stopped = true
	h.mustReport("r-1", "n-1", 0, st)
	if r := h.run("r-1"); r.State != api.RunQueued || r.Preemptions != 1 {
		t.Fatalf("run %s preemptions %d, want Queued after a stopped exit 0", r.State, r.Preemptions)
	}
}

func TestEvictionWithoutNoticeOrPastItEndsAttemptsAtOnce(t *testing.T) {
	h := evictScene(t, nil)
	h.evict("n-1", 0)
	r := h.run("r-1")
	checkRun(t, r, api.RunQueued, "requeued: preempted: node n-1 "+evictReason)
	if r.Attempts[0].Nodes[0].State != api.AttemptExited {
		t.Fatalf("node attempt %+v", r.Attempts[0].Nodes[0])
	}

	// The notice ran out: the leader evicts again without grace.
	h = evictScene(t, nil)
	h.evict("n-1", 30)
	h.must(MsgNodeEvict, &NodeEvictRequest{NodeID: "n-1", Reason: "ignored: the first reason stays", Time: h.tick()})
	r = h.run("r-1")
	if !strings.HasSuffix(r.Attempts[0].Reason, "(the machine was taken at the end of the notice)") || r.State != api.RunQueued {
		t.Fatalf("run %s, attempt reason %q", r.State, r.Attempts[0].Reason)
	}
	if n := h.node("n-1"); n.Reason != evictReason {
		t.Fatalf("node reason %q", n.Reason)
	}
}

func TestEvictionsPastMaxPreemptionsFailTheRun(t *testing.T) {
	one := 1
	h := evictScene(t, func(r *api.Run) { r.MaxPreemptions = &one })
	h.evict("n-1", 0)
	h.place("r-1", "n-2")
	h.evict("n-2", 5)
	st := exited(137)
	st.Stopped = true
	h.mustReport("r-1", "n-2", 0, st)
	r := h.run("r-1")
	checkRun(t, r, api.RunFailed, "preempted 2 times, max_preemptions=1")
	if r.Retries != 0 {
		t.Fatalf("retries %d", r.Retries)
	}
}

func TestPriorityPreemptionWithGraceStopsTheVictimFirst(t *testing.T) {
	h := newHarness(t)
	h.cluster("cpu", 1)
	h.readyNode("n-1", "cpu", size4)
	h.submit("low", "cpu", nil)
	h.submit("high", "cpu", func(r *api.Run) { r.Priority = 10; r.Request = size4 })
	h.place("low", "n-1")
	h.mustReport("low", "n-1", 0, running)
	plan := &PlanApplyRequest{Preemptions: []Preemption{{RunID: "low", By: "high", GraceSeconds: 10}}}
	plan.Time = h.tick()
	h.must(MsgPlanApply, plan)
	low := h.run("low")
	checkRun(t, low, api.RunRunning, "stopping (grace 10s): preempted by run high")
	deadline := low.LiveAttempt().StopDeadline
	// The same preemption again changes nothing.
	plan.Time = h.tick()
	h.must(MsgPlanApply, plan)
	if d := h.run("low").LiveAttempt().StopDeadline; !d.Equal(deadline) {
		t.Fatalf("deadline moved from %v to %v", deadline, d)
	}
	h.mustReport("low", "n-1", 0, exited(143))
	low = h.run("low")
	checkRun(t, low, api.RunQueued, "requeued: preempted by run high")
	if low.Preemptions != 1 || low.Attempts[0].Reason != "preempted by run high" {
		t.Fatalf("preemptions %d attempt reason %q", low.Preemptions, low.Attempts[0].Reason)
	}
	h.place("high", "n-1")
	checkRun(t, h.run("high"), api.RunPreparing, "")
}

func ckpt(id string, n int) *Blob {
	return &Blob{ID: id, Data: []byte(strings.Repeat("c", n))}
}

func TestCheckpointPutIsFencedAndKeepsOneBlobPerRun(t *testing.T) {
	h := newHarness(t)
	h.cluster("spot", 3)
	for _, n := range []string{"n-1", "n-2", "n-3"} {
		h.readyNode(n, "spot", size4)
	}
	h.submit("g", "spot", func(r *api.Run) { r.NodeCount = 2 })
	h.place("g", "n-1", "n-2")
	put := func(node string, attempt int, b *Blob) error {
		return h.apply(MsgCheckpointPut, &CheckpointPutRequest{NodeID: node, RunID: "g", Attempt: attempt, Blob: b, Time: h.tick()})
	}
	if err := put("n-1", 1, ckpt("ck-g-1", 10)); err != nil {
		t.Fatal(err)
	}
	r := h.run("g")
	if r.CheckpointID != "ck-g-1" || r.CheckpointSize != 10 || r.CheckpointAttempt != 1 || !r.CheckpointAt.Equal(h.now) {
		t.Fatalf("checkpoint fields %q %d %d %v", r.CheckpointID, r.CheckpointSize, r.CheckpointAttempt, r.CheckpointAt)
	}
	wantAPIError(t, put("n-2", 1, ckpt("ck-g-2", 10)), api.CodeFailedPre) // rank 1
	wantAPIError(t, put("n-3", 1, ckpt("ck-g-2", 10)), api.CodeFailedPre) // not in the attempt
	wantAPIError(t, put("n-1", 2, ckpt("ck-g-2", 10)), api.CodeFailedPre) // no such attempt
	wantAPIError(t, put("n-1", 1, ckpt("ck-g-2", api.MaxCheckpointBytes+1)), api.CodeTooLarge)
	wantAPIError(t, put("n-1", 1, nil), api.CodeInvalid)

	if err := put("n-1", 1, ckpt("ck-g-2", 20)); err != nil {
		t.Fatal(err)
	}
	if h.st().Blob("ck-g-1") != nil || h.st().Blob("ck-g-2") == nil || h.run("g").CheckpointID != "ck-g-2" {
		t.Fatal("the new checkpoint did not replace the old one")
	}
	// The attempt ends (its node is lost): its later uploads are refused,
	// and the next attempt restores ck-g-2.
	h.must(MsgNodeDown, &NodeDownRequest{NodeID: "n-2", State: api.NodeUnusable, Reason: "missed heartbeats", Time: h.tick()})
	wantAPIError(t, put("n-1", 1, ckpt("ck-g-3", 5)), api.CodeFailedPre)
	if h.run("g").CheckpointID != "ck-g-2" {
		t.Fatal("a late upload replaced the checkpoint")
	}
	h.place("g", "n-1", "n-3")
	h.mustReport("g", "n-1", 0, running)
	h.mustReport("g", "n-1", 0, exited(0))
	r = h.run("g")
	if r.State != api.RunCompleted || r.CheckpointID != "" || h.st().Blob("ck-g-2") != nil || r.CheckpointAttempt != 1 {
		t.Fatalf("run %s checkpoint %q attempt %d blob %v: want the blob dropped when the run ended",
			r.State, r.CheckpointID, r.CheckpointAttempt, h.st().Blob("ck-g-2") != nil)
	}
}

func TestPreemptionMessagesHaveRequestsAndNames(t *testing.T) {
	for _, mt := range []MsgType{MsgNodeEvict, MsgCheckpointPut} {
		newReq, ok := commandTypes[mt]
		if !ok || strings.HasPrefix(mt.String(), "MsgType(") || mt < 60 || mt > 69 {
			t.Fatalf("message type %d has no request or name, or is outside 60-69", mt)
		}
		if _, err := EncodeCommand(mt, newReq()); err != nil {
			t.Fatalf("%v: %v", mt, err)
		}
	}
}
