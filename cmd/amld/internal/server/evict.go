package server

import (
	"context"
	"fmt"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/internal/waits"
	"github.com/amld/amld/nodes"
	"github.com/amld/amld/raftstore"
)

// evictionLoop finishes evictions: a preempted node that got notice
// (EvictionDeadline set) has its machine taken by the provider once no live
// attempt holds it, or when its notice runs out, and is then removed. It
// looks whenever the state changes, at the next deadline, and at least
// every 500 ms.
func (e *executor) evictionLoop(ctx context.Context) {
	var seen uint64
	for ctx.Err() == nil {
		next := e.evictRound(ctx, e.s.store.State(), time.Now())
		wait := 500 * time.Millisecond
		if !next.IsZero() {
			wait = min(wait, max(time.Until(next), 10*time.Millisecond))
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		st := e.s.store.WaitForIndex(wctx, seen)
		cancel()
		seen = st.Index()
	}
}

// evictRound starts taking the machines whose time has come and returns
// the earliest deadline still ahead (zero if none).
func (e *executor) evictRound(ctx context.Context, st *raftstore.State, t time.Time) time.Time {
	var next time.Time
	for _, n := range st.Nodes() {
		if n.State != api.NodePreempted || n.EvictionDeadline.IsZero() || e.busy(n.ID) {
			continue
		}
		live := len(st.RunsOnNode(n.ID)) > 0
		if live && t.Before(n.EvictionDeadline) {
			if next.IsZero() || n.EvictionDeadline.Before(next) {
				next = n.EvictionDeadline
			}
			continue
		}
		tg := st.Target(n.Target)
		if tg == nil {
			continue
		}
		prov := e.s.cfg.Providers[tg.Provider]
		if prov == nil {
			continue
		}
		e.takeMachine(ctx, prov, n.Copy(), live)
	}
	return next
}

// takeMachine has the provider take an evicted node's machine (Evict, or
// Delete for a provider without it), ends what still runs there (the
// notice ran out) and removes the node.
func (e *executor) takeMachine(ctx context.Context, prov nodes.Provider, n *api.Node, live bool) {
	s := e.s
	s.log.Info("taking the machine of an evicted node", "node", n.ID, "attempts_left", live)
	e.start(ctx, n.ID, "evict", func(ctx context.Context) {
		dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		var err error
		if ev, ok := prov.(nodes.Evicter); ok {
			err = ev.Evict(dctx, n.ID)
		} else {
			err = prov.Delete(dctx, n.ID, n.ProviderID)
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.log.Warn("provider evict failed", "node", n.ID, "err", err)
			e.recordResult(ctx, n.Target, &api.ProvisioningError{Time: now(), Code: "EvictFailed", Message: fmt.Sprintf("evict node %s: %v", n.ID, err)})
			waits.Sleep(ctx, 2*time.Second)
			return
		}
		if live {
			if _, err := s.store.Apply(ctx, raftstore.MsgNodeEvict, &raftstore.NodeEvictRequest{
				NodeID: n.ID, Reason: n.Reason, Time: now(),
			}); err != nil {
				s.log.Warn("end the attempts of an evicted node", "node", n.ID, "err", err)
			}
		}
		if _, err := s.store.Apply(ctx, raftstore.MsgNodeRemove, &raftstore.NodeRemoveRequest{
			NodeID: n.ID, Reason: "evicted: " + n.Reason, Time: now(),
		}); err != nil {
			s.log.Warn("remove evicted node", "node", n.ID, "err", err)
		}
	})
}
