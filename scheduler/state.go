package scheduler

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/amld/amld/api"
)

// nodeState is one ready node as a round sees it: what is still free.
type nodeState struct {
	node *api.Node
	free api.Resources
	// gpus are the free GPU UUIDs, lowest device index first.
	gpus []string
	// busy: the node holds work, from before or placed this round.
	busy bool
	// reserved: the node is held for the target's blocked head.
	reserved bool
	// leaving is what runs already on their way out (finalizing, being
	// canceled) hold on the node, with leavingGPUs the UUIDs among it: room
	// that is about to free up.
	leaving     api.Resources
	leavingGPUs int
}

// gpuFree is how many GPUs a run could still get on the node: the lesser
// of the GPU count left and the free UUIDs.
func (ns *nodeState) gpuFree() int { return min(ns.free.GPUs, len(ns.gpus)) }

// effFree is the free capacity with GPUs counted as gpuFree.
func (ns *nodeState) effFree() api.Resources {
	f := ns.free
	f.GPUs = ns.gpuFree()
	return f
}

// soonFree is the free capacity once runs on their way out are gone, with
// GPUs counted as in gpuFree.
func (ns *nodeState) soonFree() api.Resources {
	f := ns.free.Add(ns.leaving)
	f.GPUs = min(f.GPUs, len(ns.gpus)+ns.leavingGPUs)
	return f
}

// liveRun is a run whose attempt holds nodes.
type liveRun struct {
	run *api.Run
	att *api.Attempt
}

// preemptible reports whether the run may be requeued for a higher-priority
// one.
func (l liveRun) preemptible() bool { return preemptible(l.run) }

// preemptible reports whether a run with a live attempt is preparing or
// running. Any other such run (finalizing, being canceled, requeued while
// its attempt stops) is already on its way out.
func preemptible(r *api.Run) bool {
	if a := r.LiveAttempt(); a != nil && a.StopReason != "" {
		return false // being stopped to be requeued
	}
	return r.State == api.RunPreparing || r.State == api.RunRunning
}

// targetState is one target's queue and nodes during a round.
type targetState struct {
	name   string
	target *api.Target // nil when the snapshot has no such target
	size   api.VMSize  // zero when unknown
	// nodes are the target's ready nodes in placement order: busy first,
	// then by ID.
	nodes []*nodeState
	// scan is the part of nodes still worth trying: neither reserved nor
	// too full for the smallest request of the queue. Entries before start
	// are known to be spent; others are dropped when it is compacted.
	scan  []*nodeState
	start int
	// maxFree bounds, per dimension, the free capacity of every node in
	// scan (it only ever overestimates, since nodes only fill up).
	maxFree api.Resources
	// minReq is the per-dimension minimum request of the queue: a node that
	// cannot hold it can hold no queued run.
	minReq api.Resources
	// failed holds the asks that found no room this round.
	failed    map[ask]bool
	preparing int
	idle      int // ready nodes with no work
	queue     []*api.Run
	live      []liveRun
	// waiting lists queued runs that will not be placed whatever happens
	// this round, with their reasons (live attempt, never fits).
	waiting []waitRun
	// shared lists the GPUs this target's nodes share with other nodes.
	shared sharedGPUs
}

// waitRun is a queued run that waits for a reason known before placement.
type waitRun struct {
	run *api.Run
	why string
}

// round is one scheduling round's working state.
type round struct {
	targets []*targetState // sorted by name
}

// newRound indexes a snapshot: per target, its ready nodes with their free
// capacity after every live attempt, its queue in order, and its live runs.
func newRound(st *State) *round {
	byName := map[string]*targetState{}
	get := func(name string) *targetState {
		ts := byName[name]
		if ts == nil {
			ts = &targetState{name: name}
			if t := st.Targets[name]; t != nil {
				ts.target = t
				ts.size = st.VMSizes[t.VMSize]
			}
			byName[name] = ts
		}
		return ts
	}
	for name := range st.Targets {
		get(name)
	}
	byID := map[string]*nodeState{}
	for _, n := range st.Nodes {
		ts := get(n.Target)
		if n.State == api.NodePreparing {
			ts.preparing++
		}
		ns := &nodeState{node: n, free: n.Capacity, busy: n.State == api.NodeRunning}
		if nodeReady(ns, nil) {
			ts.nodes = append(ts.nodes, ns)
			byID[n.ID] = ns
		}
	}
	held := map[string]bool{}
	for _, r := range st.Runs {
		a := r.LiveAttempt()
		if a != nil {
			out := !preemptible(r)
			for _, al := range a.Allocations {
				if ns := byID[al.NodeID]; ns != nil {
					ns.free = ns.free.Sub(al.Resources)
					ns.busy = true
					if out {
						ns.leaving = ns.leaving.Add(al.Resources)
						ns.leavingGPUs += len(al.GPUUUIDs)
					}
				}
				for _, u := range al.GPUUUIDs {
					held[u] = true
				}
			}
			get(r.Target).live = append(get(r.Target).live, liveRun{run: r, att: a})
		}
		if r.State != api.RunQueued {
			continue
		}
		ts := get(r.Target)
		switch {
		case a != nil:
			ts.wait(r, "waiting for its attempt "+strconv.Itoa(a.Number)+" to stop")
		case ts.target == nil:
			ts.wait(r, "target "+r.Target+" does not exist")
		case ts.target.ProvisioningState == api.ProvisioningDeleting:
			ts.wait(r, "target "+r.Target+" is being deleted")
		case ts.target.Stopped:
			ts.wait(r, "target "+r.Target+" is stopped: amlctl compute start "+r.Target)
		default:
			if why := NeverFits(r, ts.target, ts.size); why != "" {
				ts.wait(r, "can never run on "+r.Target+": "+why)
			} else {
				ts.queue = append(ts.queue, r)
			}
		}
	}
	rd := &round{}
	for _, ts := range byName {
		ts.finish(held)
		rd.targets = append(rd.targets, ts)
	}
	slices.SortFunc(rd.targets, func(a, b *targetState) int { return cmp.Compare(a.name, b.name) })
	if shared := findShared(rd.targets); shared != nil {
		for _, ts := range rd.targets {
			ts.shared = shared
		}
	}
	return rd
}

// wait records a run that cannot be placed this round and why.
func (ts *targetState) wait(r *api.Run, why string) {
	ts.waiting = append(ts.waiting, waitRun{run: r, why: why})
}

// finish orders the target's nodes and queue and prepares the scan list,
// once every live attempt has been counted.
func (ts *targetState) finish(held map[string]bool) {
	for _, ns := range ts.nodes {
		gs := slices.Clone(ns.node.GPUs)
		slices.SortFunc(gs, func(a, b api.GPU) int {
			return cmp.Or(cmp.Compare(a.Index, b.Index), cmp.Compare(a.UUID, b.UUID))
		})
		for _, g := range gs {
			if !held[g.UUID] {
				ns.gpus = append(ns.gpus, g.UUID)
			}
		}
		if !ns.busy {
			ts.idle++
		}
	}
	slices.SortFunc(ts.nodes, func(a, b *nodeState) int {
		if a.busy != b.busy {
			if a.busy {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.node.ID, b.node.ID)
	})
	slices.SortFunc(ts.queue, queueOrder)
	slices.SortFunc(ts.waiting, func(a, b waitRun) int { return queueOrder(a.run, b.run) })
	for i, r := range ts.queue {
		if i == 0 {
			ts.minReq = r.Request
			continue
		}
		ts.minReq = minRes(ts.minReq, r.Request)
	}
	ts.scan = slices.Clone(ts.nodes)
	ts.compact()
}

// queueOrder orders a queue: higher priority first, then submit order,
// then ID.
func queueOrder(a, b *api.Run) int {
	return cmp.Or(cmp.Compare(b.Priority, a.Priority), cmp.Compare(a.QueueSeq, b.QueueSeq), cmp.Compare(a.ID, b.ID))
}

// spent reports whether the node can take no more queued work this round.
func (ts *targetState) spent(ns *nodeState) bool {
	return ns.reserved || !ts.minReq.Fits(ns.effFree())
}

// compact drops spent nodes from scan and recomputes maxFree.
func (ts *targetState) compact() {
	keep := ts.scan[:0]
	var mf api.Resources
	for _, ns := range ts.scan[ts.start:] {
		if ts.spent(ns) {
			continue
		}
		keep = append(keep, ns)
		mf = maxRes(mf, ns.effFree())
	}
	clear(ts.scan[len(keep):])
	ts.scan, ts.start, ts.maxFree = keep, 0, mf
}

func minRes(a, b api.Resources) api.Resources {
	return api.Resources{CPUs: min(a.CPUs, b.CPUs), MemoryMB: min(a.MemoryMB, b.MemoryMB), GPUs: min(a.GPUs, b.GPUs)}
}

func maxRes(a, b api.Resources) api.Resources {
	return api.Resources{CPUs: max(a.CPUs, b.CPUs), MemoryMB: max(a.MemoryMB, b.MemoryMB), GPUs: max(a.GPUs, b.GPUs)}
}
