package raftstore

import (
	"fmt"

	"github.com/amld/amld/api"
)

// attemptStateRank orders the states of a node's share of an attempt; a
// report never moves it backwards.
var attemptStateRank = map[string]int{
	api.AttemptPreparing:  0,
	api.AttemptRunning:    1,
	api.AttemptFinalizing: 2,
	api.AttemptExited:     3,
}

// fence checks that nodeID holds rank node of attempt number of run and
// that the attempt is live, and returns the attempt's position.
func fence(run *api.Run, number, node int, nodeID string) (int, error) {
	i := number - 1
	if i < 0 || i >= len(run.Attempts) || i != len(run.Attempts)-1 || run.Attempts[i].Ended {
		return 0, api.FailedPrecondition("attempt %d of run %s is no longer current", number, run.ID)
	}
	at := &run.Attempts[i]
	if node < 0 || node >= len(at.Allocations) || node >= len(at.Nodes) || at.Allocations[node].NodeID != nodeID {
		return 0, api.FailedPrecondition("node %s does not hold rank %d of attempt %d of run %s", nodeID, node, number, run.ID)
	}
	return i, nil
}

func (a *applier) attemptStatus(r *AttemptStatusRequest) error {
	s := r.Status
	old := a.run(s.RunID)
	if old == nil {
		return api.NotFound("run %q not found", s.RunID)
	}
	i, err := fence(old, s.Attempt, s.NodeIndex, r.NodeID)
	if err != nil {
		return err
	}
	state := s.State
	if s.Lost {
		state = api.AttemptExited
	}
	switch state {
	case api.AttemptRunning, api.AttemptFinalizing, api.AttemptExited:
	default:
		return api.Invalid("state", "must be %s, %s or %s", api.AttemptRunning, api.AttemptFinalizing, api.AttemptExited)
	}
	if state == api.AttemptExited && s.ExitCode == nil && !s.Lost && !s.TimedOut {
		return api.Invalid("exit_code", "is required when state is %s", api.AttemptExited)
	}
	if attemptStateRank[state] <= attemptStateRank[old.Attempts[i].Nodes[s.NodeIndex].State] {
		return nil // a repeated or late report: nothing to do
	}

	run := old.Copy()
	at := &run.Attempts[i]
	na := &at.Nodes[s.NodeIndex]
	na.State = state
	switch state {
	case api.AttemptRunning:
		na.Started = a.now
		if at.StartedAt.IsZero() {
			at.StartedAt = a.now
		}
		if run.StartedAt.IsZero() {
			run.StartedAt = a.now
		}
		if run.State == api.RunPreparing {
			run.State = api.RunRunning
		}
	case api.AttemptFinalizing:
		if s.NodeIndex == 0 && (run.State == api.RunRunning || run.State == api.RunPreparing) {
			run.State = api.RunFinalizing
		}
	case api.AttemptExited:
		na.ExitCode = cloneInt(s.ExitCode)
		na.Reason = s.Reason
		na.Ended = a.now
		if s.NodeIndex == 0 && s.OutputsID != "" {
			at.OutputsID = s.OutputsID
		}
		switch {
		case !attemptOver(run, at, s):
		case stoppedOver(at, s):
			a.endStopped(run, at, s)
		default:
			a.finishAttempt(run, at, r.NodeID, s)
		}
	}
	a.touchAttempt(at)
	a.putRun(run)
	return nil
}

// attemptOver reports whether the attempt ends with this exit report: on
// any failure (non-zero exit, time-out, loss); for a gang started by mpirun
// (or a single node) when node 0 has exited; for distribution none when
// every node has.
func attemptOver(run *api.Run, at *api.Attempt, s api.AttemptStatus) bool {
	if s.Lost || s.TimedOut || (s.ExitCode != nil && *s.ExitCode != 0) || (s.Stopped && at.StopReason != "") {
		return true
	}
	if len(at.Nodes) == 1 || run.Distribution != api.DistributionNone {
		return at.Nodes[0].State == api.AttemptExited
	}
	for _, n := range at.Nodes {
		if n.State != api.AttemptExited {
			return false
		}
	}
	return true
}

// finishAttempt ends the attempt on the report s from nodeID and decides
// the run's fate.
func (a *applier) finishAttempt(run *api.Run, at *api.Attempt, nodeID string, s api.AttemptStatus) {
	where := fmt.Sprintf("on node %s (rank %d)", nodeID, s.NodeIndex)
	detail := ""
	if s.Reason != "" && (s.ExitCode == nil || s.Reason != fmt.Sprintf("exit code %d", *s.ExitCode)) {
		detail = ": " + s.Reason
	}
	switch {
	case s.Lost:
		why := "lost " + where + detail
		a.endAttempt(at, cloneInt(s.ExitCode), why)
		a.requeueAfterLoss(run, why)
	case s.TimedOut:
		limit := fmt.Sprintf("exceeded max_run_duration_seconds=%d", run.MaxRunDurationSeconds)
		a.endAttempt(at, cloneInt(s.ExitCode), limit+" "+where)
		run.ExitCode = cloneInt(s.ExitCode)
		if run.State == api.RunCancelRequested {
			a.finishRun(run, api.RunCanceled, reasonCanceled)
			return
		}
		a.finishRun(run, api.RunFailed, limit)
	case *s.ExitCode != 0:
		code := *s.ExitCode
		why := fmt.Sprintf("exit code %d %s%s", code, where, detail)
		a.endAttempt(at, &code, why)
		run.ExitCode = cloneInt(&code)
		switch {
		case run.State == api.RunCancelRequested:
			a.finishRun(run, api.RunCanceled, reasonCanceled)
		case run.Retries < run.MaxRetries:
			run.Retries++
			run.ExitCode = nil
			run.State = api.RunQueued
			run.Reason = fmt.Sprintf("retrying after exit code %d (retry %d of %d)", code, run.Retries, run.MaxRetries)
		default:
			if run.Retries > 0 {
				why += fmt.Sprintf(" (after %d retries)", run.Retries)
			}
			a.finishRun(run, api.RunFailed, why)
		}
	default:
		a.endAttempt(at, cloneInt(at.Nodes[0].ExitCode), "exit code 0")
		run.ExitCode = cloneInt(at.Nodes[0].ExitCode)
		if run.State == api.RunCancelRequested {
			a.finishRun(run, api.RunCanceled, reasonCanceled)
			return
		}
		a.finishRun(run, api.RunCompleted, "")
	}
}

func cloneInt(p *int) *int {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
