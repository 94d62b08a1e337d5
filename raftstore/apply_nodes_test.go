package raftstore

import (
	"slices"
	"testing"

	"github.com/amld/amld/api"
)

func TestNodeDownRequeuesAndCountsPreemptions(t *testing.T) {
	h := newHarness(t)
	h.cluster("cpu", 4)
	for _, n := range []string{"n-1", "n-2", "n-3"} {
		h.readyNode(n, "cpu", size4)
	}
	h.submit("gang", "cpu", func(r *api.Run) {
		r.NodeCount = 2
		one := 1
		r.MaxPreemptions = &one
	})
	seq := h.run("gang").QueueSeq
	h.place("gang", "n-1", "n-2")
	h.mustReport("gang", "n-1", 0, running)

	h.must(MsgNodeDown, &NodeDownRequest{NodeID: "n-1", State: api.NodeUnusable, Reason: "missed heartbeats for 10s", Time: h.tick()})
	r := h.run("gang")
	checkRun(t, r, api.RunQueued, "requeued: node n-1 unusable: missed heartbeats for 10s")
	if r.Preemptions != 1 || r.Retries != 0 || r.QueueSeq != seq {
		t.Fatalf("preemptions %d retries %d seq %d (want %d)", r.Preemptions, r.Retries, r.QueueSeq, seq)
	}
	a := r.Current()
	if !a.Ended || a.Reason != "node n-1 unusable: missed heartbeats for 10s" || a.EndedAt != h.now {
		t.Fatalf("attempt %+v", a)
	}
	n1 := h.node("n-1")
	if n1.State != api.NodeUnusable || n1.Reason != "missed heartbeats for 10s" || n1.StateChangedAt != h.now {
		t.Fatalf("n-1 %s %q", n1.State, n1.Reason)
	}
	if n2 := h.node("n-2"); n2.State != api.NodeIdle || n2.IdleSince != h.now {
		t.Fatalf("the healthy gang member is %s since %v", n2.State, n2.IdleSince)
	}
	tg := h.st().Target("cpu")
	if tg.CurrentNodeCount != 2 || tg.NodeStateCounts.Unusable != 1 || tg.NodeStateCounts.Idle != 2 {
		t.Fatalf("target counts %d %+v", tg.CurrentNodeCount, tg.NodeStateCounts)
	}
	// The down node cannot be placed on.
	h.place("gang", "n-1", "n-3")
	if h.run("gang").State != api.RunQueued {
		t.Fatal("placed on an unusable node")
	}

	h.place("gang", "n-2", "n-3")
	h.must(MsgNodeDown, &NodeDownRequest{NodeID: "n-3", State: api.NodePreempted, Reason: "evicted", Time: h.tick()})
	r = h.run("gang")
	checkRun(t, r, api.RunFailed, "preempted 2 times, max_preemptions=1")
	if r.EndedAt != h.now || r.Preemptions != 2 {
		t.Fatalf("ended %v preemptions %d", r.EndedAt, r.Preemptions)
	}

	wantAPIError(t, h.apply(MsgNodeDown, &NodeDownRequest{NodeID: "n-2", State: api.NodeIdle, Time: h.tick()}), api.CodeInvalid)
	wantAPIError(t, h.apply(MsgNodeDown, &NodeDownRequest{NodeID: "n-9", State: api.NodeLeaving, Time: h.tick()}), api.CodeNotFound)
}

func TestNodeRemoveEndsAttemptsAndDropsCredential(t *testing.T) {
	h := newHarness(t)
	h.cluster("cpu", 4)
	h.readyNode("n-1", "cpu", size4)
	h.submit("r-1", "cpu", nil)
	h.place("r-1", "n-1")
	if c := h.st().Credential("tok-n-1"); c == nil || c.Kind != CredNode || c.Subject != "n-1" {
		t.Fatalf("credential %+v", c)
	}
	h.must(MsgNodeRemove, &NodeRemoveRequest{NodeID: "n-1", Reason: "deleted by the provider", Time: h.tick()})
	if h.st().Node("n-1") != nil || h.st().Credential("tok-n-1") != nil {
		t.Fatal("node or its credential survived removal")
	}
	checkRun(t, h.run("r-1"), api.RunQueued, "requeued: node n-1 removed: deleted by the provider")
	if tg := h.st().Target("cpu"); tg.CurrentNodeCount != 0 || tg.NodeStateCounts != (api.NodeStateCounts{}) {
		t.Fatalf("target counts after removal: %+v", tg.NodeStateCounts)
	}
	wantAPIError(t, h.apply(MsgNodeRemove, &NodeRemoveRequest{NodeID: "n-1", Time: h.tick()}), api.CodeNotFound)
}

func TestNodeRegister(t *testing.T) {
	h := newHarness(t)
	h.cluster("cpu", 4)
	h.must(MsgNodeCreate, &NodeCreateRequest{Node: &api.Node{ID: "n-1", Target: "cpu", CreatedAt: h.tick()}})
	n := h.node("n-1")
	if n.State != api.NodePreparing || n.StateChangedAt != h.now {
		t.Fatalf("created node %s changed %v", n.State, n.StateChangedAt)
	}
	if tg := h.st().Target("cpu"); tg.NodeStateCounts.Preparing != 1 || tg.CurrentNodeCount != 0 {
		t.Fatalf("counts %+v", tg.NodeStateCounts)
	}
	wantAPIError(t, h.apply(MsgNodeCreate, &NodeCreateRequest{Node: &api.Node{ID: "n-1", Target: "cpu"}}), api.CodeConflict)
	wantAPIError(t, h.apply(MsgNodeCreate, &NodeCreateRequest{Node: &api.Node{ID: "n-2", Target: "gpu"}}), api.CodeNotFound)

	reg := func(id, target, token string) error {
		return h.apply(MsgNodeRegister, &NodeRegisterRequest{
			NodeID: id, Target: target, TokenHash: token, Time: h.tick(), Capacity: size4,
			Register: api.RegisterRequest{Address: "10.0.0.1:7000", Hostname: "host", Version: "v1", Runtimes: []string{"process"}},
		})
	}
	if err := reg("n-1", "", "tok-a"); err != nil {
		t.Fatal(err)
	}
	n = h.node("n-1")
	if n.State != api.NodeIdle || n.IdleSince != h.now || n.RegisteredAt != h.now || n.Address != "10.0.0.1:7000" || n.Capacity != size4 {
		t.Fatalf("registered node %+v", n)
	}

	// Re-registration while an attempt holds the node keeps it running and
	// replaces the credential.
	h.submit("r-1", "cpu", nil)
	h.place("r-1", "n-1")
	if err := reg("n-1", "", "tok-b"); err != nil {
		t.Fatal(err)
	}
	if n := h.node("n-1"); n.State != api.NodeRunning {
		t.Fatalf("re-registered busy node is %s", n.State)
	}
	if got := runIDs(h.st().RunsOnNode("n-1")); !slices.Equal(got, []string{"r-1"}) {
		t.Fatalf("attempts lost on re-registration: %v", got)
	}
	if h.st().Credential("tok-a") != nil || h.st().Credential("tok-b") == nil {
		t.Fatal("credential not replaced")
	}

	// A hand-started agent joins the target it names.
	if err := reg("n-hand", "cpu", "tok-c"); err != nil {
		t.Fatal(err)
	}
	if n := h.node("n-hand"); n.Target != "cpu" || n.State != api.NodeIdle || n.CreateIndex != h.index {
		t.Fatalf("hand-started node %+v", n)
	}
	wantAPIError(t, reg("n-unknown", "", "tok-d"), api.CodeNotFound)
	wantAPIError(t, reg("n-x", "cpu", "tok-b"), api.CodeConflict) // another node's token

	// A node taken out of service must be replaced, not re-registered.
	h.must(MsgNodeDown, &NodeDownRequest{NodeID: "n-hand", State: api.NodeLeaving, Reason: "scale down", Time: h.tick()})
	wantAPIError(t, reg("n-hand", "", "tok-c"), api.CodeFailedPre)
}
