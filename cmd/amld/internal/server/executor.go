package server

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/autoscale"
	"github.com/amld/amld/internal/waits"
	"github.com/amld/amld/nodes"
	"github.com/amld/amld/raftstore"
)

// executor carries out the autoscaler's decisions on the leader: it commits
// each through Raft first, then calls the provider, then commits the
// outcome. It lives as long as one term of leadership.
type executor struct {
	s  *Server
	wg sync.WaitGroup

	mu       sync.Mutex
	inflight map[string]string // node ID → "create" | "delete"

	// held are the saturated decisions that stand, by cluster name (see
	// autoscale.Decision.Holds); only autoscaleLoop uses it.
	held map[string]heldDecision
}

// heldDecision is a decision carried out and the input it was made from,
// its runs left out.
type heldDecision struct {
	d  autoscale.Decision
	in autoscale.Input
}

func newExecutor(s *Server) *executor {
	return &executor{s: s, inflight: map[string]string{}, held: map[string]heldDecision{}}
}

// wait returns once every provider call started by e has returned.
func (e *executor) wait() { e.wg.Wait() }

func (e *executor) busy(nodeID string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.inflight[nodeID]
	return ok
}

// start runs fn for nodeID in the background unless a call for it is in
// flight already.
func (e *executor) start(ctx context.Context, nodeID, op string, fn func(context.Context)) {
	e.mu.Lock()
	if _, ok := e.inflight[nodeID]; ok {
		e.mu.Unlock()
		return
	}
	e.inflight[nodeID] = op
	e.mu.Unlock()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer func() {
			e.mu.Lock()
			delete(e.inflight, nodeID)
			e.mu.Unlock()
		}()
		fn(ctx)
	}()
}

// autoscaleLoop decides for every cluster whenever the state changes and
// at least every second, or at a decision's NextCheck. Between rounds it
// waits at least 100 ms, and four times as long as the last round took to
// decide: a round reads every queued run, and a deep backlog that changes
// all the time (a burst of submits) must not keep a core busy deciding
// again what nodes take minutes to provide. For the same reason a cluster
// whose backlog needs more than max_nodes keeps its decision for up to a
// second while only its runs change (autoscale.Decision.Holds).
func (e *executor) autoscaleLoop(ctx context.Context) {
	var seen uint64
	for ctx.Err() == nil {
		next, cost := e.round(ctx)
		wait := time.Second
		if !next.IsZero() {
			wait = min(wait, max(time.Until(next), 10*time.Millisecond))
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		st := e.s.store.WaitForIndex(wctx, seen)
		cancel()
		seen = st.Index()
		waits.Sleep(ctx, max(100*time.Millisecond, 4*cost))
	}
}

// round makes one decision per cluster and carries it out; it returns the
// earliest NextCheck and the time spent deciding (not carrying out).
func (e *executor) round(ctx context.Context) (next time.Time, cost time.Duration) {
	st := e.s.store.State()
	// The runs holding nodes, by target, read when a cluster is decided;
	// each cluster's queue is read from its index. Finished runs cost
	// nothing.
	var live map[string][]*api.Run
	for _, t := range st.Targets() {
		if t.Type == api.KindInstance || t.Type == api.KindRemote {
			next = waits.Earliest(next, e.fixedRound(ctx, st, t))
			continue
		}
		if t.Type != api.KindCluster {
			continue
		}
		size, ok := e.s.targetSize(t)
		if !ok {
			continue
		}
		decided := time.Now()
		in := autoscale.Input{Now: decided, Target: t, Size: size, Nodes: st.NodesOfTarget(t.Name)}
		if h, ok := e.held[t.Name]; ok && h.d.Holds(h.in, in) {
			next = waits.Earliest(next, waits.Earliest(h.d.NextCheck, h.in.Now.Add(autoscale.HoldFor)))
			continue
		}
		delete(e.held, t.Name)
		if live == nil {
			live = map[string][]*api.Run{}
			for _, r := range st.LiveRuns() {
				live[r.Target] = append(live[r.Target], r)
			}
		}
		in.Runs = slices.Concat(live[t.Name], st.Queue(t.Name, 0))
		d := autoscale.Decide(e.s.cfg.Autoscale, in)
		cost += time.Since(decided)
		if e.carryOut(ctx, st, t, size, in.Nodes, d) && d.Saturated {
			in.Runs = nil
			e.held[t.Name] = heldDecision{d: d, in: in}
		}
		next = waits.Earliest(next, d.NextCheck)
	}
	e.hostsRound(ctx, st)
	return next, cost
}

// carryOut records d and carries it out; it reports whether d was
// recorded.
func (e *executor) carryOut(ctx context.Context, st *raftstore.State, t *api.Target, size api.VMSize, ns []*api.Node, d autoscale.Decision) bool {
	s := e.s
	if d.TargetNodeCount != t.TargetNodeCount || d.Reason != t.ScaleReason {
		if _, err := s.store.Apply(ctx, raftstore.MsgTargetScale, &raftstore.TargetScaleRequest{
			Name: t.Name, TargetNodeCount: d.TargetNodeCount, Reason: d.Reason, Time: now(),
		}); err != nil {
			s.log.Warn("record scale decision", "target", t.Name, "err", err)
			return false
		}
	}
	for _, a := range d.MarkUnusable {
		s.log.Warn("node unusable", "node", a.NodeID, "reason", a.Reason)
		if _, err := s.store.Apply(ctx, raftstore.MsgNodeDown, &raftstore.NodeDownRequest{
			NodeID: a.NodeID, State: api.NodeUnusable, Reason: a.Reason, Time: now(),
		}); err != nil {
			s.log.Warn("mark node unusable", "node", a.NodeID, "err", err)
		}
	}
	prov := s.cfg.Providers[t.Provider]
	if prov == nil {
		return true
	}
	for _, a := range d.Delete {
		e.deleteNode(ctx, prov, a.NodeID, a.ProviderID, a.Reason, true)
	}
	// Nodes left leaving by an earlier leader, or whose delete failed.
	for _, n := range ns {
		if n.State == api.NodeLeaving && !e.busy(n.ID) {
			e.deleteNode(ctx, prov, n.ID, n.ProviderID, n.Reason, false)
		}
	}
	for range d.Create {
		e.createNode(ctx, prov, t, size)
	}
	if t.ProvisioningState == api.ProvisioningDeleting && len(ns) == 0 {
		if e.purgeFirst(ctx, prov, t) {
			return true
		}
		if _, err := s.store.Apply(ctx, raftstore.MsgTargetRemove, &raftstore.TargetRemoveRequest{Name: t.Name}); err != nil {
			s.log.Warn("remove target", "target", t.Name, "err", err)
		} else {
			s.log.Info("target removed", "target", t.Name)
		}
	}
	return true
}

// createNode records a preparing node, then asks the provider for it.
func (e *executor) createNode(ctx context.Context, prov nodes.Provider, t *api.Target, size api.VMSize) {
	s := e.s
	n := &api.Node{
		ID: newID("n"), Target: t.Name, State: api.NodePreparing, VMSize: size.Name,
		Priority: t.VMPriority, Capacity: size.Resources(), CreatedAt: now(),
	}
	n.StateChangedAt = n.CreatedAt
	if !e.placeOnHost(ctx, t, n) {
		return
	}
	if _, err := s.store.Apply(ctx, raftstore.MsgNodeCreate, &raftstore.NodeCreateRequest{Node: n}); err != nil {
		s.log.Warn("record new node", "target", t.Name, "err", err)
		return
	}
	s.log.Info("creating node", "target", t.Name, "node", n.ID, "provider", prov.Name())
	spec := nodes.NodeSpec{
		NodeID: n.ID, Target: t.Name, Size: size, Priority: t.VMPriority,
		HeadAddrs: s.headURLs(), JoinToken: s.JoinToken(), CACertPEM: s.cluster.CAPEM(),
		Host: n.Host,
	}
	if t.Type == api.KindInstance {
		spec.KeepName = t.Name
		if t.SSHPublicAccess {
			spec.AuthorizedKey = t.SSHPublicKey
		}
	}
	failures := t.ProviderFailures
	e.start(ctx, n.ID, "create", func(ctx context.Context) {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		pid, err := prov.Create(cctx, spec)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.log.Warn("provider create failed", "target", t.Name, "node", n.ID, "err", err)
			e.recordResult(ctx, t.Name, &api.ProvisioningError{Time: now(), Code: "CreateFailed", Message: fmt.Sprintf("create node %s: %v", n.ID, err)})
			_, _ = s.store.Apply(ctx, raftstore.MsgNodeDown, &raftstore.NodeDownRequest{
				NodeID: n.ID, State: api.NodeUnusable, Reason: "provider could not create it: " + err.Error(), Time: now(),
			})
			return
		}
		if pid != "" && pid != n.ProviderID {
			if _, err := s.store.Apply(ctx, raftstore.MsgNodeProvider, &raftstore.NodeProviderRequest{NodeID: n.ID, ProviderID: pid}); err != nil && !api.IsNotFound(err) {
				s.log.Warn("record provider id", "node", n.ID, "err", err)
			}
		}
		if failures > 0 {
			e.recordResult(ctx, t.Name, nil)
		}
	})
}

// deleteNode marks a node leaving, has the provider delete it, and drops it.
func (e *executor) deleteNode(ctx context.Context, prov nodes.Provider, nodeID, providerID, reason string, mark bool) {
	if e.busy(nodeID) {
		return
	}
	s := e.s
	if mark {
		if n := s.store.State().Node(nodeID); n != nil && n.State != api.NodeLeaving {
			if _, err := s.store.Apply(ctx, raftstore.MsgNodeDown, &raftstore.NodeDownRequest{
				NodeID: nodeID, State: api.NodeLeaving, Reason: reason, Time: now(),
			}); err != nil {
				s.log.Warn("mark node leaving", "node", nodeID, "err", err)
				return
			}
		}
	}
	s.log.Info("deleting node", "node", nodeID, "reason", reason)
	e.start(ctx, nodeID, "delete", func(ctx context.Context) {
		dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err := prov.Delete(dctx, nodeID, providerID)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.log.Warn("provider delete failed", "node", nodeID, "err", err)
			if n := s.store.State().Node(nodeID); n != nil {
				e.recordResult(ctx, n.Target, &api.ProvisioningError{Time: now(), Code: "DeleteFailed", Message: fmt.Sprintf("delete node %s: %v", nodeID, err)})
			}
			waits.Sleep(ctx, 5*time.Second)
			return
		}
		if _, err := s.store.Apply(ctx, raftstore.MsgNodeRemove, &raftstore.NodeRemoveRequest{NodeID: nodeID, Reason: reason, Time: now()}); err != nil {
			s.log.Warn("remove node", "node", nodeID, "err", err)
		}
	})
}

func (e *executor) recordResult(ctx context.Context, target string, perr *api.ProvisioningError) {
	if _, err := e.s.store.Apply(ctx, raftstore.MsgProvisioningResult, &raftstore.ProvisioningResultRequest{Name: target, Error: perr, Time: now()}); err != nil {
		e.s.log.Warn("record provisioning result", "target", target, "err", err)
	}
}

// orphanLoop compares what the providers have with the node records: a
// machine with no record (left by a crashed head) is deleted; a record whose
// machine is gone is a lost node. A provider is listed every 15 s, or at
// its own ListInterval when it has one (listing is cheap: docker).
func (e *executor) orphanLoop(ctx context.Context) {
	start := time.Now()
	next := map[string]time.Time{}
	for name := range e.s.cfg.Providers {
		next[name] = start.Add(min(2*time.Second, listInterval(e.s.cfg.Providers[name])))
	}
	missing := map[string]int{}
	for {
		wake := time.Time{}
		for _, t := range next {
			if wake.IsZero() || t.Before(wake) {
				wake = t
			}
		}
		if !waits.Sleep(ctx, max(time.Until(wake), 10*time.Millisecond)) {
			return
		}
		now := time.Now()
		for name, prov := range e.s.cfg.Providers {
			if now.Before(next[name]) {
				continue
			}
			e.reconcile(ctx, name, prov, missing)
			next[name] = time.Now().Add(listInterval(prov))
		}
	}
}

// listPacer is an optional ability of a node provider whose List is cheap:
// the leader may call it this often.
type listPacer interface {
	ListInterval() time.Duration
}

// listInterval is how often the leader lists prov's machines.
func listInterval(prov nodes.Provider) time.Duration {
	if lp, ok := prov.(listPacer); ok && lp.ListInterval() > 0 {
		return lp.ListInterval()
	}
	return 15 * time.Second
}

// reconcile lists prov's machines once. missing counts, per node, the lists
// in a row that lacked its machine: a node is lost when two lists lack it
// (a machine that restarts, like a node container under `docker restart`,
// is away for a moment only).
func (e *executor) reconcile(ctx context.Context, name string, prov nodes.Provider, missing map[string]int) {
	s := e.s
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	insts, err := prov.List(lctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("provider list failed", "provider", name, "err", err)
		}
		return
	}
	st := s.store.State()
	have := map[string]bool{}
	for _, in := range insts {
		have[in.NodeID] = true
		delete(missing, in.NodeID)
		if st.Node(in.NodeID) == nil && !e.busy(in.NodeID) {
			s.log.Warn("deleting orphan machine", "provider", name, "node", in.NodeID)
			e.start(ctx, in.NodeID, "delete", func(ctx context.Context) {
				dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
				defer cancel()
				if err := prov.Delete(dctx, in.NodeID, in.ProviderID); err != nil {
					s.log.Warn("delete orphan", "node", in.NodeID, "err", err)
				}
			})
		}
	}
	for id := range missing {
		if st.Node(id) == nil {
			delete(missing, id)
		}
	}
	for _, n := range st.Nodes() {
		t := st.Target(n.Target)
		if t == nil || t.Provider != name || have[n.ID] || e.busy(n.ID) {
			continue
		}
		if sc, ok := prov.(nodes.ListScoper); ok && !sc.Lists(t.Name) {
			continue
		}
		if n.State == api.NodeLeaving || n.State == api.NodeUnusable || n.State == api.NodePreempted {
			delete(missing, n.ID)
			continue
		}
		if k, ok := prov.(nodes.Knower); ok && !k.Knows(n.ID) {
			continue // made by another head's provider; heartbeats tell if it is lost
		}
		if time.Since(n.CreatedAt) < 10*time.Second {
			continue
		}
		if missing[n.ID]++; missing[n.ID] < 2 {
			continue
		}
		delete(missing, n.ID)
		s.log.Warn("node's machine is gone", "node", n.ID)
		_, _ = s.store.Apply(ctx, raftstore.MsgNodeDown, &raftstore.NodeDownRequest{
			NodeID: n.ID, State: api.NodeUnusable, Reason: "its machine is gone: the " + name + " provider no longer lists it", Time: now(),
		})
	}
}
