package server

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"net/http"
	"strconv"

	"github.com/amld/amld/api"
	"github.com/amld/amld/raftstore"
)

// handleRegister joins a node: a provider-made node registers under the ID
// it was given; an agent started by hand names its target.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) error {
	var req api.RegisterRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	st := s.store.State()
	nodeID, target := req.NodeID, req.Target
	var size api.VMSize
	if nodeID != "" {
		n := st.Node(nodeID)
		if n == nil {
			return api.NotFound("no node %q: it was removed, or never made by this cluster", nodeID)
		}
		switch n.State {
		case api.NodeLeaving, api.NodeUnusable, api.NodePreempted:
			return api.FailedPrecondition("node %s is %s (%s) and cannot register", n.ID, n.State, n.Reason)
		}
		target = n.Target
	} else {
		if target == "" {
			return api.Invalid("target", "is required when node_id is empty")
		}
		nodeID = newID("n")
	}
	t := st.Target(target)
	if t == nil {
		return api.NotFound("no target named %q", target)
	}
	size, _ = s.targetSize(t)
	capacity := size.Resources()
	if req.Capacity.CPUs > 0 && req.Capacity.CPUs < capacity.CPUs {
		capacity.CPUs = req.Capacity.CPUs
	}
	if req.Capacity.MemoryMB > 0 && req.Capacity.MemoryMB < capacity.MemoryMB {
		capacity.MemoryMB = req.Capacity.MemoryMB
	}
	if err := checkReportedGPUs(req); err != nil {
		return err
	}
	var unusable string
	req.GPUs, capacity.GPUs, unusable = nodeGPUs(size, req)
	token := newToken("node")
	idx, err := s.apply(r.Context(), raftstore.MsgNodeRegister, &raftstore.NodeRegisterRequest{
		NodeID:    nodeID,
		Target:    target,
		Register:  req,
		Capacity:  capacity,
		TokenHash: hashToken(token),
		Time:      now(),
		Unusable:  unusable,
	})
	if err != nil {
		return err
	}
	s.hb.seen(nodeID)
	if unusable != "" {
		s.log.Warn("node registered unusable", "node", nodeID, "target", target, "reason", unusable)
		s.recordUnusable(r.Context(), target, nodeID, unusable)
	} else {
		s.log.Info("node registered", "node", nodeID, "target", target, "address", req.Address, "gpus", len(req.GPUs))
	}
	writeJSON(w, http.StatusOK, idx, api.RegisterResponse{
		NodeID:              nodeID,
		NodeToken:           token,
		HeartbeatIntervalMS: int(s.cfg.HeartbeatTTL.Milliseconds() / 5),
		Unusable:            unusable,
	})
	return nil
}

// callerNode checks that a node token acts for the node it names.
func callerNode(r *http.Request, nodeID string) error {
	id := identityOf(r.Context())
	if nodeID == "" {
		return api.Invalid("node_id", "is required")
	}
	if id.name != nodeID {
		return api.Forbidden("this node token belongs to another node")
	}
	return nil
}

func (s *Server) handleHeartbeat(w http.ResponseWriter, r *http.Request) error {
	var req api.HeartbeatRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if err := callerNode(r, req.NodeID); err != nil {
		return err
	}
	n := s.store.State().Node(req.NodeID)
	if n == nil {
		return api.NotFound("node %s was removed", req.NodeID)
	}
	s.hb.seen(req.NodeID)
	writeJSON(w, http.StatusOK, 0, struct{}{})
	return nil
}

// assignments lists what a node must run: the live attempts holding it.
func assignments(st *raftstore.State, nodeID string, sl *sealer) *api.AssignmentsResponse {
	resp := &api.AssignmentsResponse{Assignments: []api.Assignment{}}
	n := st.Node(nodeID)
	if n == nil {
		resp.Shutdown = true
		return resp
	}
	for _, run := range st.RunsOnNode(nodeID) {
		a := run.LiveAttempt()
		if a == nil {
			continue
		}
		peers := make([]string, len(a.Allocations))
		for i, al := range a.Allocations {
			if pn := st.Node(al.NodeID); pn != nil {
				peers[i] = pn.Address
			}
		}
		sshInfo, states := attemptSSH(st, run, a, sl), peerStates(a)
		for i, al := range a.Allocations {
			if al.NodeID != nodeID {
				continue
			}
			as := api.Assignment{
				RunID: run.ID, Attempt: a.Number, NodeIndex: i,
				Run: run.RunSpec, Allocation: al, Peers: peers,
				SSH: sshInfo, PeerStates: states,
			}
			if run.State == api.RunCancelRequested {
				as.Stop, as.StopReason = true, "canceled"
			}
			if a.StopReason != "" {
				as.Stop, as.StopReason, as.GraceSeconds = true, a.StopReason, a.StopGraceSeconds
			}
			resp.Assignments = append(resp.Assignments, as)
		}
	}
	// The version is a fingerprint of the answer: an agent passes it back and
	// is answered as soon as its assignments differ from what it has.
	h := fnv.New64a()
	_ = json.NewEncoder(h).Encode(resp)
	resp.Index = h.Sum64() >> 1
	if resp.Index == 0 {
		resp.Index = 1
	}
	return resp
}

func (s *Server) handleAssignments(w http.ResponseWriter, r *http.Request) error {
	nodeID := r.URL.Query().Get("node")
	if err := callerNode(r, nodeID); err != nil {
		return err
	}
	have, wait, err := waitParams(r)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	st := s.store.State()
	for {
		resp := assignments(st, nodeID, s.sealer)
		if have == 0 || resp.Index != have || resp.Shutdown || ctx.Err() != nil {
			writeJSON(w, http.StatusOK, st.Index(), resp)
			return nil
		}
		st = s.store.WaitForIndex(ctx, st.Index())
	}
}

func (s *Server) handleAttemptStatus(w http.ResponseWriter, r *http.Request) error {
	var req api.AttemptStatus
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	id := identityOf(r.Context())
	switch req.State {
	case api.AttemptRunning, api.AttemptFinalizing, api.AttemptExited:
	default:
		return api.Invalid("state", "%q is not allowed; allowed: running, finalizing, exited", req.State)
	}
	if req.State == api.AttemptExited && req.ExitCode == nil && !req.Lost {
		return api.Invalid("exit_code", "is required when state is exited")
	}
	s.hb.seen(id.name)
	idx, err := s.apply(r.Context(), raftstore.MsgAttemptStatus, &raftstore.AttemptStatusRequest{NodeID: id.name, Status: req, Time: now()})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, idx, struct{}{})
	return nil
}

func (s *Server) handleAgentLogs(w http.ResponseWriter, r *http.Request) error {
	var req api.LogAppend
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if len(req.Data) > api.MaxLogChunkBytes {
		return api.TooLarge("log chunk of %d bytes is over the cap of %d", len(req.Data), api.MaxLogChunkBytes)
	}
	if req.Offset < 0 {
		return api.Invalid("offset", "must not be negative")
	}
	id := identityOf(r.Context())
	idx, err := s.apply(r.Context(), raftstore.MsgLogAppend, &raftstore.LogAppendRequest{NodeID: id.name, Log: req})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, idx, struct{}{})
	return nil
}

func (s *Server) handleAgentOutputs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	runID := q.Get("run")
	attempt, err := strconv.Atoi(q.Get("attempt"))
	if err != nil || attempt < 1 {
		return api.Invalid("attempt", "must be a positive integer")
	}
	st := s.store.State()
	run := st.Run(runID)
	if run == nil {
		return api.NotFound("no run %q", runID)
	}
	if attempt > len(run.Attempts) || run.Attempts[attempt-1].Ended {
		return api.FailedPrecondition("attempt %d of run %s is no longer current", attempt, runID)
	}
	if al := run.Attempts[attempt-1].Allocations; len(al) == 0 || al[0].NodeID != identityOf(r.Context()).name {
		return api.Forbidden("only node 0 of the attempt uploads its outputs")
	}
	b, err := readBlob(r, api.MaxOutputsBytes, "the outputs archive")
	if err != nil {
		return err
	}
	idx, err := s.putBlob(r.Context(), b)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, idx, api.BlobRef{ID: b.ID, Size: b.Size, SHA256: b.SHA256})
	return nil
}
