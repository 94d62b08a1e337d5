package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/raftstore"
)

// mpiState is a state with a 2-node MPI run placed on n-1 and n-2 (n-3
// idle), made through the FSM as the head would.
func mpiState(t *testing.T) *raftstore.State {
	t.Helper()
	f := raftstore.NewFSM(nil)
	var index uint64
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	must := func(typ raftstore.MsgType, req any) {
		t.Helper()
		index++
		at = at.Add(time.Second)
		if err := f.ApplyCommand(index, typ, req); err != nil {
			t.Fatalf("apply %v: %v", typ, err)
		}
	}
	must(raftstore.MsgBootstrap, &raftstore.BootstrapRequest{ClusterID: "c", AdminTokenHash: "a", JoinTokenHash: "j", Time: at})
	must(raftstore.MsgTargetCreate, &raftstore.TargetCreateRequest{Target: &api.Target{
		TargetSpec: api.TargetSpec{Name: "cpu", Type: api.KindCluster, VMSize: "cpu-2", MaxNodes: 4, VMPriority: api.VMPriorityDedicated, Provider: "local"},
		CreatedAt:  at,
	}})
	capacity := api.Resources{CPUs: 2, MemoryMB: 8192}
	for i, id := range []string{"n-1", "n-2", "n-3"} {
		must(raftstore.MsgNodeCreate, &raftstore.NodeCreateRequest{Node: &api.Node{ID: id, Target: "cpu", VMSize: "cpu-2", CreatedAt: at}})
		must(raftstore.MsgNodeRegister, &raftstore.NodeRegisterRequest{NodeID: id, Capacity: capacity, TokenHash: "tok-" + id, Time: at,
			Register: api.RegisterRequest{NodeID: id, Address: "10.0.0." + string(rune('1'+i)), Capacity: capacity,
				HostKey: "ssh-ed25519 HOST-" + id, SSHPort: 2200 + i}})
	}
	spec := api.RunSpec{Target: "cpu", Command: []string{"./allreduce"}, NodeCount: 2, ProcessCountPerNode: 2, Distribution: api.DistributionMPI}
	key, err := newRunKey(&spec, "run-1", nil)
	if err != nil || key == nil {
		t.Fatalf("newRunKey = %v, %v; want a key for an MPI run", key, err)
	}
	must(raftstore.MsgRunSubmit, &raftstore.RunSubmitRequest{Run: &api.Run{RunSpec: spec, ID: "run-1", Request: capacity, SubmittedAt: at}, SSHKey: key})
	must(raftstore.MsgPlanApply, &raftstore.PlanApplyRequest{Time: at, Placements: []raftstore.Placement{{RunID: "run-1",
		Allocations: []api.Allocation{{NodeID: "n-1", Resources: capacity}, {NodeID: "n-2", Resources: capacity}}}}})
	must(raftstore.MsgAttemptStatus, &raftstore.AttemptStatusRequest{NodeID: "n-2", Time: at,
		Status: api.AttemptStatus{AttemptKey: api.AttemptKey{RunID: "run-1", Attempt: 1, NodeIndex: 1}, State: api.AttemptRunning}})
	return f.State()
}

func TestAssignmentsCarryTheRunsKeyToItsNodesOnly(t *testing.T) {
	st := mpiState(t)
	priv := st.RunKey("run-1").Private
	for i, node := range []string{"n-1", "n-2"} {
		resp := assignments(st, node, nil)
		if len(resp.Assignments) != 1 {
			t.Fatalf("%s has %d assignments, want 1", node, len(resp.Assignments))
		}
		a := resp.Assignments[0]
		if a.NodeIndex != i || a.SSH == nil || a.SSH.PrivateKey != priv || a.SSH.User != "run-1" || !strings.HasPrefix(a.SSH.PublicKey, "ssh-ed25519 ") {
			t.Fatalf("%s: assignment %+v; want the run's key under the run's ID", node, a)
		}
		want := []api.SSHPeer{
			{NodeID: "n-1", Host: "10.0.0.1", Port: 2200, HostKey: "ssh-ed25519 HOST-n-1"},
			{NodeID: "n-2", Host: "10.0.0.2", Port: 2201, HostKey: "ssh-ed25519 HOST-n-2"},
		}
		for j, p := range a.SSH.Peers {
			if p != want[j] {
				t.Errorf("%s: peer %d = %+v, want %+v (pinned from registration)", node, j, p, want[j])
			}
		}
		if strings.Join(a.PeerStates, ",") != "preparing,running" {
			t.Errorf("%s: peer states %v, want preparing,running", node, a.PeerStates)
		}
	}
	if resp := assignments(st, "n-3", nil); len(resp.Assignments) != 0 {
		t.Fatalf("a node outside the attempt got %+v", resp.Assignments)
	}
	b, _ := json.Marshal(st.Run("run-1"))
	if strings.Contains(string(b), "PRIVATE KEY") || strings.Contains(string(b), priv) {
		t.Errorf("the run as shown holds its private key: %s", b)
	}
}

func TestOnlyMultiNodeAndMPIRunsGetAKey(t *testing.T) {
	tests := []struct {
		spec api.RunSpec
		want bool
	}{
		{api.RunSpec{NodeCount: 1}, false},
		{api.RunSpec{NodeCount: 1, ProcessCountPerNode: 2, Distribution: api.DistributionMPI}, true},
		{api.RunSpec{NodeCount: 2, Distribution: api.DistributionNone}, true},
	}
	for _, tt := range tests {
		k, err := newRunKey(&tt.spec, "r", nil)
		if err != nil || (k != nil) != tt.want {
			t.Errorf("newRunKey(%+v) = %v, %v; want a key: %v", tt.spec, k != nil, err, tt.want)
		}
	}
}

func TestRunKeyIsSealedInTheStateAndOpenedForItsNodes(t *testing.T) {
	sl, err := newSealer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	spec := api.RunSpec{NodeCount: 2, Distribution: api.DistributionMPI}
	k, err := newRunKey(&spec, "run-9", sl)
	if err != nil || k == nil {
		t.Fatalf("newRunKey: %v %v", k, err)
	}
	if k.KeyID != sl.id || strings.Contains(k.Private, "PRIVATE KEY") {
		t.Fatalf("the stored key is not sealed: key_id %q, private %.40q", k.KeyID, k.Private)
	}
	plain, err := runPrivateKey(k, sl)
	if err != nil || !strings.Contains(plain, "PRIVATE KEY") {
		t.Fatalf("open: %v (%.40q)", err, plain)
	}
	other := *k
	other.RunID = "run-10"
	if _, err := runPrivateKey(&other, sl); err == nil {
		t.Errorf("a sealed key opened under another run's ID")
	}
}
