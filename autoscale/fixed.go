package autoscale

import (
	"fmt"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/internal/waits"
)

// FixedDecision is the outcome of DecideFixed for an instance or a remote
// target: the node actions of a Decision, and whether to stop the target
// for being idle.
type FixedDecision struct {
	Decision
	// Stop asks the leader to stop the target (idle shutdown), with
	// StopReason.
	Stop       bool
	StopReason string
}

// DecideFixed decides for an instance or a remote target: one node while it
// runs, none while it is stopped; no autoscaling. It is pure, like Decide.
//
//   - Deleting: as for clusters, every node without live work is deleted;
//     nodes with work wait for it to end.
//   - Stopped: every node not already leaving is deleted, with or without
//     work (the leader marks it leaving, which requeues its runs).
//   - Running: a preparing node past its deadline is marked unusable and
//     deleted, unusable and preempted nodes are deleted, and one node is
//     created when none is ready or preparing, but only once no node is
//     leaving (an instance's new node reuses the old one's work dir, and a
//     remote machine runs one agent at a time). Provider failures back off as
//     for clusters. Extra ready nodes (never made here) are deleted when idle.
//   - An instance with idle_seconds_before_shutdown > 0 whose one node has
//     been idle that long, with no run queued or running, is stopped.
func DecideFixed(cfg Config, in Input) FixedDecision {
	cfg = cfg.withDefaults()
	t := in.Target
	var fd FixedDecision
	d := &fd.Decision
	d.Target = t.Name
	v := newView(cfg, in)
	d.Counts = v.counts
	if t.Type != api.KindInstance && t.Type != api.KindRemote {
		d.Reason = "not an instance or a remote target"
		return fd
	}
	if t.ProvisioningState == api.ProvisioningDeleting {
		decideDeleting(d, v)
		return fd
	}
	if t.Stopped {
		var gone []string
		for _, n := range v.nodes {
			if n.State == api.NodeLeaving || v.deleted[n.ID] {
				continue
			}
			v.deleted[n.ID] = true
			d.Delete = append(d.Delete, action(n, "target stopped"))
			gone = append(gone, n.ID)
		}
		var r reasons
		if len(gone) > 0 {
			r.add("stopping: deleting %s", nodesPhrase(gone))
		}
		d.Reason = r.join("stopped: " + orWords(t.StopReason, "by a user"))
		return fd
	}
	var r reasons
	v.markExpired(d, &r)
	v.deleteBroken(d, &r)
	d.TargetNodeCount = 1
	d.Needed = 1
	have := len(v.ready) + len(v.preparing)
	var scale string
	switch {
	case have == 0 && v.counts.Leaving > 0:
		scale = "waiting for the old node to stop before starting a new one"
	case have == 0:
		until := t.LastProviderFailure.Add(cfg.BackoffDelay(t.ProviderFailures))
		if t.ProviderFailures > 0 && in.Now.Before(until) {
			d.BackoffUntil = until
			d.NextCheck = until
			scale = backoffReason(t.ProviderFailures, until, 1, sizeName(in.Size, t))
		} else {
			d.Create = 1
			scale = "starting: creating its node of " + sizeName(in.Size, t)
		}
	case len(v.preparing) > 0 && len(v.ready) == 0:
		scale = "starting: its node is preparing"
	default:
		scale = "running"
		// Keep the oldest ready node; extra idle ones go.
		for _, n := range v.ready[1:] {
			if n.State == api.NodeIdle {
				v.del(d, n, "an instance or remote target has one node")
			}
		}
		v.idleShutdown(&fd, in)
	}
	for _, n := range v.preparing {
		d.NextCheck = waits.Earliest(d.NextCheck, v.deadline(n))
	}
	d.Reason = r.join(scale)
	return fd
}

// idleShutdown stops an instance whose node has been idle past its
// idle_seconds_before_shutdown, or sets NextCheck to when it will be.
func (v *view) idleShutdown(fd *FixedDecision, in Input) {
	t := v.target
	if t.Type != api.KindInstance || t.IdleSecondsBeforeShutdown == nil || *t.IdleSecondsBeforeShutdown <= 0 {
		return
	}
	for _, r := range in.Runs {
		if ownRun(r, t) && (r.State == api.RunQueued || r.LiveAttempt() != nil) {
			return
		}
	}
	if len(v.ready) != 1 || v.ready[0].State != api.NodeIdle || v.hasWork(v.ready[0]) {
		return
	}
	n := v.ready[0]
	limit := time.Duration(*t.IdleSecondsBeforeShutdown) * time.Second
	if at := idleSince(n).Add(limit); v.now.Before(at) {
		fd.NextCheck = waits.Earliest(fd.NextCheck, at)
		return
	}
	fd.Stop = true
	fd.StopReason = fmt.Sprintf("idle shutdown: idle %ds (idle_seconds_before_shutdown=%d)", v.idleFor(n), *t.IdleSecondsBeforeShutdown)
}

func sizeName(s api.VMSize, t *api.Target) string {
	if s.Name != "" {
		return s.Name
	}
	return t.VMSize
}

func orWords(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
