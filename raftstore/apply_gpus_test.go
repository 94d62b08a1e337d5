package raftstore

import (
	"testing"

	"github.com/amld/amld/api"
)

func TestNodeRegisteredUnusableGetsNoRunsAndEndsItsAttempts(t *testing.T) {
	h := newHarness(t)
	h.cluster("gpu", 4)
	h.must(MsgNodeCreate, &NodeCreateRequest{Node: &api.Node{ID: "n-1", Target: "gpu", VMSize: "gpu-2", CreatedAt: h.tick()}})
	why := "vm_size gpu-2 promises 2 GPUs; the agent found none: NVML library not found"
	h.must(MsgNodeRegister, &NodeRegisterRequest{
		NodeID: "n-1", TokenHash: "tok-1", Time: h.tick(), Capacity: size4, Unusable: why,
		Register: api.RegisterRequest{NodeID: "n-1", Address: "n-1:7000", GPUError: "NVML library not found"},
	})
	n := h.node("n-1")
	if n.State != api.NodeUnusable || n.Reason != why || n.RegisteredAt != h.now {
		t.Fatalf("node %s %q registered %v", n.State, n.Reason, n.RegisteredAt)
	}
	if h.st().Credential("tok-1") == nil {
		t.Fatal("the unusable node got no credential: its agent would keep registering")
	}
	if c := h.st().Target("gpu").NodeStateCounts; c.Unusable != 1 || c.Idle != 0 {
		t.Fatalf("counts %+v", c)
	}
	h.submit("r-1", "gpu", nil)
	h.place("r-1", "n-1")
	if r := h.run("r-1"); r.State != api.RunQueued {
		t.Fatalf("placed on an unusable node: %s", r.State)
	}

	// A ready node that re-registers short of GPUs loses its attempts as
	// after a lost node: the run goes back to the queue.
	h.readyNode("n-2", "gpu", size4, "GPU-a", "GPU-b")
	h.place("r-1", "n-2")
	h.must(MsgNodeRegister, &NodeRegisterRequest{
		NodeID: "n-2", TokenHash: "tok-2b", Time: h.tick(), Capacity: size4, Unusable: "vm_size gpu-2 promises 2 GPUs; the agent found 1",
		Register: api.RegisterRequest{NodeID: "n-2", Address: "n-2:7000", GPUs: []api.GPU{{UUID: "GPU-a"}}},
	})
	checkRun(t, h.run("r-1"), api.RunQueued, "requeued: node n-2 unusable: vm_size gpu-2 promises 2 GPUs; the agent found 1")
	if n := h.node("n-2"); n.State != api.NodeUnusable {
		t.Fatalf("n-2 is %s", n.State)
	}
}
