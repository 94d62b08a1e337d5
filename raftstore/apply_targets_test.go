package raftstore

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/amld/amld/api"
)

func TestDuplicatesAreConflicts(t *testing.T) {
	h := newHarness(t)
	h.must(MsgBootstrap, &BootstrapRequest{ClusterID: "c-1", AdminTokenHash: "admin-h", JoinTokenHash: "join-h", Time: h.tick()})
	if m := h.st().Meta(); m == nil || m.ClusterID != "c-1" || m.Bootstrapped != h.now {
		t.Fatalf("meta %+v", m)
	}
	if c := h.st().Credential("admin-h"); c == nil || c.Kind != CredUser || c.Subject != "admin" {
		t.Fatalf("admin credential %+v", c)
	}
	if c := h.st().Credential("join-h"); c == nil || c.Kind != CredJoin {
		t.Fatalf("join credential %+v", c)
	}
	wantAPIError(t, h.apply(MsgBootstrap, &BootstrapRequest{ClusterID: "c-2", AdminTokenHash: "x", JoinTokenHash: "y"}), api.CodeFailedPre)

	h.cluster("cpu", 4)
	err := h.apply(MsgTargetCreate, &TargetCreateRequest{Target: &api.Target{TargetSpec: api.TargetSpec{Name: "cpu", Type: api.KindCluster, MaxNodes: 2}}})
	e := wantAPIError(t, err, api.CodeConflict)
	if e.Status != http.StatusConflict || e.Message != `target "cpu" already exists` {
		t.Fatalf("status %d message %q", e.Status, e.Message)
	}

	h.must(MsgUserCreate, &UserCreateRequest{User: api.User{Name: "alice", Role: api.RoleUser, CreatedAt: h.tick()}, TokenHash: "alice-h"})
	wantAPIError(t, h.apply(MsgUserCreate, &UserCreateRequest{User: api.User{Name: "alice", Role: api.RoleUser}, TokenHash: "other"}), api.CodeConflict)
	if us := h.st().Users(); len(us) != 2 || us[0].Name != "admin" || us[1].Name != "alice" {
		t.Fatalf("users %v", us)
	}
}

func TestTargetCreateAndUpdate(t *testing.T) {
	h := newHarness(t)
	h.cluster("cpu", 4)
	tg := h.st().Target("cpu")
	if tg.ProvisioningState != api.ProvisioningSucceeded || tg.AllocationState != api.AllocationSteady || tg.CreateIndex != h.index {
		t.Fatalf("created target %+v", tg)
	}
	err := h.apply(MsgTargetCreate, &TargetCreateRequest{Target: &api.Target{TargetSpec: api.TargetSpec{Name: "bad", Type: api.KindCluster, MinNodes: 3, MaxNodes: 2}}})
	if e := wantAPIError(t, err, api.CodeInvalid); e.Field != "max_nodes" {
		t.Fatalf("field %q", e.Field)
	}

	two, five := 2, 5
	h.must(MsgTargetUpdate, &TargetUpdateRequest{Name: "cpu", Update: api.TargetUpdate{MinNodes: &two, MaxNodes: &five}, Time: h.tick()})
	if tg := h.st().Target("cpu"); tg.MinNodes != 2 || tg.MaxNodes != 5 || tg.UpdatedAt != h.now || tg.ModifyIndex != h.index {
		t.Fatalf("updated target %+v", tg)
	}
	zero := 0
	err = h.apply(MsgTargetUpdate, &TargetUpdateRequest{Name: "cpu", Update: api.TargetUpdate{MaxNodes: &zero}, Time: h.tick()})
	if e := wantAPIError(t, err, api.CodeInvalid); e.Field != "max_nodes" {
		t.Fatalf("field %q", e.Field)
	}
	wantAPIError(t, h.apply(MsgTargetUpdate, &TargetUpdateRequest{Name: "gpu"}), api.CodeNotFound)
}

func TestTargetScaleTracksAllocationState(t *testing.T) {
	h := newHarness(t)
	h.cluster("cpu", 4)
	h.must(MsgTargetScale, &TargetScaleRequest{Name: "cpu", TargetNodeCount: 2, Reason: "2 runs waiting", Time: h.tick()})
	tg := h.st().Target("cpu")
	if tg.TargetNodeCount != 2 || tg.ScaleReason != "2 runs waiting" || tg.AllocationState != api.AllocationResizing {
		t.Fatalf("scaled target %+v", tg)
	}
	h.must(MsgNodeCreate, &NodeCreateRequest{Node: &api.Node{ID: "n-1", Target: "cpu", CreatedAt: h.tick()}})
	if s := h.st().Target("cpu").AllocationState; s != api.AllocationResizing {
		t.Fatalf("1 of 2 nodes: %s", s)
	}
	h.readyNode("n-2", "cpu", size4)
	tg = h.st().Target("cpu")
	if tg.AllocationState != api.AllocationSteady || tg.CurrentNodeCount != 1 || tg.NodeStateCounts.Preparing != 1 {
		t.Fatalf("2 of 2 nodes: %+v", tg)
	}
	h.must(MsgNodeDown, &NodeDownRequest{NodeID: "n-1", State: api.NodeUnusable, Reason: "missed its provisioning deadline", Time: h.tick()})
	if s := h.st().Target("cpu").AllocationState; s != api.AllocationResizing {
		t.Fatalf("after a node went unusable: %s", s)
	}
}

func TestProvisioningResultKeepsLastErrors(t *testing.T) {
	h := newHarness(t)
	h.cluster("cpu", 4)
	for i := range api.MaxProvisioningErrors + 2 {
		h.must(MsgProvisioningResult, &ProvisioningResultRequest{Name: "cpu", Time: h.tick(),
			Error: &api.ProvisioningError{Code: "quota", Message: fmt.Sprintf("error %d", i)}})
	}
	tg := h.st().Target("cpu")
	if len(tg.ProvisioningErrors) != api.MaxProvisioningErrors || tg.ProvisioningErrors[0].Message != "error 2" {
		t.Fatalf("errors %+v", tg.ProvisioningErrors)
	}
	if last := tg.ProvisioningErrors[len(tg.ProvisioningErrors)-1]; last.Time != h.now {
		t.Fatalf("error time %v, want the request's", last.Time)
	}
	if tg.ProviderFailures != api.MaxProvisioningErrors+2 || tg.LastProviderFailure != h.now {
		t.Fatalf("failures %d at %v", tg.ProviderFailures, tg.LastProviderFailure)
	}
	h.must(MsgProvisioningResult, &ProvisioningResultRequest{Name: "cpu", Time: h.tick()})
	if tg := h.st().Target("cpu"); tg.ProviderFailures != 0 || len(tg.ProvisioningErrors) != api.MaxProvisioningErrors {
		t.Fatalf("after a success: failures %d, %d errors", tg.ProviderFailures, len(tg.ProvisioningErrors))
	}
}

func TestTargetDeleteCancelsItsRunsThenRemove(t *testing.T) {
	h := newHarness(t)
	h.cluster("cpu", 4)
	h.cluster("gpu", 4)
	h.readyNode("n-1", "cpu", size4)
	h.submit("waiting", "cpu", nil)
	h.submit("busy", "cpu", nil)
	h.submit("elsewhere", "gpu", nil)
	h.place("busy", "n-1")

	h.must(MsgTargetDelete, &TargetDeleteRequest{Name: "cpu", Time: h.tick()})
	if s := h.st().Target("cpu").ProvisioningState; s != api.ProvisioningDeleting {
		t.Fatalf("target %s", s)
	}
	checkRun(t, h.run("waiting"), api.RunCanceled, "target deleted")
	checkRun(t, h.run("busy"), api.RunCancelRequested, "target deleted")
	checkRun(t, h.run("elsewhere"), api.RunQueued, "waiting for the scheduler")
	if got := runIDs(h.st().RunsOfTarget("cpu")); len(got) != 2 {
		t.Fatalf("runs of cpu %v", got)
	}

	wantAPIError(t, h.apply(MsgTargetRemove, &TargetRemoveRequest{Name: "cpu"}), api.CodeFailedPre)
	wantAPIError(t, h.apply(MsgTargetRemove, &TargetRemoveRequest{Name: "gpu"}), api.CodeFailedPre) // not deleting
	h.must(MsgNodeDown, &NodeDownRequest{NodeID: "n-1", State: api.NodeLeaving, Reason: "target deleted", Time: h.tick()})
	checkRun(t, h.run("busy"), api.RunCanceled, "canceled")
	h.must(MsgNodeRemove, &NodeRemoveRequest{NodeID: "n-1", Time: h.tick()})
	h.must(MsgTargetRemove, &TargetRemoveRequest{Name: "cpu"})
	if h.st().Target("cpu") != nil {
		t.Fatal("target not removed")
	}
	if ts := h.st().Targets(); len(ts) != 1 || ts[0].Name != "gpu" {
		t.Fatalf("targets %v", ts)
	}
}
