package scheduler

import (
	"cmp"
	"slices"

	"github.com/amld/amld/api"
)

// Schedule decides one round for the snapshot st: which queued runs start
// on which nodes, which running runs are requeued to make room for a
// higher-priority one, and why every other queued run waits. It reads st
// and never changes it; the same st always gives the same plan. See the
// package documentation for the rules.
func Schedule(st *State) *Plan {
	rd := newRound(st)
	plan := &Plan{}
	for _, ts := range rd.targets {
		ts.schedule(plan)
	}
	return plan
}

// outcome is what a round decided for one target, beyond its placements.
type outcome struct {
	// head is the first queued run that could not be placed; nil if none.
	head *api.Run
	// reserved are the nodes held for head.
	reserved []*nodeState
	// victims are the runs requeued to make room for head.
	victims []liveRun
	// unplaced are the queued runs left waiting, in queue order.
	unplaced []*api.Run
}

// schedule walks the target's queue in order, placing what fits and
// appending to plan; it returns what the walk decided.
func (ts *targetState) schedule(plan *Plan) outcome {
	var out outcome
	buf := make([]*nodeState, 0, 4)
	for _, r := range ts.queue {
		if picked := ts.fit(r, buf[:0]); picked != nil {
			plan.Placements = append(plan.Placements, ts.place(r, picked))
			continue
		}
		out.unplaced = append(out.unplaced, r)
		if out.head != nil {
			continue
		}
		out.head = r
		out.victims, out.reserved = ts.preempt(r)
		if out.victims == nil {
			out.reserved = ts.closest(r)
		}
		for _, ns := range out.reserved {
			ns.reserved = true
		}
		for _, v := range out.victims {
			plan.Preemptions = append(plan.Preemptions, Preemption{RunID: v.run.ID, By: r.ID})
		}
	}
	for _, w := range ts.waiting {
		if w.why != w.run.Reason {
			plan.Reasons = append(plan.Reasons, WaitReason{RunID: w.run.ID, Reason: w.why})
		}
	}
	rs := newReasoner(ts, out)
	var hinted hintKey // of the last hint, which most runs of a backlog share
	var hint string
	for _, r := range out.unplaced {
		why := rs.reason(r)
		if why != r.Reason {
			plan.Reasons = append(plan.Reasons, WaitReason{RunID: r.ID, Reason: why})
		}
		if k := (hintKey{ts.name, askOf(r), r.Priority}); r != out.head && (k != hinted || why != hint) {
			plan.Hints.add(k, why)
			hinted, hint = k, why
		}
	}
	return out
}

// fit returns max(r.NodeCount, 1) distinct nodes, appended to buf, that
// can each take r's request now, trying them in placement order and
// skipping reserved ones; nil when there are not enough.
//
// Within a round, room only shrinks (placements take it, reservations
// withdraw it), so an ask that failed once fails again: it is remembered.
func (ts *targetState) fit(r *api.Run, buf []*nodeState) []*nodeState {
	n := max(r.NodeCount, 1)
	k := askOf(r)
	if !r.Request.Fits(ts.maxFree) || ts.failed[k] {
		return nil
	}
	for ts.start < len(ts.scan) && ts.spent(ts.scan[ts.start]) {
		ts.start++
	}
	skipped := 0
	for _, ns := range ts.scan[ts.start:] {
		if ts.spent(ns) {
			skipped++
			continue
		}
		if feasible(fitChecks, ns, r) {
			buf = append(buf, ns)
			if len(buf) == n {
				break
			}
		}
	}
	if skipped > 16 && 2*skipped > len(ts.scan)-ts.start {
		ts.compact()
	}
	if len(buf) < n {
		if ts.failed == nil {
			ts.failed = map[ask]bool{}
		}
		ts.failed[k] = true
		return nil
	}
	return buf
}

// place gives r its share of each picked node and returns the placement.
func (ts *targetState) place(r *api.Run, picked []*nodeState) Placement {
	req := r.Request
	p := Placement{RunID: r.ID, Allocations: make([]api.Allocation, len(picked))}
	for i, ns := range picked {
		al := api.Allocation{NodeID: ns.node.ID, Resources: req}
		if g := req.GPUs; g > 0 {
			al.GPUUUIDs = ns.gpus[:g:g]
			ns.gpus = ns.gpus[g:]
			ts.shared.take(ns, al.GPUUUIDs)
		}
		ns.free = ns.free.Sub(req)
		if !ns.busy {
			ns.busy = true
			ts.idle--
		}
		p.Allocations[i] = al
	}
	return p
}

// canHold reports whether node n could ever take run r: r's request fits
// the node's whole capacity, the node has that many GPUs, and the runtime
// r needs.
func canHold(n *api.Node, r *api.Run) bool {
	req := r.Request
	return req.Fits(n.Capacity) && req.GPUs <= len(n.GPUs) && hasRuntime(n, RuntimeOf(r))
}

// shortfall measures how far a node is from taking req once the runs on
// their way out have left it: per dimension, the part of the request
// missing, in thousandths of the request, summed. Zero means it will fit.
func shortfall(req api.Resources, ns *nodeState) int64 {
	free := ns.soonFree()
	part := func(want, have int64) int64 {
		if want <= 0 || have >= want {
			return 0
		}
		return (want - have) * 1000 / want
	}
	return part(int64(req.CPUs), int64(free.CPUs)) +
		part(req.MemoryMB, free.MemoryMB) +
		part(int64(req.GPUs), int64(free.GPUs))
}

// closest picks the nodes to reserve for the blocked head r: among the
// target's ready nodes that could ever hold its request, the
// max(r.NodeCount, 1) with the smallest shortfall, then by ID (all of them
// when there are fewer). Nodes where room is about to free up come first.
func (ts *targetState) closest(r *api.Run) []*nodeState {
	type cand struct {
		ns *nodeState
		sf int64
	}
	var cs []cand
	for _, ns := range ts.nodes {
		if canHold(ns.node, r) {
			cs = append(cs, cand{ns, shortfall(r.Request, ns)})
		}
	}
	slices.SortFunc(cs, func(a, b cand) int {
		return cmp.Or(cmp.Compare(a.sf, b.sf), cmp.Compare(a.ns.node.ID, b.ns.node.ID))
	})
	k := min(len(cs), max(r.NodeCount, 1))
	out := make([]*nodeState, k)
	for i := range k {
		out[i] = cs[i].ns
	}
	return out
}
