package autoscale

import (
	"fmt"
	"slices"
	"time"

	"github.com/amld/amld/api"
)

// t0 is the fake clock's start; tests advance it by adding durations.
var t0 = time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)

var cpu2 = api.VMSize{Name: "cpu-2", CPUs: 2, MemoryGB: 4}

// whole is the whole of a cpu-2 node.
var whole = cpu2.Resources()

// oneCPU is half of a cpu-2 node.
var oneCPU = api.Resources{CPUs: 1, MemoryMB: 1024}

func cluster(minNodes, maxNodes int) *api.Target {
	return &api.Target{
		TargetSpec: api.TargetSpec{
			Name: "c", Type: api.KindCluster, VMSize: cpu2.Name,
			MinNodes: minNodes, MaxNodes: maxNodes,
		},
		ProvisioningState: api.ProvisioningSucceeded,
	}
}

func idleNode(id string, since time.Time) *api.Node {
	return &api.Node{
		ID: id, Target: "c", State: api.NodeIdle, ProviderID: "p-" + id,
		Capacity: whole, CreatedAt: since.Add(-time.Minute), IdleSince: since, StateChangedAt: since,
	}
}

func runningNode(id string) *api.Node {
	return &api.Node{ID: id, Target: "c", State: api.NodeRunning, ProviderID: "p-" + id, Capacity: whole, CreatedAt: t0.Add(-time.Hour)}
}

func preparingNode(id string, created time.Time) *api.Node {
	return &api.Node{ID: id, Target: "c", State: api.NodePreparing, ProviderID: "p-" + id, CreatedAt: created, StateChangedAt: created}
}

func nodeIn(id, state string) *api.Node {
	return &api.Node{ID: id, Target: "c", State: state, ProviderID: "p-" + id, Capacity: whole, CreatedAt: t0.Add(-time.Hour)}
}

func queued(id string, seq uint64, nodeCount int, req api.Resources) *api.Run {
	return &api.Run{
		RunSpec: api.RunSpec{Target: "c", NodeCount: nodeCount},
		ID:      id, State: api.RunQueued, Request: req, QueueSeq: seq,
	}
}

// burst makes n queued runs of a whole node each.
func burst(n int) []*api.Run {
	var rs []*api.Run
	for i := range n {
		rs = append(rs, queued(fmt.Sprintf("r-%d", i), uint64(i+1), 1, whole))
	}
	return rs
}

// live makes a running run holding req on each of nodes.
func live(id string, req api.Resources, nodes ...string) *api.Run {
	r := &api.Run{RunSpec: api.RunSpec{Target: "c", NodeCount: len(nodes)}, ID: id, State: api.RunRunning, Request: req}
	a := api.Attempt{Number: 1, PlacedAt: t0.Add(-time.Hour)}
	for _, n := range nodes {
		a.Allocations = append(a.Allocations, api.Allocation{NodeID: n, Resources: req})
		a.Nodes = append(a.Nodes, api.NodeAttempt{State: api.AttemptRunning})
	}
	r.Attempts = []api.Attempt{a}
	return r
}

func deletedIDs(d Decision) []string {
	var out []string
	for _, a := range d.Delete {
		out = append(out, a.NodeID)
	}
	slices.Sort(out)
	return out
}

func actionIDs(as []NodeAction) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.NodeID)
	}
	return out
}
