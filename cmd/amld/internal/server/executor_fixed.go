package server

import (
	"context"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/autoscale"
	"github.com/amld/amld/internal/waits"
	"github.com/amld/amld/nodes"
	"github.com/amld/amld/raftstore"
)

// fixedRound decides for an instance or a remote target (one node while it
// runs, none while stopped) and carries the decision out like a cluster's;
// an idle instance is stopped. It returns the decision's NextCheck.
func (e *executor) fixedRound(ctx context.Context, st *raftstore.State, t *api.Target) time.Time {
	s := e.s
	size, ok := s.targetSize(t)
	if !ok {
		return time.Time{}
	}
	var runs []*api.Run
	for _, r := range st.RunsOfTarget(t.Name) {
		if r.State == api.RunQueued || r.LiveAttempt() != nil {
			runs = append(runs, r)
		}
	}
	nodesOf := st.NodesOfTarget(t.Name)
	fd := autoscale.DecideFixed(s.cfg.Autoscale, autoscale.Input{
		Now: time.Now(), Target: t, Size: size, Nodes: nodesOf, Runs: runs,
	})
	if fd.Stop {
		s.log.Info("stopping idle instance", "target", t.Name, "reason", fd.StopReason)
		if _, err := s.store.Apply(ctx, raftstore.MsgTargetPower, &raftstore.TargetPowerRequest{
			Name: t.Name, Stopped: true, Reason: fd.StopReason, Time: now(),
		}); err != nil {
			s.log.Warn("stop idle instance", "target", t.Name, "err", err)
		}
		return time.Time{}
	}
	e.carryOut(ctx, st, t, size, nodesOf, fd.Decision)
	return fd.NextCheck
}

// placeOnHost picks the attached machine of a new node of the ssh
// provider: its remote target's or instance's own, else a free pool host.
// When there is none it records a provisioning error (the autoscaler backs
// off) and reports false.
func (e *executor) placeOnHost(ctx context.Context, t *api.Target, n *api.Node) bool {
	if t.Provider != api.ProviderSSH {
		return true
	}
	st := e.s.store.State()
	host := t.Host
	if host == "" {
		h, err := freePoolHost(st, t.Name)
		if err != nil {
			e.recordResult(ctx, t.Name, &api.ProvisioningError{Time: now(), Code: "NoHost", Message: err.Error()})
			return false
		}
		host = h
	} else if h := st.Host(host); h == nil || h.State != api.HostAttached {
		e.recordResult(ctx, t.Name, &api.ProvisioningError{Time: now(), Code: "NoHost", Message: "host " + host + " is not attached"})
		return false
	}
	n.Host = host
	n.ProviderID = "ssh:" + host
	return true
}

// purgeFirst removes a deleted instance's kept work dir before the target
// goes. It reports true while the caller must not remove the target yet
// (the purge runs, or failed and will be tried again).
func (e *executor) purgeFirst(ctx context.Context, prov nodes.Provider, t *api.Target) bool {
	pg, ok := prov.(nodes.Purger)
	if t.Type != api.KindInstance || !ok {
		return false
	}
	key := "purge:" + t.Name
	if e.busy(key) {
		return true
	}
	s := e.s
	e.start(ctx, key, "purge", func(ctx context.Context) {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err := pg.Purge(pctx, t.Name, t.Host)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.log.Warn("remove the instance's work dir", "target", t.Name, "err", err)
			e.recordResult(ctx, t.Name, &api.ProvisioningError{Time: now(), Code: "DeleteFailed", Message: "remove the work dir: " + err.Error()})
			waits.Sleep(ctx, 5*time.Second)
			return
		}
		if _, err := s.store.Apply(ctx, raftstore.MsgTargetRemove, &raftstore.TargetRemoveRequest{Name: t.Name}); err != nil {
			s.log.Warn("remove target", "target", t.Name, "err", err)
		} else {
			s.log.Info("target removed", "target", t.Name)
		}
	})
	return true
}

// hostsRound carries out detachments: the nodes on a detaching machine are
// removed (those of a deleting remote target by carryOut), then the agent
// and ~/.amld are uninstalled from it and its record goes. A machine
// detached with force is not touched: its nodes' records are dropped.
func (e *executor) hostsRound(ctx context.Context, st *raftstore.State) {
	s := e.s
	prov := s.cfg.Providers[api.ProviderSSH]
	for _, h := range st.Hosts() {
		if h.State != api.HostDetaching || e.busy("host:"+h.Name) {
			continue
		}
		var on []*api.Node
		for _, n := range st.Nodes() {
			if n.Host == h.Name {
				on = append(on, n)
			}
		}
		for _, n := range on {
			switch t := st.Target(n.Target); {
			case h.Force:
				if !e.busy(n.ID) {
					_, _ = s.store.Apply(ctx, raftstore.MsgNodeRemove, &raftstore.NodeRemoveRequest{
						NodeID: n.ID, Reason: "its machine " + h.Name + " was detached with --force", Time: now()})
				}
			case t != nil && t.ProvisioningState == api.ProvisioningDeleting:
			case n.State != api.NodeLeaving && prov != nil:
				e.deleteNode(ctx, prov, n.ID, n.ProviderID, "its machine "+h.Name+" is being detached", true)
			}
		}
		if len(on) > 0 {
			continue
		}
		held := false
		for _, t := range st.Targets() {
			held = held || t.Host == h.Name
		}
		if held {
			continue
		}
		e.start(ctx, "host:"+h.Name, "detach", func(ctx context.Context) { e.uninstall(ctx, st, h) })
	}
}

// uninstall removes amld from a detaching machine, then its record.
func (e *executor) uninstall(ctx context.Context, st *raftstore.State, h *raftstore.Host) {
	s := e.s
	if !h.Force {
		err := func() error {
			sh, err := s.sshHost(st, h)
			if err != nil {
				return err
			}
			dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			c, err := nodes.DialSSH(dctx, sh, sshTimeout)
			if err != nil {
				return err
			}
			defer c.Close()
			return nodes.UninstallAgent(dctx, c, sh.Marker, sh.AgentMode)
		}()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.log.Warn("detach: cannot remove amld from the machine; retrying (amlctl compute detach --force gives up on it)", "host", h.Name, "err", err)
			waits.Sleep(ctx, 10*time.Second)
			return
		}
	}
	if _, err := s.store.Apply(ctx, raftstore.MsgHostRemove, &raftstore.HostRemoveRequest{Name: h.Name}); err != nil {
		s.log.Warn("remove host", "host", h.Name, "err", err)
		return
	}
	s.log.Info("machine detached", "host", h.Name, "force", h.Force)
}
