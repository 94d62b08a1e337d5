package server

import (
	"context"
	"sync"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/internal/waits"
	"github.com/amld/amld/raftstore"
	"github.com/amld/amld/scheduler"
)

// leadershipLoop starts the leader's duties when this head becomes leader
// and stops them the moment it is not (one stop: the duties' context).
func (s *Server) leadershipLoop(ctx context.Context) {
	var (
		stop func()
		wg   sync.WaitGroup
	)
	stopDuties := func() {
		if stop != nil {
			stop()
			wg.Wait()
			stop = nil
			s.log.Info("leader duties stopped")
		}
	}
	defer stopDuties()
	startDuties := func() {
		if stop != nil {
			return
		}
		lctx, cancel := context.WithCancel(ctx)
		stop = cancel
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.leaderDuties(lctx)
		}()
	}
	if s.store.IsLeader() {
		startDuties()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case isLeader, ok := <-s.store.LeadershipCh():
			if !ok {
				return
			}
			if isLeader {
				startDuties()
			} else {
				stopDuties()
			}
		}
	}
}

// leaderDuties runs while this head leads: after a barrier (so the state
// reflects every committed entry), it bootstraps an empty cluster and runs
// the scheduling, autoscaling, liveness and orphan loops.
func (s *Server) leaderDuties(ctx context.Context) {
	for {
		bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := s.store.Barrier(bctx)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("barrier failed; retrying", "err", err)
		if !waits.Sleep(ctx, 200*time.Millisecond) {
			return
		}
	}
	if s.cluster.bootstrapper {
		if err := s.bootstrap(ctx); err != nil {
			s.log.Error("bootstrap failed", "err", err)
			return
		}
	}
	if err := s.ensureSecrets(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("store the cluster's secrets", "err", err)
	}
	if err := s.registerOnce(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("record this head's addresses", "err", err)
	}
	s.log.Info("leader duties started")
	// Every registered node gets a full heartbeat TTL from now: the new
	// leader has not heard from anyone yet.
	st := s.store.State()
	s.hb.resetAll(st.Nodes(), time.Now())

	ex := newExecutor(s)
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context){s.scheduleLoop, ex.autoscaleLoop, s.livenessLoop, ex.orphanLoop, ex.evictionLoop, s.headsLoop} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(ctx)
		}()
	}
	wg.Wait()
	ex.wait()
}

// schedState builds the scheduler's snapshot: every queued run for a full
// round, else the first Config.SchedulerQueueDepth of each target's queue.
// Runs holding a live attempt are always in it (they hold the nodes).
func (s *Server) schedState(st *raftstore.State, full bool) *scheduler.State {
	ss := &scheduler.State{
		Targets: map[string]*api.Target{},
		VMSizes: s.cfg.Sizes.Map(),
		Nodes:   st.Nodes(),
		Runs:    st.LiveRuns(),
	}
	depth := s.cfg.SchedulerQueueDepth
	if full {
		depth = 0 // every queued run
	}
	for _, t := range st.Targets() {
		ss.Targets[t.Name] = s.targetView(st, t)
		if t.Size != nil {
			ss.VMSizes[t.VMSize] = *t.Size
		}
		// Each queue comes in queue order from its index.
		ss.Runs = append(ss.Runs, st.Queue(t.Name, depth)...)
	}
	return ss
}

// schedulingDebounce is how long a scheduling round waits after a change
// for more changes to arrive.
const schedulingDebounce = 5 * time.Millisecond

// fullRoundEvery is how often a scheduling round considers every queued
// run; the rounds between, run on changes, consider the first
// Config.SchedulerQueueDepth runs of each target's queue (as Slurm's
// event-driven passes consider the first default_queue_depth jobs), so
// that their cost does not grow with a deep backlog. Runs further back get
// placed, backfilled or worded by a full round, at most fullRoundEvery
// later.
const fullRoundEvery = time.Second

// DefaultSchedulerQueueDepth is Config.SchedulerQueueDepth's default.
const DefaultSchedulerQueueDepth = 1000

// scheduleLoop runs a scheduling round whenever the state changes, and a
// full round at least every fullRoundEvery, and commits each non-empty
// plan in one command. Its own plans count as changes: the round after a
// plan mostly finds nothing to do, which is cheaper than telling its
// entries apart (a plan may share its log entry with submits; see
// raftstore's group commit). The rounds between full ones are skipped
// while the only changes are submits that started with their wait reason
// and scale decisions (raftstore's SchedulingChanges): they would decide
// what the last one did.
func (s *Server) scheduleLoop(ctx context.Context) {
	s.hints.Store(nil) // those of an earlier term are stale
	var seen uint64
	var cost time.Duration // of the last round
	var decided uint64     // SchedulingChanges of the last round's state
	var lastFull time.Time // when the last full round ran; zero: run one
	for ctx.Err() == nil {
		wctx, cancel := context.WithTimeout(ctx, fullRoundEvery)
		s.store.WaitForIndex(wctx, seen)
		cancel()
		if ctx.Err() != nil {
			return
		}
		// Let a burst of changes (a storm of submits) land before planning:
		// one round then covers them all. A full round costs time in the
		// number of queued runs; waiting as long as the last round took
		// keeps a deep backlog from taking more than half a core from the
		// API.
		if !waits.Sleep(ctx, max(schedulingDebounce, cost)) {
			return
		}
		start := time.Now()
		st := s.store.State()
		seen = st.Index()
		full := start.Sub(lastFull) >= fullRoundEvery
		if !full && st.SchedulingChanges() == decided {
			continue
		}
		plan := scheduler.Schedule(s.schedState(st, full))
		cost = time.Since(start)
		decided = st.SchedulingChanges()
		if full {
			lastFull = start
		}
		s.hints.Store(&plan.Hints)
		if plan.Empty() {
			continue
		}
		req := &raftstore.PlanApplyRequest{Time: now()}
		for _, p := range plan.Placements {
			req.Placements = append(req.Placements, raftstore.Placement{RunID: p.RunID, Allocations: p.Allocations})
		}
		for _, r := range plan.Reasons {
			req.Reasons = append(req.Reasons, raftstore.WaitReason{RunID: r.RunID, Reason: r.Reason})
		}
		for _, p := range plan.Preemptions {
			grace := 0
			if victim := st.Run(p.RunID); victim != nil {
				grace = s.preemptionGrace(st.Target(victim.Target))
			}
			req.Preemptions = append(req.Preemptions, raftstore.Preemption{RunID: p.RunID, By: p.By, GraceSeconds: grace})
		}
		_, err := s.store.Apply(ctx, raftstore.MsgPlanApply, req)
		if err != nil {
			lastFull = time.Time{} // the next round runs, in full
			if ctx.Err() == nil {
				s.log.Warn("apply plan", "err", err)
				waits.Sleep(ctx, 200*time.Millisecond)
			}
			continue
		}
		if len(req.Placements)+len(req.Preemptions) > 0 {
			s.log.Debug("plan applied", "placements", len(req.Placements), "preemptions", len(req.Preemptions), "reasons", len(req.Reasons))
		}
	}
}

// livenessLoop marks nodes that stopped heartbeating unusable; the state
// machine then requeues their running attempts.
func (s *Server) livenessLoop(ctx context.Context) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t := time.Now()
		for _, n := range s.store.State().Nodes() {
			if !n.Ready() {
				continue
			}
			if silent := s.hb.silentFor(n.ID, t); silent > s.cfg.HeartbeatTTL {
				reason := "missed heartbeats for " + silent.Truncate(time.Second).String()
				s.log.Warn("node lost", "node", n.ID, "reason", reason)
				if _, err := s.store.Apply(ctx, raftstore.MsgNodeDown, &raftstore.NodeDownRequest{
					NodeID: n.ID, State: api.NodeUnusable, Reason: reason, Time: now(),
				}); err != nil && ctx.Err() == nil {
					s.log.Warn("mark node unusable", "node", n.ID, "err", err)
				}
			}
		}
	}
}

// heartbeats is the leader's in-memory record of when each node was last
// heard from. It is not replicated: a new leader gives every node a fresh
// TTL (as Nomad does).
type heartbeats struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func newHeartbeats() *heartbeats { return &heartbeats{last: map[string]time.Time{}} }

func (h *heartbeats) seen(nodeID string) {
	h.mu.Lock()
	h.last[nodeID] = time.Now()
	h.mu.Unlock()
}

func (h *heartbeats) resetAll(ns []*api.Node, t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last = make(map[string]time.Time, len(ns))
	for _, n := range ns {
		h.last[n.ID] = t
	}
}

// silentFor is how long nodeID has not been heard from; a node never seen
// starts its TTL now.
func (h *heartbeats) silentFor(nodeID string, t time.Time) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	last, ok := h.last[nodeID]
	if !ok {
		h.last[nodeID] = t
		return 0
	}
	return t.Sub(last)
}
