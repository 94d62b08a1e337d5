package server

import (
	"net/http"

	"github.com/amld/amld/api"
	"github.com/amld/amld/raftstore"
)

func (s *Server) handleListSizes(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, 0, s.cfg.Sizes.All())
	return nil
}

func (s *Server) handleCreateTarget(w http.ResponseWriter, r *http.Request) error {
	var spec api.TargetSpec
	if err := decodeBody(r, &spec); err != nil {
		return err
	}
	spec, err := validateTargetSpec(spec, s.cfg.Sizes, s.providerNames(), s.cfg.DefaultProvider)
	if err != nil {
		return err
	}
	if s.store.State().Target(spec.Name) != nil {
		return api.Conflict("target %q already exists", spec.Name)
	}
	hold, err := s.checkCreate(r, spec)
	if err != nil {
		return err
	}
	t := now()
	tg := &api.Target{
		TargetSpec:        spec,
		Owner:             identityOf(r.Context()).name,
		ProvisioningState: api.ProvisioningSucceeded,
		AllocationState:   api.AllocationSteady,
		CreatedAt:         t,
		UpdatedAt:         t,
	}
	if spec.Type == api.KindInstance {
		tg.AllocationState = ""
		tg.Host = hold
	}
	idx, err := s.apply(r.Context(), raftstore.MsgTargetCreate, &raftstore.TargetCreateRequest{Target: tg})
	if err != nil {
		return err
	}
	st := s.store.State()
	writeJSON(w, http.StatusCreated, idx, s.targetView(st, st.Target(spec.Name)))
	return nil
}

// targetView fills in the derived status fields of a target.
func (s *Server) targetView(st *raftstore.State, t *api.Target) *api.Target {
	if t == nil {
		return nil
	}
	v := t.Copy()
	v.NodeStateCounts = api.NodeStateCounts{}
	ready := 0
	for _, n := range st.NodesOfTarget(t.Name) {
		v.NodeStateCounts.Add(n.State)
		if n.Ready() {
			ready++
		}
	}
	v.CurrentNodeCount = ready
	if v.AllocationState == "" {
		v.AllocationState = api.AllocationSteady
	}
	if v.ProvisioningErrors == nil {
		v.ProvisioningErrors = []api.ProvisioningError{}
	}
	if t.Type == api.KindInstance || t.Type == api.KindRemote {
		v.State = fixedState(t, st.NodesOfTarget(t.Name))
	}
	return v
}

func (s *Server) handleListTargets(w http.ResponseWriter, r *http.Request) error {
	st := s.store.State()
	out := []*api.Target{}
	for _, t := range st.Targets() {
		if canSee(identityOf(r.Context()), t) {
			out = append(out, s.targetView(st, t))
		}
	}
	writeJSON(w, http.StatusOK, st.Index(), out)
	return nil
}

func (s *Server) lookupTarget(st *raftstore.State, name string) (*api.Target, error) {
	t := st.Target(name)
	if t == nil {
		return nil, api.NotFound("no target named %q (amlctl compute list shows them)", name)
	}
	return t, nil
}

func (s *Server) handleGetTarget(w http.ResponseWriter, r *http.Request) error {
	st := s.store.State()
	t, err := s.lookupVisibleTarget(r, st, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st.Index(), s.targetView(st, t))
	return nil
}

func (s *Server) handleUpdateTarget(w http.ResponseWriter, r *http.Request) error {
	var u api.TargetUpdate
	if err := decodeBody(r, &u); err != nil {
		return err
	}
	t, err := s.lookupVisibleTarget(r, s.store.State(), r.PathValue("name"))
	if err != nil {
		return err
	}
	if err := validateTargetUpdate(t, u); err != nil {
		return err
	}
	idx, err := s.apply(r.Context(), raftstore.MsgTargetUpdate, &raftstore.TargetUpdateRequest{Name: t.Name, Update: u, Time: now()})
	if err != nil {
		return err
	}
	st := s.store.State()
	writeJSON(w, http.StatusOK, idx, s.targetView(st, st.Target(t.Name)))
	return nil
}

func (s *Server) handleDeleteTarget(w http.ResponseWriter, r *http.Request) error {
	t, err := s.lookupVisibleTarget(r, s.store.State(), r.PathValue("name"))
	if err != nil {
		return err
	}
	if t.ProvisioningState == api.ProvisioningDeleting {
		writeJSON(w, http.StatusAccepted, 0, s.targetView(s.store.State(), t))
		return nil
	}
	if done, err := s.deleteSpecial(w, r, t); done || err != nil {
		return err
	}
	idx, err := s.apply(r.Context(), raftstore.MsgTargetDelete, &raftstore.TargetDeleteRequest{Name: t.Name, Time: now()})
	if err != nil {
		return err
	}
	st := s.store.State()
	writeJSON(w, http.StatusAccepted, idx, s.targetView(st, st.Target(t.Name)))
	return nil
}

func (s *Server) handleListNodes(w http.ResponseWriter, r *http.Request) error {
	st := s.store.State()
	t, err := s.lookupVisibleTarget(r, st, r.PathValue("name"))
	if err != nil {
		return err
	}
	out := []*api.NodeView{}
	for _, n := range st.NodesOfTarget(t.Name) {
		v := &api.NodeView{Node: *n.Copy()}
		for _, run := range st.RunsOnNode(n.ID) {
			a := run.LiveAttempt()
			if a == nil {
				continue
			}
			for _, al := range a.Allocations {
				if al.NodeID == n.ID {
					v.Allocated = v.Allocated.Add(al.Resources)
					v.Runs = append(v.Runs, run.ID)
					addGPURuns(v, run.ID, al.GPUUUIDs)
				}
			}
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, st.Index(), out)
	return nil
}
