package scheduler

import (
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/amld/amld/api"
	"pgregory.net/rapid"
)

// placeable reports whether a queued run may be placed at all this round.
func placeable(st *State, r *api.Run) bool {
	tg := st.Targets[r.Target]
	return r.State == api.RunQueued && r.LiveAttempt() == nil && tg != nil &&
		tg.ProvisioningState != api.ProvisioningDeleting && NeverFits(r, tg, st.VMSizes[tg.VMSize]) == ""
}

// usage is what the nodes hold: resources by node and GPU UUIDs.
type usage struct {
	used map[string]api.Resources
	gpus map[string]bool
}

func liveUsage(st *State) usage {
	u := usage{used: map[string]api.Resources{}, gpus: map[string]bool{}}
	for _, r := range st.Runs {
		if a := r.LiveAttempt(); a != nil {
			u.add(a.Allocations)
		}
	}
	return u
}

// add counts allocations and reports a GPU UUID handed out twice.
func (u usage) add(als []api.Allocation) string {
	for _, al := range als {
		u.used[al.NodeID] = u.used[al.NodeID].Add(al.Resources)
		for _, g := range al.GPUUUIDs {
			if u.gpus[g] {
				return "GPU " + g + " handed out twice"
			}
			u.gpus[g] = true
		}
	}
	return ""
}

// fitsNow reports whether r could take n distinct ready nodes of its
// target, given usage u: an independent restatement of the fit rules.
func fitsNow(st *State, u usage, r *api.Run) bool {
	k := 0
	for _, n := range st.Nodes {
		if !n.Ready() || n.Target != r.Target || !r.Request.Fits(n.Capacity.Sub(u.used[n.ID])) {
			continue
		}
		free := 0
		for _, g := range n.GPUs {
			if !u.gpus[g.UUID] {
				free++
			}
		}
		if free >= r.Request.GPUs {
			k++
		}
	}
	return k >= max(r.NodeCount, 1)
}

// checkPlan asserts the invariants every plan keeps.
func checkPlan(t *rapid.T, st *State, p *Plan) {
	runs := map[string]*api.Run{}
	for _, r := range st.Runs {
		runs[r.ID] = r
	}
	nodes := map[string]*api.Node{}
	for _, n := range st.Nodes {
		nodes[n.ID] = n
	}
	u := liveUsage(st)
	placed := map[string]Placement{}
	for _, pl := range p.Placements {
		r := runs[pl.RunID]
		if _, dup := placed[pl.RunID]; dup {
			t.Fatalf("run %s placed twice", pl.RunID)
		}
		placed[pl.RunID] = pl
		if r == nil || !placeable(st, r) {
			t.Fatalf("placed %s, which may not be placed", pl.RunID)
		}
		if len(pl.Allocations) != max(r.NodeCount, 1) {
			t.Fatalf("%s: %d allocations for node_count %d", r.ID, len(pl.Allocations), r.NodeCount)
		}
		seen := map[string]bool{}
		for _, al := range pl.Allocations {
			n := nodes[al.NodeID]
			switch {
			case n == nil || !n.Ready() || n.Target != r.Target:
				t.Fatalf("%s placed on %s, not a ready node of %s", r.ID, al.NodeID, r.Target)
			case seen[al.NodeID]:
				t.Fatalf("%s placed twice on %s", r.ID, al.NodeID)
			case al.Resources != r.Request || len(al.GPUUUIDs) != max(r.Request.GPUs, 0):
				t.Fatalf("%s: allocation %+v for request %v", r.ID, al, r.Request)
			}
			seen[al.NodeID] = true
			for _, g := range al.GPUUUIDs {
				if !slices.ContainsFunc(n.GPUs, func(x api.GPU) bool { return x.UUID == g }) {
					t.Fatalf("%s got GPU %s, not on %s", r.ID, g, n.ID)
				}
			}
		}
		if msg := u.add(pl.Allocations); msg != "" {
			t.Fatal(msg)
		}
	}
	for id, used := range u.used {
		if n := nodes[id]; n != nil && n.Ready() && !used.Fits(n.Capacity) {
			t.Fatalf("node %s holds %v, more than its %v", id, used, n.Capacity)
		}
	}
	why := map[string]string{}
	for _, w := range p.Reasons {
		if _, dup := why[w.RunID]; dup || w.Reason == "" || placed[w.RunID].RunID != "" {
			t.Fatalf("bad reason %+v", w)
		}
		why[w.RunID] = w.Reason
	}
	for _, r := range st.Runs {
		if r.State == api.RunQueued && placed[r.ID].RunID == "" && why[r.ID] == "" {
			t.Fatalf("queued run %s left without a reason", r.ID)
		}
	}
	by := map[string]string{}
	for _, pr := range p.Preemptions {
		v, h := runs[pr.RunID], runs[pr.By]
		switch {
		case v == nil || h == nil || v.LiveAttempt() == nil || (v.State != api.RunRunning && v.State != api.RunPreparing):
			t.Fatalf("preemption %+v of a run that is not running", pr)
		case v.Target != h.Target || v.Priority >= h.Priority || st.Targets[h.Target].Preemption != api.PreemptionRequeue:
			t.Fatalf("preemption %+v not allowed", pr)
		case placed[h.ID].RunID != "" || !placeable(st, h):
			t.Fatalf("preemption %+v for a run that is placed or cannot be", pr)
		case by[v.ID] != "" || (by[h.Target] != "" && by[h.Target] != h.ID):
			t.Fatalf("preemption %+v: one victim set per target", pr)
		}
		by[v.ID], by[h.Target] = h.ID, h.ID
	}
}

// checkHeadNotRobbed asserts that the first unplaced run of each queue
// could not fit given only the placements of runs ahead of it.
func checkHeadNotRobbed(t *rapid.T, st *State, p *Plan) {
	placed := map[string][]api.Allocation{}
	for _, pl := range p.Placements {
		placed[pl.RunID] = pl.Allocations
	}
	var queue []*api.Run
	for _, r := range st.Runs {
		if placeable(st, r) {
			queue = append(queue, r)
		}
	}
	slices.SortFunc(queue, queueOrder)
	for _, tn := range slices.Sorted(maps.Keys(st.Targets)) {
		u := liveUsage(st)
		for _, r := range queue {
			if r.Target != tn {
				continue
			}
			if als, ok := placed[r.ID]; ok {
				u.add(als)
				continue
			}
			if fitsNow(st, u, r) {
				t.Fatalf("head %s of %s unplaced although it fit after the runs ahead of it", r.ID, tn)
			}
			break
		}
	}
}

func TestSchedulePlanInvariants(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		st := genState(t)
		if rapid.Bool().Draw(t, "contended") {
			contend(st)
		}
		before := copyState(st)
		p := Schedule(st)
		if !reflect.DeepEqual(copyState(st), before) {
			t.Fatalf("Schedule changed its input")
		}
		checkPlan(t, st, p)
		checkHeadNotRobbed(t, st, p)

		shuffled := copyState(st)
		shuffled.Nodes = rapid.Permutation(shuffled.Nodes).Draw(t, "node order")
		shuffled.Runs = rapid.Permutation(shuffled.Runs).Draw(t, "run order")
		if p2 := Schedule(shuffled); !reflect.DeepEqual(p2, p) {
			t.Fatalf("input order changed the plan:\n%+v\n%+v", p, p2)
		}
	})
}

func TestBackfillNeverUsesReservedNodes(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		st := genState(t)
		for _, ts := range newRound(st).targets {
			var p Plan
			out := ts.schedule(&p)
			if out.head == nil {
				continue
			}
			reserved := map[string]bool{}
			for _, ns := range out.reserved {
				reserved[ns.node.ID] = true
			}
			if out.victims == nil {
				holders := 0
				for _, ns := range ts.nodes {
					if canHold(ns.node, out.head) {
						holders++
					}
				}
				if want := min(holders, max(out.head.NodeCount, 1)); len(reserved) != want {
					t.Fatalf("head %s reserved %d nodes, want %d", out.head.ID, len(reserved), want)
				}
			}
			for _, pl := range p.Placements {
				if queueOrder(runByID(st, pl.RunID), out.head) < 0 {
					continue
				}
				for _, al := range pl.Allocations {
					if reserved[al.NodeID] {
						t.Fatalf("%s backfilled onto %s, reserved for %s", pl.RunID, al.NodeID, out.head.ID)
					}
				}
			}
		}
	})
}

func TestRescheduleAfterApplyingPlanIsEmpty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		st := genState(t)
		p := Schedule(st)
		if len(p.Preemptions) > 0 {
			return
		}
		next := apply(st, p)
		if p2 := Schedule(next); !p2.Empty() {
			t.Fatalf("second round of an unchanged cluster gave %+v\nfirst %+v\nbefore:\n%s\nafter:\n%s", p2, p, describe(st), describe(next))
		}
	})
}

func TestPreemptedRoomGoesToTheHeadNextRound(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		st := contend(genState(t))
		p := Schedule(st)
		if len(p.Preemptions) == 0 {
			return
		}
		next := apply(st, p)
		for _, r := range next.Runs {
			a := r.LiveAttempt()
			if a == nil {
				continue
			}
			switch {
			case slices.ContainsFunc(p.Preemptions, func(pr Preemption) bool { return pr.RunID == r.ID }):
				a.Ended, r.State = true, api.RunQueued
			case r.State != api.RunPreparing && r.State != api.RunRunning:
				a.Ended, r.State = true, api.RunCompleted
			}
		}
		// One head per target may have victims: check each against its own.
		var heads []string
		for _, pr := range p.Preemptions {
			if !slices.Contains(heads, pr.By) {
				heads = append(heads, pr.By)
			}
			// Spare this victim: its head must then not fit.
			spared := copyState(next)
			v := runByID(spared, pr.RunID)
			v.State, v.Current().Ended = api.RunRunning, false
			if fitsNow(spared, liveUsage(spared), runByID(spared, pr.By)) {
				t.Fatalf("preempted %s for %s, which fits without it\n%s", pr.RunID, pr.By, describe(st))
			}
		}
		p2 := Schedule(next)
		for _, head := range heads {
			if slices.ContainsFunc(p2.Preemptions, func(pr Preemption) bool { return pr.By == head }) ||
				!slices.ContainsFunc(p2.Placements, func(pl Placement) bool { return pl.RunID == head }) {
				t.Fatalf("after preempting for %s, next round gave %+v\nfirst %+v\nbefore:\n%s", head, p2, p, describe(st))
			}
		}
	})
}

// TestHintedSubmitChangesNoRound: a run added with the hint of its target,
// ask and priority as its reason (what the submit path does) changes
// nothing the round decides: the same placements, preemptions, reasons and
// hints, and nothing for the new run. This is what lets the leader skip
// rounds while only such submits arrive.
func TestHintedSubmitChangesNoRound(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		st := genState(t)
		if rapid.Bool().Draw(t, "contended") {
			contend(st)
		}
		st = apply(st, Schedule(st)) // the loop runs on states its plans made
		p := Schedule(st)
		var seq uint64
		for _, r := range st.Runs {
			seq = max(seq, r.QueueSeq)
		}
		for _, w := range st.Runs {
			if w.State != api.RunQueued {
				continue
			}
			r := w.Copy()
			r.ID, r.QueueSeq, r.Attempts = "hinted-"+w.ID, seq+1, nil
			if r.Reason = p.Hints.Reason(r); r.Reason == "" {
				continue
			}
			next := copyState(st)
			next.Runs = append(next.Runs, r)
			if p2 := Schedule(next); !reflect.DeepEqual(p2, p) {
				t.Fatalf("adding %s (like %s, reason %q) changed the round:\n%+v\nwas\n%+v\nstate:\n%s", r.ID, w.ID, r.Reason, p2, p, describe(st))
			}
		}
	})
}

// TestScaleDecisionsChangeNoRound: what the autoscaler writes to a target
// (its node count goal, its scale reason, the allocation state they give)
// is not read by a round, so raftstore need not count it as a scheduling
// change.
func TestScaleDecisionsChangeNoRound(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		st := genState(t)
		p := Schedule(st)
		next := copyState(st)
		for _, tg := range next.Targets {
			tg.TargetNodeCount = rapid.IntRange(0, 8).Draw(t, "target_node_count")
			tg.ScaleReason = rapid.StringMatching(`[a-z ]{0,20}`).Draw(t, "scale_reason")
			tg.AllocationState = rapid.SampledFrom([]string{api.AllocationSteady, api.AllocationResizing}).Draw(t, "allocation_state")
		}
		if p2 := Schedule(next); !reflect.DeepEqual(p2, p) {
			t.Fatalf("a scale decision changed the round:\n%+v\nwas\n%+v", p2, p)
		}
	})
}
