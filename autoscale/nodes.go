package autoscale

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/internal/waits"
)

// view is one cluster's nodes sorted by what Decide may do with them.
type view struct {
	cfg    Config
	now    time.Time
	target *api.Target
	// nodes are the target's nodes (nil entries and other targets' dropped).
	nodes []*api.Node
	// alloc sums the live allocations per node ID.
	alloc  map[string]api.Resources
	counts api.NodeStateCounts
	// ready are idle and running nodes.
	ready []*api.Node
	// preparing are preparing nodes still within their deadline.
	preparing []*api.Node
	// expired are preparing nodes past their deadline.
	expired []*api.Node
	// broken are unusable and preempted nodes.
	broken []*api.Node
	// deleted holds the IDs already put in Decision.Delete.
	deleted map[string]bool
}

func newView(cfg Config, in Input) *view {
	v := &view{
		cfg:     cfg,
		now:     in.Now,
		target:  in.Target,
		alloc:   make(map[string]api.Resources),
		deleted: make(map[string]bool),
	}
	for _, r := range in.Runs {
		if !ownRun(r, in.Target) {
			continue
		}
		if a := r.LiveAttempt(); a != nil {
			for _, al := range a.Allocations {
				v.alloc[al.NodeID] = v.alloc[al.NodeID].Add(al.Resources)
			}
		}
	}
	// Sorted by ID, so that the decision does not depend on input order.
	v.nodes = ownNodes(in)
	for _, n := range v.nodes {
		v.counts.Add(n.State)
		switch n.State {
		case api.NodeIdle, api.NodeRunning:
			v.ready = append(v.ready, n)
		case api.NodePreparing:
			if in.Now.Before(v.deadline(n)) {
				v.preparing = append(v.preparing, n)
			} else {
				v.expired = append(v.expired, n)
			}
		case api.NodeUnusable, api.NodePreempted:
			v.broken = append(v.broken, n)
		}
	}
	return v
}

// ownRun reports whether r is a run of target t.
func ownRun(r *api.Run, t *api.Target) bool {
	return r != nil && (r.Target == "" || r.Target == t.Name)
}

// hasWork reports whether a live attempt holds an allocation on n.
func (v *view) hasWork(n *api.Node) bool {
	_, ok := v.alloc[n.ID]
	return ok
}

// busy reports whether n counts as needed for work already placed: it holds
// live work, or says it is running.
func (v *view) busy(n *api.Node) bool {
	return v.hasWork(n) || n.State == api.NodeRunning
}

// deadline is when a preparing node n stops being worth waiting for.
func (v *view) deadline(n *api.Node) time.Time {
	return n.CreatedAt.Add(v.cfg.ProvisioningTimeout)
}

// idleSince is when n became idle, falling back to its last state change
// and then its creation when the record lacks it.
func idleSince(n *api.Node) time.Time {
	for _, t := range []time.Time{n.IdleSince, n.StateChangedAt} {
		if !t.IsZero() {
			return t
		}
	}
	return n.CreatedAt
}

// idleExpiry is when idle node n may be scaled down.
func (v *view) idleExpiry(n *api.Node) time.Time {
	return idleSince(n).Add(time.Duration(max(v.target.IdleSeconds(), 0)) * time.Second)
}

// idleFor is how many whole seconds n has been idle at v.now.
func (v *view) idleFor(n *api.Node) int {
	return int(v.now.Sub(idleSince(n)) / time.Second)
}

// del appends n to d.Delete unless it is there already or holds live work.
func (v *view) del(d *Decision, n *api.Node, reason string) bool {
	if v.deleted[n.ID] || v.hasWork(n) || n.State == api.NodeLeaving {
		return false
	}
	v.deleted[n.ID] = true
	d.Delete = append(d.Delete, action(n, reason))
	return true
}

// markExpired marks preparing nodes past their deadline unusable and
// deletes them.
func (v *view) markExpired(d *Decision, r *reasons) {
	var ids []string
	for _, n := range v.expired {
		why := fmt.Sprintf("missed its provisioning deadline %s (provisioning timeout %v)",
			clock(v.deadline(n)), v.cfg.ProvisioningTimeout)
		d.MarkUnusable = append(d.MarkUnusable, action(n, why))
		v.del(d, n, "unusable: "+why)
		ids = append(ids, n.ID)
	}
	if len(ids) > 0 {
		r.add("%s missed the provisioning deadline (%v): replacing", nodesPhrase(ids), v.cfg.ProvisioningTimeout)
	}
}

// deleteBroken deletes unusable and preempted nodes that hold no live work.
func (v *view) deleteBroken(d *Decision, r *reasons) {
	var gone, held []string
	for _, n := range v.broken {
		if v.del(d, n, n.State+": "+cmp.Or(n.Reason, "no reason given")) {
			gone = append(gone, n.ID)
		} else if v.hasWork(n) {
			held = append(held, n.ID)
		}
	}
	if len(gone) > 0 {
		r.add("deleting unusable or preempted %s", nodesPhrase(gone))
	}
	if len(held) > 0 {
		r.add("unusable or preempted %s kept until their runs end", nodesPhrase(held))
	}
}

// idleCandidates are ready idle nodes with no live work and no planned
// work, not yet deleted, longest idle first.
func (v *view) idleCandidates(dem demand) []*api.Node {
	var c []*api.Node
	for _, n := range v.ready {
		if n.State == api.NodeIdle && !v.hasWork(n) && !dem.planned[n.ID] && !v.deleted[n.ID] {
			c = append(c, n)
		}
	}
	slices.SortStableFunc(c, func(a, b *api.Node) int {
		return cmp.Or(idleSince(a).Compare(idleSince(b)), cmp.Compare(a.ID, b.ID))
	})
	return c
}

// scaleDown deletes idle nodes past the idle timeout while *count stays at
// or above max(min_nodes, TargetNodeCount), then trims idle and preparing
// nodes above a lowered max_nodes. It returns the reason, or "" when it
// deleted nothing.
func (v *view) scaleDown(d *Decision, dem demand, count *int) string {
	t := v.target
	floor := max(t.MinNodes, d.TargetNodeCount)
	var r reasons
	var gone []*api.Node
	for _, n := range v.idleCandidates(dem) {
		if *count-1 < floor || v.now.Before(v.idleExpiry(n)) {
			break // candidates are longest idle first: later ones expire later
		}
		why := fmt.Sprintf("idle %ds (idle_seconds_before_scaledown=%d)", v.idleFor(n), t.IdleSeconds())
		if v.del(d, n, "scale down: "+why) {
			gone = append(gone, n)
			*count--
		}
	}
	switch {
	case len(gone) == 1:
		r.add("scale down: node %s idle %ds (idle_seconds_before_scaledown=%d)",
			gone[0].ID, v.idleFor(gone[0]), t.IdleSeconds())
	case len(gone) > 1:
		r.add("scale down: %s idle past idle_seconds_before_scaledown=%d", nodesPhrase(ids(gone)), t.IdleSeconds())
	}
	if trimmed := v.trimToMax(d, dem, count); len(trimmed) > 0 {
		r.add("scale down to max_nodes=%d: deleting %s", t.MaxNodes, nodesPhrase(trimmed))
	}
	return r.join("")
}

// trimToMax deletes idle and preparing nodes without live work while more
// than max_nodes remain: idle nodes no waiting run would use (longest idle
// first), then preparing ones (newest first), then those waiting runs would
// use.
func (v *view) trimToMax(d *Decision, dem demand, count *int) []string {
	if *count <= v.target.MaxNodes {
		return nil
	}
	var idle, prep []*api.Node
	for _, n := range v.ready {
		if n.State == api.NodeIdle {
			idle = append(idle, n)
		}
	}
	prep = append(prep, v.preparing...)
	slices.SortStableFunc(idle, func(a, b *api.Node) int {
		return cmp.Or(idleSince(a).Compare(idleSince(b)), cmp.Compare(a.ID, b.ID))
	})
	slices.SortStableFunc(prep, func(a, b *api.Node) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	var order []*api.Node
	for _, planned := range []bool{false, true} {
		for _, group := range [][]*api.Node{idle, prep} {
			for _, n := range group {
				if dem.planned[n.ID] == planned {
					order = append(order, n)
				}
			}
		}
	}
	var gone []string
	for _, n := range order {
		if *count <= v.target.MaxNodes {
			break
		}
		if v.del(d, n, fmt.Sprintf("scale down to max_nodes=%d", v.target.MaxNodes)) {
			gone = append(gone, n.ID)
			*count--
		}
	}
	return gone
}

// idleNextCheck moves d.NextCheck to the earliest idle expiry still ahead,
// when count nodes are more than the floor so that an expiry would delete.
func (v *view) idleNextCheck(d *Decision, dem demand, count int) {
	if count <= max(v.target.MinNodes, d.TargetNodeCount) {
		return
	}
	for _, n := range v.idleCandidates(dem) {
		if exp := v.idleExpiry(n); exp.After(v.now) {
			d.NextCheck = waits.Earliest(d.NextCheck, exp)
		}
	}
}

func ids(ns []*api.Node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.ID
	}
	return out
}
