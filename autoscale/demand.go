package autoscale

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/amld/amld/api"
	"github.com/amld/amld/scheduler"
)

// demand is what the queue and the live work need of the cluster.
type demand struct {
	// needed = busy + (idle or preparing nodes Pack used) + newNodes.
	needed int
	// busy counts ready nodes holding live work or in state running.
	busy int
	// waiting counts the queued runs that were fitted.
	waiting int
	// newNodes is how many template nodes the waiting runs need (Pack's
	// NewBins).
	newNodes int
	// planned holds the IDs of non-busy ready and preparing nodes that
	// waiting runs would use.
	planned map[string]bool
	// unfit counts queued runs that could never fit: a per-node request
	// larger than the vm_size, or node_count above max_nodes.
	unfit int
}

// queue returns the target's queued runs in queue order: priority
// descending, then QueueSeq, then ID. A run whose attempt is being stopped
// to be requeued (its node was evicted, or it was preempted) counts as
// queued already, so that its next node is made during the grace period.
func queue(in Input) []*api.Run {
	var q []*api.Run
	for _, r := range in.Runs {
		if ownRun(r, in.Target) && (r.State == api.RunQueued && r.LiveAttempt() == nil || requeuing(r)) {
			q = append(q, r)
		}
	}
	slices.SortStableFunc(q, func(a, b *api.Run) int {
		return cmp.Or(cmp.Compare(b.Priority, a.Priority), cmp.Compare(a.QueueSeq, b.QueueSeq), cmp.Compare(a.ID, b.ID))
	})
	return q
}

// requeuing reports whether r's live attempt is being stopped to be
// requeued (not canceled).
func requeuing(r *api.Run) bool {
	a := r.LiveAttempt()
	return a != nil && a.StopReason != "" && r.State != api.RunCancelRequested
}

// demand fits the queue, gangs whole, onto the free room of ready nodes,
// onto preparing nodes (as empty nodes of the vm_size) and then onto new
// nodes of the vm_size, with scheduler.Pack.
func (v *view) demand(in Input) demand {
	tmpl := in.Size.Resources()
	dem := demand{planned: make(map[string]bool)}
	var runs []*api.Run
	for _, r := range queue(in) {
		if max(r.NodeCount, 1) > v.target.MaxNodes {
			dem.unfit++
			continue
		}
		runs = append(runs, r)
	}
	var bins []api.Resources
	var binNodes []*api.Node
	for _, n := range v.ready {
		if v.busy(n) {
			dem.busy++
		}
		capacity := n.Capacity
		if capacity.IsZero() {
			capacity = tmpl
		}
		bins = append(bins, nonNegative(capacity.Sub(v.alloc[n.ID])))
		binNodes = append(binNodes, n)
	}
	for _, n := range v.preparing {
		bins = append(bins, tmpl)
		binNodes = append(binNodes, n)
	}
	res := scheduler.Pack(bins, tmpl, runs, -1)
	dem.unfit += len(res.Unfit)
	dem.waiting = len(runs) - len(res.Unfit)
	dem.newNodes = res.NewBins
	for i, used := range res.UsedBins {
		if n := binNodes[i]; used && !v.busy(n) {
			dem.planned[n.ID] = true
		}
	}
	dem.needed = dem.busy + len(dem.planned) + dem.newNodes
	return dem
}

// nonNegative clamps each amount of r at zero.
func nonNegative(r api.Resources) api.Resources {
	return api.Resources{CPUs: max(r.CPUs, 0), MemoryMB: max(r.MemoryMB, 0), GPUs: max(r.GPUs, 0)}
}

// unfitReason says how many waiting runs were left out of the demand.
func (dem demand) unfitReason(t *api.Target, size string) string {
	if dem.unfit == 0 {
		return ""
	}
	return fmt.Sprintf("%s ignored: larger than a node of %s or than max_nodes=%d",
		plural(dem.unfit, "waiting run"), size, t.MaxNodes)
}
