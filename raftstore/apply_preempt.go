package raftstore

import (
	"fmt"
	"time"

	"github.com/amld/amld/api"
)

func (a *applier) nodeEvict(r *NodeEvictRequest) error {
	old := a.node(r.NodeID)
	if old == nil {
		return api.NotFound("node %q not found", r.NodeID)
	}
	if r.GraceSeconds < 0 || r.GraceSeconds > api.MaxPreemptionGraceSeconds {
		return api.Invalid("grace_seconds", "must be 0..%d", api.MaxPreemptionGraceSeconds)
	}
	switch old.State {
	case api.NodePreparing, api.NodeIdle, api.NodeRunning, api.NodePreempted:
	default:
		return api.FailedPrecondition("node %s is %s and cannot be evicted", old.ID, old.State)
	}
	n := old.Copy()
	if old.State != api.NodePreempted || n.Reason == "" {
		n.Reason = r.Reason
	}
	a.setNodeState(n, api.NodePreempted)
	deadline := r.Time.Add(time.Duration(r.GraceSeconds) * time.Second)
	if n.EvictionDeadline.IsZero() || deadline.Before(n.EvictionDeadline) {
		n.EvictionDeadline = deadline
	}
	a.putNode(n)
	why := "preempted: node " + n.ID
	if n.Reason != "" {
		why += " " + n.Reason
	}
	for _, old := range a.runsOnNode(n.ID) {
		run := old.Copy()
		at := run.LiveAttempt()
		if r.GraceSeconds > 0 {
			a.beginStop(run, at, why, r.GraceSeconds)
		} else {
			reason := why
			if at.StopReason != "" {
				reason = at.StopReason + " (the machine was taken at the end of the notice)"
			}
			for i, al := range at.Allocations {
				if i >= len(at.Nodes) {
					break
				}
				if na := &at.Nodes[i]; al.NodeID == n.ID && na.State != api.AttemptExited {
					na.State = api.AttemptExited
					na.Reason = reason
					na.Ended = a.now
				}
			}
			a.endAttempt(at, nil, reason)
			a.requeueAfterLoss(run, reason)
		}
		a.touchAttempt(at)
		a.putRun(run)
	}
	return nil
}

// beginStop asks the live attempt at (inside a copied run) to stop within
// grace seconds, to be requeued for why. An attempt already stopping keeps
// its reason and the earlier deadline.
func (a *applier) beginStop(run *api.Run, at *api.Attempt, why string, grace int) {
	deadline := a.now.Add(time.Duration(grace) * time.Second)
	if at.StopReason != "" {
		if !at.StopDeadline.After(deadline) {
			return
		}
	} else {
		at.StopReason = why
	}
	at.StopDeadline = deadline
	at.StopGraceSeconds = grace
	if run.State != api.RunCancelRequested {
		run.Reason = fmt.Sprintf("stopping (grace %ds): %s", grace, at.StopReason)
	}
}

// stoppedOver reports whether an exit report s of an attempt being stopped
// ends it as preempted: anything but the command finishing by itself with
// exit code 0.
func stoppedOver(at *api.Attempt, s api.AttemptStatus) bool {
	return at.StopReason != "" && (s.Stopped || s.Lost || s.TimedOut || s.ExitCode == nil || *s.ExitCode != 0)
}

// endStopped ends an attempt that stopped for a preemption and requeues
// its run.
func (a *applier) endStopped(run *api.Run, at *api.Attempt, s api.AttemptStatus) {
	a.endAttempt(at, cloneInt(s.ExitCode), at.StopReason)
	a.requeueAfterLoss(run, at.StopReason)
}

func (a *applier) checkpointPut(r *CheckpointPutRequest) error {
	b := r.Blob
	if b == nil {
		return api.Invalid("blob", "is required")
	}
	if err := checkKey("blob.id", b.ID); err != nil {
		return err
	}
	old := a.run(r.RunID)
	if old == nil {
		return api.NotFound("run %q not found", r.RunID)
	}
	if _, err := fence(old, r.Attempt, 0, r.NodeID); err != nil {
		return err
	}
	if len(b.Data) == 0 {
		return api.Invalid("blob", "is empty")
	}
	if len(b.Data) > api.MaxCheckpointBytes {
		return api.TooLarge("a checkpoint of %d bytes is over the cap of %d", len(b.Data), api.MaxCheckpointBytes)
	}
	if old.CheckpointID == b.ID {
		return nil
	}
	if have := first[Blob](a.txn, tableBlobs, b.ID); have == nil {
		nb := *b
		nb.Size = int64(len(nb.Data))
		if nb.CreatedAt.IsZero() {
			nb.CreatedAt = r.Time
		}
		a.insert(tableBlobs, &nb)
	}
	run := old.Copy()
	a.dropCheckpoint(run)
	run.CheckpointID = b.ID
	run.CheckpointSize = int64(len(b.Data))
	run.CheckpointAttempt = r.Attempt
	run.CheckpointAt = r.Time
	a.putRun(run)
	return nil
}

// dropCheckpoint removes the checkpoint blob of run (a copy) and forgets
// it; CheckpointSize, CheckpointAttempt and CheckpointAt are kept as the
// record of the last one.
func (a *applier) dropCheckpoint(run *api.Run) {
	if run.CheckpointID == "" {
		return
	}
	if b := first[Blob](a.txn, tableBlobs, run.CheckpointID); b != nil {
		a.remove(tableBlobs, b)
	}
	run.CheckpointID = ""
}
