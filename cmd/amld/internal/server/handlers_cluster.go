package server

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/raftstore"
)

// statusView is this head's status (GET /v1/status).
func (s *Server) statusView() api.Status {
	_, leader := s.store.Leader()
	h := s.store.Health()
	st := api.Status{ID: s.cfg.ID, Leader: leader, Index: s.store.State().Index()}
	st.HeadStatus = api.HeadStatus{
		State: h.State, Term: h.Term, AppliedIndex: h.AppliedIndex,
		CommitIndex: h.CommitIndex, LastContactMS: -1, SnapshotRestores: h.Restores,
	}
	if !h.LastContact.IsZero() {
		st.LastContactMS = time.Since(h.LastContact).Milliseconds()
	}
	return st
}

// handleMembers lists the Raft configuration with each head's addresses
// and, asked of each head directly, its state, applied index and last
// contact with the leader.
func (s *Server) handleMembers(w http.ResponseWriter, r *http.Request) error {
	ms, err := s.store.Members(r.Context())
	if err != nil {
		return err
	}
	st := s.store.State()
	_, leaderID := s.store.Leader()
	out := make([]api.Member, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		out[i] = api.Member{ID: m.ID, RaftAddr: m.RaftAddr, Voter: m.Voter, Leader: m.ID == leaderID}
		if h := st.Head(m.ID); h != nil {
			out[i].APIAddr, out[i].LogVersion = h.APIAddr, h.LogVersion
		}
		if m.ID == s.cfg.ID {
			out[i].Reachable, out[i].HeadStatus = true, s.statusView().HeadStatus
			continue
		}
		if out[i].APIAddr == "" {
			out[i].Error = "its API address is not known yet"
			continue
		}
		wg.Add(1)
		go func(m *api.Member) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			var hs api.Status
			if err := s.headGet(ctx, m.APIAddr+"/v1/status", &hs); err != nil {
				m.Error = err.Error()
				return
			}
			m.Reachable, m.HeadStatus = true, hs.HeadStatus
		}(&out[i])
	}
	wg.Wait()
	writeJSON(w, http.StatusOK, st.Index(), out)
	return nil
}

// headGet GETs a JSON document from another head, checking that it is one.
func (s *Server) headGet(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := s.cluster.headClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return api.Unavailable("%s answered %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// handleRemoveMember (leader) takes a head out of the configuration.
func (s *Server) handleRemoveMember(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	ms, err := s.store.Members(r.Context())
	if err != nil {
		return err
	}
	found := false
	for _, m := range ms {
		found = found || m.ID == id
	}
	if !found {
		return api.NotFound("no head %q in the cluster (amlctl server members lists them)", id)
	}
	if len(ms) == 1 {
		return api.FailedPrecondition("head %s is the cluster's only head", id)
	}
	s.log.Info("removing a head", "head", id)
	if err := s.store.RemoveServer(r.Context(), id); err != nil {
		return err
	}
	idx := uint64(0)
	if s.store.IsLeader() {
		if idx, err = s.apply(r.Context(), raftstore.MsgHeadRemove, &raftstore.HeadRemoveRequest{ID: id}); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, idx, struct{}{})
	return nil
}

// handleJoinMember (leader) invites a head waiting to join.
func (s *Server) handleJoinMember(w http.ResponseWriter, r *http.Request) error {
	var req api.JoinHeadRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.Address == "" {
		return api.Invalid("address", "is required: the new head's API address (host:port)")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	var peer headInfo
	if err := s.peerCall(ctx, req.Address, "invite", inviteRequest{Join: s.headURLs()}, &peer); err != nil {
		if ae, ok := err.(*api.Error); ok {
			return ae
		}
		return api.Unavailable("could not reach a head at %s: %v", req.Address, err)
	}
	s.log.Info("invited a head", "head", peer.ID, "api", req.Address)
	writeJSON(w, http.StatusAccepted, 0, api.JoinHeadResponse{ID: peer.ID})
	return nil
}

// handleSnapshotSave (leader) streams the whole state, after a barrier.
func (s *Server) handleSnapshotSave(w http.ResponseWriter, r *http.Request) error {
	if err := s.store.Barrier(r.Context()); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="amld.snap"`)
	return s.store.SaveSnapshot(w)
}

// handleSnapshotRestore (leader) replaces the state with an uploaded one.
func (s *Server) handleSnapshotRestore(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Minute)
	defer cancel()
	if err := s.store.RestoreSnapshot(ctx, r.Body); err != nil {
		return err
	}
	s.log.Warn("the cluster's state was replaced by a restored snapshot")
	writeJSON(w, http.StatusOK, s.store.State().Index(), struct{}{})
	return nil
}

// clusterRoutes adds the cluster's endpoints.
func (s *Server) clusterRoutes(mux *http.ServeMux) {
	const users = allowUser | allowAdmin
	mux.HandleFunc("GET /v1/cluster/members", s.guard(users, s.handleMembers))
	mux.HandleFunc("POST /v1/cluster/members", s.guard(allowAdmin, s.handleJoinMember))
	mux.HandleFunc("DELETE /v1/cluster/members/{id}", s.guard(allowAdmin, s.handleRemoveMember))
	mux.HandleFunc("GET /v1/operator/snapshot", s.guard(allowAdmin, s.handleSnapshotSave))
	mux.HandleFunc("PUT /v1/operator/snapshot", s.guard(allowAdmin, s.handleSnapshotRestore))
	mux.HandleFunc("POST "+peerPath+"hello", s.peerHandler(maxJSONBody, s.handlePeerHello))
	mux.HandleFunc("POST "+peerPath+"invite", s.peerHandler(maxJSONBody, s.handlePeerInvite))
	mux.HandleFunc("POST "+peerPath+"join", s.peerHandler(maxJSONBody, s.handlePeerJoin))
	mux.HandleFunc("POST "+peerPath+"add", s.peerHandler(maxJSONBody, s.handlePeerAdd))
	mux.HandleFunc("POST "+forwardPath, s.peerHandler(maxForwardBody, s.handlePeerApply))
}
