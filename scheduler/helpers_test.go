package scheduler

import (
	"fmt"
	"time"

	"github.com/amld/amld/api"
)

// sizes is the catalogue the tests use.
var sizes = map[string]api.VMSize{
	"cpu-2": {Name: "cpu-2", CPUs: 2, MemoryGB: 4},
	"cpu-4": {Name: "cpu-4", CPUs: 4, MemoryGB: 16},
	"cpu-8": {Name: "cpu-8", CPUs: 8, MemoryGB: 32},
	"gpu-4": {Name: "gpu-4", CPUs: 8, MemoryGB: 32, GPUs: 4},
	"gpu-8": {Name: "gpu-8", CPUs: 32, MemoryGB: 256, GPUs: 8},
}

// t0 is the time attempts are placed at in tests, plus a few seconds each.
var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func cluster(name, size string, maxNodes int) *api.Target {
	return &api.Target{
		TargetSpec:        api.TargetSpec{Name: name, Type: api.KindCluster, VMSize: size, MaxNodes: maxNodes, Preemption: api.PreemptionNone},
		ProvisioningState: api.ProvisioningSucceeded,
	}
}

// node makes a node of a size in a state, with its GPUs named ID-g0...
func node(id, target, size, state string) *api.Node {
	sz := sizes[size]
	n := &api.Node{ID: id, Target: target, State: state, VMSize: size, Capacity: sz.Resources()}
	for i := range sz.GPUs {
		n.GPUs = append(n.GPUs, api.GPU{Index: i, UUID: fmt.Sprintf("%s-g%d", id, i)})
	}
	return n
}

func res(cpus int, mem int64, gpus int) api.Resources {
	return api.Resources{CPUs: cpus, MemoryMB: mem, GPUs: gpus}
}

// queued makes a Queued run.
func queued(id, target string, prio int, seq uint64, req api.Resources, nodes int) *api.Run {
	return &api.Run{
		RunSpec:  api.RunSpec{Target: target, Priority: prio, NodeCount: nodes},
		ID:       id,
		State:    api.RunQueued,
		Request:  req,
		QueueSeq: seq,
	}
}

// running makes a Running run holding req on each of the nodes, placed
// sec seconds after t0.
func running(id, target string, prio int, req api.Resources, sec int, nodeIDs ...string) *api.Run {
	r := queued(id, target, prio, uint64(1000+sec), req, len(nodeIDs))
	r.State = api.RunRunning
	a := api.Attempt{Number: 1, PlacedAt: t0.Add(time.Duration(sec) * time.Second)}
	for _, id := range nodeIDs {
		a.Allocations = append(a.Allocations, api.Allocation{NodeID: id, Resources: req})
	}
	r.Attempts = []api.Attempt{a}
	return r
}

func state(targets []*api.Target, nodes []*api.Node, runs ...*api.Run) *State {
	st := &State{Targets: map[string]*api.Target{}, VMSizes: sizes, Nodes: nodes, Runs: runs}
	for _, t := range targets {
		st.Targets[t.Name] = t
	}
	return st
}

// placedOn maps each placed run to the node IDs it got, in rank order.
func placedOn(p *Plan) map[string][]string {
	out := map[string][]string{}
	for _, pl := range p.Placements {
		for _, al := range pl.Allocations {
			out[pl.RunID] = append(out[pl.RunID], al.NodeID)
		}
	}
	return out
}

// reasons maps each run given a reason to it.
func reasons(p *Plan) map[string]string {
	out := map[string]string{}
	for _, w := range p.Reasons {
		out[w.RunID] = w.Reason
	}
	return out
}
