package server

import (
	"net/http"

	"github.com/amld/amld/api"
	"github.com/amld/amld/raftstore"
)

// handlePower starts, stops or restarts an instance or a remote target.
// Stop removes its node (requeueing what ran there) and keeps an instance's
// work dir; start makes a new node; restart replaces the node.
func (s *Server) handlePower(action string) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		st := s.store.State()
		t, err := s.lookupVisibleTarget(r, st, r.PathValue("name"))
		if err != nil {
			return err
		}
		if t.Type != api.KindInstance && t.Type != api.KindRemote {
			return api.FailedPrecondition("%s is a %s: only instances and remote targets are started and stopped (clusters scale by themselves)", t.Name, t.Type)
		}
		id := identityOf(r.Context())
		if !canManage(id, t) {
			return api.Forbidden("%s belongs to %s; only they or an admin may %s it", t.Name, t.Owner, action)
		}
		if t.ProvisioningState == api.ProvisioningDeleting {
			return api.FailedPrecondition("target %s is being deleted", t.Name)
		}
		var idx uint64
		switch {
		case action == api.PowerStop:
			idx, err = s.apply(r.Context(), raftstore.MsgTargetPower, &raftstore.TargetPowerRequest{
				Name: t.Name, Stopped: true, Reason: "stopped by " + id.name, Time: now()})
		case t.Stopped: // start, or restart of a stopped target
			idx, err = s.apply(r.Context(), raftstore.MsgTargetPower, &raftstore.TargetPowerRequest{Name: t.Name, Time: now()})
		case action == api.PowerRestart:
			// The node leaves (its runs go back to the queue); the leader
			// makes a new one once it is gone.
			for _, n := range st.NodesOfTarget(t.Name) {
				if n.State == api.NodeLeaving {
					continue
				}
				idx, err = s.apply(r.Context(), raftstore.MsgNodeDown, &raftstore.NodeDownRequest{
					NodeID: n.ID, State: api.NodeLeaving, Reason: "restart requested by " + id.name, Time: now()})
				if err != nil {
					break
				}
			}
		}
		if err != nil {
			return err
		}
		st = s.store.State()
		writeJSON(w, http.StatusAccepted, idx, s.targetView(st, st.Target(t.Name)))
		return nil
	}
}
