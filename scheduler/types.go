package scheduler

import "github.com/amld/amld/api"

// State is what one scheduling round sees: an immutable snapshot. The
// scheduler never changes anything it is given.
type State struct {
	// Targets by name.
	Targets map[string]*api.Target
	// VMSizes is the size catalogue by name.
	VMSizes map[string]api.VMSize
	// Nodes are all nodes of all targets.
	Nodes []*api.Node
	// Runs are the runs that are Queued or hold a live attempt; others are
	// ignored.
	Runs []*api.Run
}

// Placement gives a queued run its next attempt: one allocation per node,
// in rank order (Allocations[0] is node 0).
type Placement struct {
	RunID       string
	Allocations []api.Allocation
}

// WaitReason says why a queued run was not placed this round.
type WaitReason struct {
	RunID  string
	Reason string
}

// Preemption requeues a running run so that a higher-priority one can start.
type Preemption struct {
	RunID string
	// By is the run that needs the room.
	By string
}

// Plan is the outcome of one round. The leader commits it through Raft in
// one command; the state machine re-checks every placement.
type Plan struct {
	Placements  []Placement
	Reasons     []WaitReason
	Preemptions []Preemption
	// Hints are the reasons the round gave, by what runs ask (see Hints).
	// They are not part of the plan's changes: the leader keeps them to
	// word the reason of runs submitted before the next round.
	Hints Hints
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool {
	return len(p.Placements) == 0 && len(p.Reasons) == 0 && len(p.Preemptions) == 0
}
