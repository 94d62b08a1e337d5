package raftstore

import (
	"errors"
	"fmt"
	"slices"

	"github.com/amld/amld/api"
)

// Run reasons the state machine writes.
const (
	reasonSubmitted      = "waiting for the scheduler"
	reasonCanceledByUser = "canceled by user"
	reasonCancelAsked    = "cancel requested"
	reasonCanceled       = "canceled"
)

func (a *applier) runSubmit(r *RunSubmitRequest) error {
	run := r.Run
	if run == nil {
		return api.Invalid("run", "is required")
	}
	if err := checkKey("id", run.ID); err != nil {
		return err
	}
	if a.run(run.ID) != nil {
		return api.Conflict("run %q already exists", run.ID)
	}
	if err := a.checkTargetOpen(run.Target); err != nil {
		return err
	}
	run.State = api.RunQueued
	run.Reason = reasonSubmitted
	if r.Reason != "" {
		run.Reason = r.Reason
		a.unseen = true // it waits like a run already there (RunSubmitRequest.Reason)
	}
	run.QueueSeq = a.seq
	run.Attempts = nil
	run.Retries, run.Preemptions = 0, 0
	run.ExitCode = nil
	run.CreateIndex = a.index
	a.putRun(run)
	a.putRunKey(run.ID, r.SSHKey)
	return nil
}

func (a *applier) runCancel(r *RunCancelRequest) error {
	old := a.run(r.RunID)
	if old == nil {
		return api.NotFound("run %q not found", r.RunID)
	}
	switch {
	case old.State == api.RunQueued:
		run := old.Copy()
		a.finishRun(run, api.RunCanceled, reasonCanceledByUser)
		a.putRun(run)
	case old.State == api.RunCancelRequested:
		// Already asked; the agents' reports finish it.
	case api.RunActive(old.State):
		run := old.Copy()
		run.State = api.RunCancelRequested
		run.Reason = reasonCancelAsked
		a.putRun(run)
	default:
		return api.FailedPrecondition("run %s is already %s", old.ID, old.State)
	}
	return nil
}

// finishRun moves run (a copy) to a terminal state.
func (a *applier) finishRun(run *api.Run, state, reason string) {
	run.State = state
	run.Reason = reason
	run.EndedAt = a.now
	a.dropCheckpoint(run)
	a.dropRunKey(run.ID)
}

// endAttempt marks at (inside a copied run) over.
func (a *applier) endAttempt(at *api.Attempt, exitCode *int, reason string) {
	at.Ended = true
	at.EndedAt = a.now
	at.ExitCode = exitCode
	at.Reason = reason
}

// requeueAfterLoss decides a run's fate after its attempt was lost through
// no fault of its command (lost or preempted node, lost attempt, priority
// preemption): Canceled if a cancel was asked, else back to Queued at its
// original place with Preemptions+1, or Failed past max_preemptions.
func (a *applier) requeueAfterLoss(run *api.Run, why string) {
	if run.State == api.RunCancelRequested {
		a.finishRun(run, api.RunCanceled, reasonCanceled)
		return
	}
	run.Preemptions++
	if m := run.MaxPreemptionsOrDefault(); run.Preemptions > m {
		a.finishRun(run, api.RunFailed, fmt.Sprintf("preempted %d times, max_preemptions=%d", run.Preemptions, m))
		return
	}
	run.State = api.RunQueued
	run.Reason = "requeued: " + why
}

func (a *applier) planApply(r *PlanApplyRequest) error {
	for _, p := range r.Preemptions {
		a.preempt(p)
	}
	for _, p := range r.Placements {
		if err := a.place(p); err != nil {
			a.log.Debug("raftstore: placement skipped", "run", p.RunID, "index", a.index, "why", err)
		}
	}
	for _, w := range r.Reasons {
		old := a.run(w.RunID)
		if old == nil || old.State != api.RunQueued || old.Reason == w.Reason {
			continue
		}
		run := old.Copy()
		run.Reason = w.Reason
		a.putRun(run)
	}
	return nil
}

func (a *applier) preempt(p Preemption) {
	old := a.run(p.RunID)
	if old == nil || old.LiveAttempt() == nil {
		return
	}
	run := old.Copy()
	at := run.LiveAttempt()
	why := "preempted"
	if p.By != "" {
		why = "preempted by run " + p.By
	}
	if at.StopReason != "" {
		return // already on its way out
	}
	if p.GraceSeconds > 0 {
		a.beginStop(run, at, why, p.GraceSeconds)
		a.putRun(run)
		return
	}
	a.endAttempt(at, nil, why)
	a.requeueAfterLoss(run, why)
	a.touchAttempt(at)
	a.putRun(run)
}

// place gives a queued run its next attempt, or says why it cannot.
func (a *applier) place(p Placement) error {
	old := a.run(p.RunID)
	if old == nil {
		return errors.New("no such run")
	}
	if old.State != api.RunQueued {
		return fmt.Errorf("run is %s", old.State)
	}
	if n := max(old.NodeCount, 1); len(p.Allocations) != n {
		return fmt.Errorf("run needs %d nodes, placement has %d", n, len(p.Allocations))
	}
	for i, al := range p.Allocations {
		if slices.ContainsFunc(p.Allocations[:i], func(o api.Allocation) bool { return o.NodeID == al.NodeID }) {
			return fmt.Errorf("node %s is given twice", al.NodeID)
		}
		n := a.node(al.NodeID)
		switch {
		case n == nil:
			return fmt.Errorf("node %s not found", al.NodeID)
		case !n.Ready():
			return fmt.Errorf("node %s is %s", n.ID, n.State)
		case n.Target != old.Target:
			return fmt.Errorf("node %s is of target %s, not %s", n.ID, n.Target, old.Target)
		}
		if err := a.checkFits(n, al); err != nil {
			return err
		}
	}
	run := old.Copy()
	nodes := make([]api.NodeAttempt, len(p.Allocations))
	for i := range nodes {
		nodes[i].State = api.AttemptPreparing
	}
	run.Attempts = append(run.Attempts, api.Attempt{
		Number:      len(run.Attempts) + 1,
		Allocations: p.Allocations,
		Nodes:       nodes,
		PlacedAt:    a.now,
	})
	run.State = api.RunPreparing
	run.Reason = ""
	a.touchAttempt(run.Current())
	a.putRun(run)
	return nil
}

// checkFits checks that an allocation fits beside the live allocations on
// the node: resources within what is free, GPU UUIDs present and not held.
func (a *applier) checkFits(n *api.Node, al api.Allocation) error {
	req := al.Resources
	if req.CPUs < 0 || req.MemoryMB < 0 || req.GPUs < 0 {
		return fmt.Errorf("negative resources %v", req)
	}
	var used api.Resources
	held := map[string]bool{}
	for _, r := range a.runsOnNode(n.ID) {
		for _, x := range r.LiveAttempt().Allocations {
			if x.NodeID != n.ID {
				continue
			}
			used = used.Add(x.Resources)
			for _, u := range x.GPUUUIDs {
				held[u] = true
			}
		}
	}
	if free := n.Capacity.Sub(used); !req.Fits(free) {
		return fmt.Errorf("node %s has %v free, placement needs %v", n.ID, free, req)
	}
	for i, u := range al.GPUUUIDs {
		switch {
		case !slices.ContainsFunc(n.GPUs, func(g api.GPU) bool { return g.UUID == u }):
			return fmt.Errorf("node %s has no GPU %s", n.ID, u)
		case held[u] || slices.Contains(al.GPUUUIDs[:i], u):
			return fmt.Errorf("GPU %s of node %s is taken", u, n.ID)
		}
	}
	return nil
}
