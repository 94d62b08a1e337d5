package autoscale

import (
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/internal/waits"
)

// Input is everything Decide looks at for one cluster. Decide changes
// nothing it is given.
type Input struct {
	// Now is the time of the decision; Decide reads no clock.
	Now time.Time
	// Target is the cluster; it must not be nil. Decide reads Name, Type, MinNodes, MaxNodes,
	// IdleSeconds(), ProvisioningState, ProviderFailures and
	// LastProviderFailure, so an update of min/max takes effect on the next
	// call. Targets whose Type is set and is not cluster are not scaled.
	Target *api.Target
	// Size is the target's vm_size: the shape of every new node.
	Size api.VMSize
	// Nodes are the target's nodes, in any state. Nil entries and nodes of
	// other targets are ignored.
	Nodes []*api.Node
	// Runs are the target's runs that are Queued or hold a live attempt
	// (r.LiveAttempt() != nil); others are ignored.
	Runs []*api.Run
}

// NodeAction names one node to act on and says why.
type NodeAction struct {
	NodeID     string
	ProviderID string
	// Reason says in words why, for the node's Reason and the event log.
	Reason string
}

// Decision is the outcome of Decide for one cluster.
type Decision struct {
	// Target is the cluster's name.
	Target string
	// TargetNodeCount is how many nodes the cluster should have: the
	// nodes the queue and the live work need, clamped to
	// [min_nodes, max_nodes]; 0 for a Deleting target.
	TargetNodeCount int
	// Needed is the demand before clamping: nodes holding live work, ready
	// or preparing nodes the waiting runs would use, and new nodes they
	// would need. Waiting runs that could never fit are left out.
	Needed int
	// Create is how many new nodes to ask the provider for now:
	// TargetNodeCount minus the ready and preparing nodes when positive,
	// and 0 while backing off after provider failures.
	Create int
	// Delete lists nodes to remove, each at most once: nodes idle past
	// idle_seconds_before_scaledown above max(min_nodes, TargetNodeCount);
	// idle or preparing nodes above a lowered max_nodes; unusable and
	// preempted nodes; preparing nodes that missed their deadline (also in
	// MarkUnusable); and every node of a Deleting target. It never holds a
	// node with live work or a node already leaving.
	Delete []NodeAction
	// MarkUnusable lists preparing nodes whose provisioning deadline
	// (CreatedAt + Config.ProvisioningTimeout) has passed; the reason names
	// the deadline. They no longer count as capacity, so replacements are
	// part of Create, and they also appear in Delete.
	MarkUnusable []NodeAction
	// Counts counts the target's nodes by state as given, before any of
	// this decision's actions.
	Counts api.NodeStateCounts
	// BackoffUntil is when creates may resume after provider failures;
	// zero when not backing off.
	BackoffUntil time.Time
	// Reason says in words why the decision is what it is, for the
	// target's scale_reason.
	Reason string
	// NextCheck is the earliest time the decision may change with no other
	// event (an idle node expiring, a provisioning deadline, the end of a
	// backoff that holds back creates); zero when only an event can
	// change it.
	NextCheck time.Time
	// Saturated is set when the waiting runs need new nodes beyond
	// max_nodes: while that lasts, only the cluster's settings, its nodes
	// and time change the decision, beyond Needed and the counts in
	// Reason (see Holds).
	Saturated bool
}

// AllocationState is the cluster's allocation_state after this decision:
// Resizing while nodes are being created, prepared or deleted, else Steady.
func (d Decision) AllocationState() string {
	if d.Create > 0 || len(d.Delete) > 0 || d.Counts.Preparing > 0 || d.Counts.Leaving > 0 {
		return api.AllocationResizing
	}
	return api.AllocationSteady
}

// Decide computes the scaling decision for one cluster at in.Now. It is a
// pure function of its arguments; zero fields of cfg mean their defaults.
// See the package doc and the Decision fields for the rules.
func Decide(cfg Config, in Input) Decision {
	cfg = cfg.withDefaults()
	t := in.Target
	d := Decision{Target: t.Name}
	v := newView(cfg, in)
	d.Counts = v.counts
	if t.Type != "" && t.Type != api.KindCluster {
		d.Reason = "not a cluster: " + t.Type + " targets are not autoscaled"
		return d
	}
	if t.ProvisioningState == api.ProvisioningDeleting {
		decideDeleting(&d, v)
		return d
	}
	var r reasons
	v.markExpired(&d, &r)
	v.deleteBroken(&d, &r)

	dem := v.demand(in)
	d.Needed = dem.needed
	d.TargetNodeCount = max(min(dem.needed, t.MaxNodes), t.MinNodes)
	d.TargetNodeCount = min(d.TargetNodeCount, max(t.MaxNodes, 0))
	have := len(v.ready) + len(v.preparing)
	d.Saturated = v.saturated(dem)

	var scale string
	if want := d.TargetNodeCount - have; want > 0 {
		until := t.LastProviderFailure.Add(cfg.BackoffDelay(t.ProviderFailures))
		if t.ProviderFailures > 0 && in.Now.Before(until) {
			d.BackoffUntil = until
			d.NextCheck = until
			scale = backoffReason(t.ProviderFailures, until, want, in.Size.Name)
		} else {
			d.Create = want
			scale = growReason(dem, d.TargetNodeCount, have, want, t, in.Size.Name)
		}
	} else {
		count := have
		scale = v.scaleDown(&d, dem, &count)
		if scale == "" {
			scale = steadyReason(dem, d.TargetNodeCount, have, len(v.preparing), t, in.Size.Name)
		}
		v.idleNextCheck(&d, dem, count)
	}
	for _, n := range v.preparing {
		d.NextCheck = waits.Earliest(d.NextCheck, v.deadline(n))
	}
	d.Reason = r.join(scale, dem.unfitReason(t, in.Size.Name))
	return d
}

// decideDeleting removes every node of a Deleting target that holds no live
// work and is not already leaving.
func decideDeleting(d *Decision, v *view) {
	var held []string
	for _, n := range v.nodes {
		switch {
		case n.State == api.NodeLeaving:
		case v.hasWork(n):
			held = append(held, n.ID)
		default:
			d.Delete = append(d.Delete, action(n, "target is being deleted"))
		}
	}
	var r reasons
	r.add("target is Deleting: removing %s", plural(len(d.Delete), "node"))
	if len(held) > 0 {
		r.add("%s waiting for runs to end", nodesPhrase(held))
	}
	d.Reason = r.join("")
}

// action makes a NodeAction for n.
func action(n *api.Node, reason string) NodeAction {
	return NodeAction{NodeID: n.ID, ProviderID: n.ProviderID, Reason: reason}
}
