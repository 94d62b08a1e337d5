package scheduler

import (
	"cmp"
	"slices"

	"github.com/amld/amld/api"
)

// preempt decides whether the blocked head h may requeue running runs of
// its target, and which. It returns the victims and the nodes h will get
// once they are gone, or nils when it may not or need not:
//
//   - the target's preemption is not "requeue";
//   - the target can still grow (ready + preparing < max_nodes), or nodes
//     still preparing would be enough;
//   - runs already on their way out (finalizing, being canceled) free
//     enough room by themselves;
//   - even requeuing every lower-priority run would not make room.
//
// Candidates are preparing or running runs of strictly lower priority,
// lowest priority first and, among equals, the most recently placed first.
// They are taken in that order until h fits, then any whose requeue turns
// out unneeded is spared (trying the most valuable first), so every victim
// is needed.
func (ts *targetState) preempt(h *api.Run) ([]liveRun, []*nodeState) {
	t := ts.target
	if t.Preemption != api.PreemptionRequeue {
		return nil, nil
	}
	n := max(h.NodeCount, 1)
	if t.MaxNodes > 0 && len(ts.nodes)+ts.preparing < t.MaxNodes {
		return nil, nil
	}
	sim := newRoomSim(ts, h)
	if ts.preparing > 0 && sim.fits+ts.preparing >= n {
		return nil, nil
	}
	var cands []liveRun
	for _, l := range ts.live {
		switch {
		case !l.preemptible():
			sim.release(l, 1)
		case l.run.Priority < h.Priority:
			cands = append(cands, l)
		}
	}
	if sim.fits >= n {
		return nil, nil
	}
	slices.SortFunc(cands, func(a, b liveRun) int {
		return cmp.Or(
			cmp.Compare(a.run.Priority, b.run.Priority),
			b.att.PlacedAt.Compare(a.att.PlacedAt),
			cmp.Compare(b.run.QueueSeq, a.run.QueueSeq),
			cmp.Compare(a.run.ID, b.run.ID))
	})
	var chosen []liveRun
	for _, c := range cands {
		if sim.fits >= n {
			break
		}
		sim.release(c, 1)
		chosen = append(chosen, c)
	}
	if sim.fits < n {
		return nil, nil
	}
	for i := len(chosen) - 1; i >= 0; i-- {
		sim.release(chosen[i], -1)
		if sim.fits >= n {
			chosen = slices.Delete(chosen, i, i+1)
			continue
		}
		sim.release(chosen[i], 1)
	}
	return chosen, sim.pick(n)
}

// roomSim tracks, for one request, what each of a target's ready nodes
// would have free if some live runs were gone, and how many could then
// take the request.
type roomSim struct {
	run   *api.Run
	req   api.Resources
	nodes []*nodeState
	index map[string]int
	free  []api.Resources
	uuids []int // free GPU UUIDs
	ok    []bool
	fits  int
}

func newRoomSim(ts *targetState, r *api.Run) *roomSim {
	s := &roomSim{
		run:   r,
		req:   r.Request,
		nodes: ts.nodes,
		index: make(map[string]int, len(ts.nodes)),
		free:  make([]api.Resources, len(ts.nodes)),
		uuids: make([]int, len(ts.nodes)),
		ok:    make([]bool, len(ts.nodes)),
	}
	for i, ns := range ts.nodes {
		s.index[ns.node.ID] = i
		s.free[i], s.uuids[i] = ns.free, len(ns.gpus)
		s.update(i)
	}
	return s
}

// update recomputes whether node i can take the request.
func (s *roomSim) update(i int) {
	f := s.free[i]
	f.GPUs = min(f.GPUs, s.uuids[i])
	ok := canHold(s.nodes[i].node, s.run) && s.req.Fits(f)
	if ok != s.ok[i] {
		s.ok[i] = ok
		if ok {
			s.fits++
		} else {
			s.fits--
		}
	}
}

// release frees (sign 1) or takes back (sign -1) what l holds on the
// target's ready nodes.
func (s *roomSim) release(l liveRun, sign int) {
	for _, al := range l.att.Allocations {
		i, ok := s.index[al.NodeID]
		if !ok {
			continue
		}
		r := al.Resources
		if sign < 0 {
			s.free[i] = s.free[i].Sub(r)
		} else {
			s.free[i] = s.free[i].Add(r)
		}
		s.uuids[i] += sign * len(al.GPUUUIDs)
		s.update(i)
	}
}

// pick returns the first n nodes, in placement order, that could take the
// request.
func (s *roomSim) pick(n int) []*nodeState {
	var out []*nodeState
	for i, ns := range s.nodes {
		if s.ok[i] && len(out) < n {
			out = append(out, ns)
		}
	}
	return out
}
