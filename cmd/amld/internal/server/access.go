package server

import (
	"net/http"

	"github.com/amld/amld/api"
	"github.com/amld/amld/raftstore"
)

// canSee reports whether the caller may see a target: an instance is its
// owner's (and admins'); every other target is everyone's.
func canSee(id identity, t *api.Target) bool {
	return t == nil || t.Type != api.KindInstance || id.isAdmin() || t.Owner == id.name
}

// canSeeRun reports whether the caller may see a run: a private run (one
// of an instance) is its owner's and admins'.
func canSeeRun(id identity, r *api.Run) bool {
	return !r.Private || id.isAdmin() || r.Owner == id.name
}

// canManage reports whether the caller may start, stop, restart or detach
// an instance or a remote target: its owner or an admin.
func canManage(id identity, t *api.Target) bool {
	return id.isAdmin() || t.Owner == id.name
}

// lookupVisibleTarget is lookupTarget for the caller: a target it may not
// see is not found.
func (s *Server) lookupVisibleTarget(r *http.Request, st *raftstore.State, name string) (*api.Target, error) {
	t, err := s.lookupTarget(st, name)
	if err != nil {
		return nil, err
	}
	if !canSee(identityOf(r.Context()), t) {
		return nil, api.NotFound("no target named %q (amlctl compute list shows them)", name)
	}
	return t, nil
}

// lookupVisibleRun is lookupRun for the caller: a run it may not see is not
// found.
func (s *Server) lookupVisibleRun(r *http.Request, st *raftstore.State, id string) (*api.Run, error) {
	run, err := s.lookupRun(st, id)
	if err != nil {
		return nil, err
	}
	if !canSeeRun(identityOf(r.Context()), run) {
		return nil, api.NotFound("no run %q (amlctl job list shows them)", id)
	}
	return run, nil
}

// fixedState words the state of an instance or a remote target from its
// nodes: Stopping, Stopped, Running or Starting.
func fixedState(t *api.Target, ns []*api.Node) string {
	ready := 0
	for _, n := range ns {
		if n.Ready() {
			ready++
		}
	}
	switch {
	case t.Stopped && len(ns) > 0:
		return api.TargetStopping
	case t.Stopped:
		return api.TargetStopped
	case ready > 0:
		return api.TargetRunning
	default:
		return api.TargetStarting
	}
}
