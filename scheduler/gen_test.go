package scheduler

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/amld/amld/api"
	"pgregory.net/rapid"
)

// nodeStates draws node states, ready ones more often.
var nodeStates = rapid.SampledFrom(append([]string{api.NodeIdle, api.NodeRunning, api.NodeRunning}, api.NodeStates...))

// genState draws a consistent snapshot: a few targets, nodes in every
// state, live attempts that fit their nodes, and queued runs of every
// shape (gangs, GPUs, too big, for missing targets).
func genState(t *rapid.T) *State {
	st := &State{Targets: map[string]*api.Target{}, VMSizes: sizes}
	var names []string
	for i := range rapid.IntRange(1, 3).Draw(t, "targets") {
		c := cluster(fmt.Sprintf("t%d", i), rapid.SampledFrom([]string{"cpu-2", "cpu-4", "gpu-4"}).Draw(t, "size"),
			rapid.IntRange(1, 4).Draw(t, "max"))
		c.Preemption = rapid.SampledFrom([]string{api.PreemptionNone, api.PreemptionRequeue}).Draw(t, "preemption")
		if rapid.IntRange(0, 9).Draw(t, "deleting") == 0 {
			c.ProvisioningState = api.ProvisioningDeleting
		}
		st.Targets[c.Name] = c
		names = append(names, c.Name)
	}
	anyTarget := rapid.SampledFrom(append(slices.Clone(names), names[0], "ghost"))
	type room struct {
		free api.Resources
		gpus []string
	}
	rooms := map[string]*room{}
	for i := range rapid.IntRange(0, 12).Draw(t, "nodes") {
		tn := rapid.SampledFrom(names).Draw(t, "node target")
		n := node(fmt.Sprintf("n%02d", i), tn, st.Targets[tn].VMSize, nodeStates.Draw(t, "node state"))
		n.GPUs = n.GPUs[:rapid.IntRange(0, len(n.GPUs)).Draw(t, "gpus reported")]
		st.Nodes = append(st.Nodes, n)
		rm := &room{free: n.Capacity}
		for _, g := range n.GPUs {
			rm.gpus = append(rm.gpus, g.UUID)
		}
		rooms[n.ID] = rm
	}
	if rapid.Bool().Draw(t, "targets full") {
		// Put targets at max_nodes, where preemption may happen.
		for _, tn := range names {
			k := 0
			for _, n := range st.Nodes {
				if n.Target == tn && (n.Ready() || n.State == api.NodePreparing) {
					k++
				}
			}
			st.Targets[tn].MaxNodes = max(k, 1)
		}
	}
	drawReq := func(size api.VMSize) api.Resources {
		return res(rapid.IntRange(0, size.CPUs+1).Draw(t, "cpus"),
			int64(rapid.IntRange(0, int(size.MemoryGB)+1).Draw(t, "mem"))*1024,
			rapid.IntRange(0, size.GPUs+1).Draw(t, "gpus"))
	}
	for i := range rapid.IntRange(0, 10).Draw(t, "live") {
		tn := rapid.SampledFrom(names).Draw(t, "live target")
		r := queued(fmt.Sprintf("live%d", i), tn, rapid.IntRange(0, 3).Draw(t, "prio"), uint64(i+1),
			drawReq(sizes[st.Targets[tn].VMSize]), rapid.IntRange(1, 2).Draw(t, "live nodes"))
		r.State = rapid.SampledFrom([]string{api.RunPreparing, api.RunRunning, api.RunRunning, api.RunFinalizing, api.RunCancelRequested}).Draw(t, "live state")
		a := api.Attempt{Number: 1, PlacedAt: t0.Add(time.Duration(rapid.IntRange(0, 5).Draw(t, "placed")) * time.Second)}
		for _, n := range rapid.Permutation(st.Nodes).Draw(t, "live order") {
			rm := rooms[n.ID]
			if n.Target != tn || len(a.Allocations) == r.NodeCount || !r.Request.Fits(rm.free) || len(rm.gpus) < r.Request.GPUs {
				continue
			}
			rm.free = rm.free.Sub(r.Request)
			al := api.Allocation{NodeID: n.ID, Resources: r.Request, GPUUUIDs: slices.Clone(rm.gpus[:r.Request.GPUs])}
			rm.gpus = rm.gpus[r.Request.GPUs:]
			a.Allocations = append(a.Allocations, al)
		}
		if len(a.Allocations) == r.NodeCount {
			r.Attempts = []api.Attempt{a}
			st.Runs = append(st.Runs, r)
		}
	}
	for i := range rapid.IntRange(0, 15).Draw(t, "queued") {
		tn := anyTarget.Draw(t, "run target")
		size := sizes["cpu-4"]
		if tg := st.Targets[tn]; tg != nil {
			size = sizes[tg.VMSize]
		}
		r := queued(fmt.Sprintf("q%02d", i), tn, rapid.IntRange(0, 3).Draw(t, "prio"),
			uint64(rapid.IntRange(1, 30).Draw(t, "seq")), drawReq(size), rapid.IntRange(0, 3).Draw(t, "nodes"))
		if rapid.IntRange(0, 4).Draw(t, "requeued") == 0 {
			r.Attempts = []api.Attempt{{Number: 1, Ended: true, Reason: "preempted"}}
		}
		st.Runs = append(st.Runs, r)
	}
	return st
}

// contend makes a drawn snapshot one where preemption is likely: every node
// is ready, every target requeues and is at max_nodes, and queued runs
// outrank live ones.
func contend(st *State) *State {
	for _, n := range st.Nodes {
		if !n.Ready() {
			n.State = api.NodeRunning
		}
	}
	for _, tg := range st.Targets {
		tg.Preemption = api.PreemptionRequeue
		k := 0
		for _, n := range st.Nodes {
			if n.Target == tg.Name && (n.Ready() || n.State == api.NodePreparing) {
				k++
			}
		}
		tg.MaxNodes = max(k, 1)
	}
	for _, r := range st.Runs {
		if r.State == api.RunQueued {
			r.Priority += 2
		}
	}
	return st
}

func runByID(st *State, id string) *api.Run {
	for _, r := range st.Runs {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// apply returns st after p, the way the state machine would apply it.
func apply(st *State, p *Plan) *State {
	next := copyState(st)
	nodes := map[string]*api.Node{}
	for _, n := range next.Nodes {
		nodes[n.ID] = n
	}
	for _, pl := range p.Placements {
		r := runByID(next, pl.RunID)
		r.State = api.RunPreparing
		r.Reason = ""
		r.Attempts = append(r.Attempts, api.Attempt{Number: len(r.Attempts) + 1, Allocations: pl.Allocations, PlacedAt: t0})
		for _, al := range pl.Allocations {
			nodes[al.NodeID].State = api.NodeRunning
		}
	}
	for _, w := range p.Reasons {
		runByID(next, w.RunID).Reason = w.Reason
	}
	return next
}

func copyState(st *State) *State {
	c := &State{Targets: map[string]*api.Target{}, VMSizes: maps.Clone(st.VMSizes)}
	for k, t := range st.Targets {
		c.Targets[k] = t.Copy()
	}
	for _, n := range st.Nodes {
		c.Nodes = append(c.Nodes, n.Copy())
	}
	for _, r := range st.Runs {
		c.Runs = append(c.Runs, r.Copy())
	}
	return c
}

// describe writes a snapshot compactly, for failure messages.
func describe(st *State) string {
	var b strings.Builder
	for _, tn := range slices.Sorted(maps.Keys(st.Targets)) {
		tg := st.Targets[tn]
		fmt.Fprintf(&b, "target %s %s max=%d %s %s\n", tn, tg.VMSize, tg.MaxNodes, tg.Preemption, tg.ProvisioningState)
	}
	for _, n := range st.Nodes {
		fmt.Fprintf(&b, "node %s %s %s cap=%v gpus=%d\n", n.ID, n.Target, n.State, n.Capacity, len(n.GPUs))
	}
	for _, r := range st.Runs {
		fmt.Fprintf(&b, "run %s %s %s prio=%d seq=%d n=%d req=%v reason=%q", r.ID, r.Target, r.State, r.Priority, r.QueueSeq, r.NodeCount, r.Request, r.Reason)
		if a := r.LiveAttempt(); a != nil {
			fmt.Fprintf(&b, " live=%+v", a.Allocations)
		}
		b.WriteString("\n")
	}
	return b.String()
}
