package autoscale

import (
	"cmp"
	"reflect"
	"slices"
	"time"

	"github.com/amld/amld/api"
)

// A cluster is saturated when its waiting runs need new nodes beyond
// max_nodes (and it has neither more nodes than that nor broken ones).
// Deciding reads (and packs) every waiting run, which for a deep backlog
// costs milliseconds; yet while the cluster stays saturated, more waiting
// runs, fewer, or runs starting and ending on its nodes change nothing but
// Needed and the counts in Reason: the target is max_nodes either way,
// every node of the vm_size's capacity that holds no work is wanted by a
// waiting run, and so no idle node is let go. A caller may therefore let a
// saturated decision stand (Decision.Holds) until the cluster's settings
// or nodes change, its NextCheck comes, or HoldFor passes; the last bounds
// how stale the counts get, and how late a queue that drained below
// max_nodes is seen.

// HoldFor is how long a saturated decision may stand while only the
// cluster's runs change.
const HoldFor = time.Second

// saturated reports whether dem needs new nodes beyond max_nodes, in a
// cluster that is neither above max_nodes nor holds unusable, preempted
// or expired nodes: there, a node whose runs end is deleted at once.
func (v *view) saturated(dem demand) bool {
	t := v.target
	return dem.newNodes > 0 && dem.needed > t.MaxNodes && t.MaxNodes >= t.MinNodes &&
		len(v.ready)+len(v.preparing) <= t.MaxNodes && len(v.broken) == 0 && len(v.expired) == 0
}

// Holds reports whether d, the decision Decide made for prev, may stand
// for next without deciding again: d is Saturated, next comes less than
// HoldFor after prev and before d.NextCheck, and next has prev's target
// settings, vm_size and nodes, ready nodes going between idle and running
// aside. The runs are not compared (see the comment above HoldFor).
func (d Decision) Holds(prev, next Input) bool {
	if !d.Saturated || next.Now.Sub(prev.Now) >= HoldFor || next.Now.Before(prev.Now) {
		return false
	}
	if !d.NextCheck.IsZero() && !next.Now.Before(d.NextCheck) {
		return false
	}
	if !reflect.DeepEqual(prev.Size, next.Size) || !reflect.DeepEqual(settings(prev.Target), settings(next.Target)) {
		return false
	}
	a, b := ownNodes(prev), ownNodes(next)
	return slices.EqualFunc(a, b, func(x, y *api.Node) bool {
		return reflect.DeepEqual(nodeSettings(x), nodeSettings(y))
	})
}

// settings is a copy of t without what its nodes and the decisions
// themselves change: counts, states and the scale decision.
func settings(t *api.Target) api.Target {
	c := *t
	c.AllocationState, c.State, c.ScaleReason = "", "", ""
	c.CurrentNodeCount, c.TargetNodeCount = 0, 0
	c.NodeStateCounts = api.NodeStateCounts{}
	c.UpdatedAt, c.ModifyIndex = time.Time{}, 0
	return c
}

// nodeSettings is a copy of n in which a ready node is just ready: whether
// it is idle or running, and since when, left out.
func nodeSettings(n *api.Node) api.Node {
	c := *n
	if n.Ready() {
		c.State = api.NodeIdle
		c.IdleSince, c.StateChangedAt = time.Time{}, time.Time{}
		c.ModifyIndex = 0
	}
	return c
}

// ownNodes is in's nodes of its target, sorted by ID.
func ownNodes(in Input) []*api.Node {
	var ns []*api.Node
	for _, n := range in.Nodes {
		if n != nil && (n.Target == "" || n.Target == in.Target.Name) {
			ns = append(ns, n)
		}
	}
	slices.SortFunc(ns, func(a, b *api.Node) int { return cmp.Compare(a.ID, b.ID) })
	return ns
}
