package server

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/nodes"
	"github.com/amld/amld/raftstore"
)

// preemptionGrace is the SIGTERM-to-SIGKILL grace, in seconds, of an
// attempt preempted on target t: the target's preemption_grace_seconds,
// else the head's --preemption-grace.
func (s *Server) preemptionGrace(t *api.Target) int {
	if t != nil && t.PreemptionGraceSeconds != nil {
		return *t.PreemptionGraceSeconds
	}
	return int(s.cfg.PreemptionGrace / time.Second)
}

// handleSimulateEviction evicts a node of a lowpriority cluster as a cloud
// takes a spot VM: the node becomes preempted with notice, its attempts
// are stopped (SIGTERM, then SIGKILL after the grace) and requeued, and the
// leader has the provider take the machine once they stopped or the notice
// ran out (see evictionLoop).
func (s *Server) handleSimulateEviction(w http.ResponseWriter, r *http.Request) error {
	var req api.EvictionRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	st := s.store.State()
	t, err := s.lookupTarget(st, r.PathValue("name"))
	if err != nil {
		return err
	}
	if req.NodeID == "" {
		return api.Invalid("node_id", "is required (amlctl compute list-nodes %s shows the nodes)", t.Name)
	}
	if g := req.GraceSeconds; g != nil && (*g < 0 || *g > api.MaxPreemptionGraceSeconds) {
		return api.Invalid("grace_seconds", "must be 0..%d, got %d", api.MaxPreemptionGraceSeconds, *g)
	}
	if t.Type != api.KindCluster || t.VMPriority != api.VMPriorityLowPriority {
		return api.FailedPrecondition("target %s has vm_priority %s: only the nodes of lowpriority clusters can be evicted", t.Name, t.VMPriority)
	}
	n := st.Node(req.NodeID)
	if n == nil || n.Target != t.Name {
		return api.NotFound("no node %q in target %s (amlctl compute list-nodes %s shows them)", req.NodeID, t.Name, t.Name)
	}
	switch n.State {
	case api.NodeIdle, api.NodeRunning:
	case api.NodePreempted:
		return api.FailedPrecondition("node %s is already being evicted: %s", n.ID, n.Reason)
	default:
		return api.FailedPrecondition("node %s is %s: only idle or running nodes can be evicted", n.ID, n.State)
	}
	if _, ok := s.cfg.Providers[t.Provider].(nodes.Evicter); !ok {
		return api.FailedPrecondition("the %s provider of target %s cannot simulate evictions", t.Provider, t.Name)
	}
	grace := s.preemptionGrace(t)
	if req.GraceSeconds != nil {
		grace = *req.GraceSeconds
	}
	at := now()
	reason := fmt.Sprintf("evicted by the %s provider (simulated eviction, %ds notice)", t.Provider, grace)
	idx, err := s.apply(r.Context(), raftstore.MsgNodeEvict, &raftstore.NodeEvictRequest{
		NodeID: n.ID, Reason: reason, GraceSeconds: grace, Time: at,
	})
	if err != nil {
		return err
	}
	out := api.Eviction{Target: t.Name, NodeID: n.ID, GraceSeconds: grace, Deadline: at.Add(time.Duration(grace) * time.Second), Runs: []string{}}
	for _, run := range st.RunsOnNode(n.ID) {
		out.Runs = append(out.Runs, run.ID)
	}
	s.log.Info("node evicted (simulated)", "target", t.Name, "node", n.ID, "grace_seconds", grace, "runs", len(out.Runs))
	writeJSON(w, http.StatusAccepted, idx, out)
	return nil
}

// agentAttempt reads run and attempt from the query and checks that the
// calling node holds a rank of that attempt, which is the run's current
// and live one (409 otherwise: the attempt is fenced off). It returns the
// run and the rank.
func agentAttempt(r *http.Request, st *raftstore.State) (*api.Run, int, int, error) {
	q := r.URL.Query()
	runID := q.Get("run")
	if runID == "" {
		return nil, 0, 0, api.Invalid("run", "is required")
	}
	attempt, err := strconv.Atoi(q.Get("attempt"))
	if err != nil || attempt < 1 {
		return nil, 0, 0, api.Invalid("attempt", "must be a positive integer")
	}
	run := st.Run(runID)
	if run == nil {
		return nil, 0, 0, api.NotFound("no run %q", runID)
	}
	if attempt != len(run.Attempts) || run.Attempts[attempt-1].Ended {
		return nil, 0, 0, api.FailedPrecondition("attempt %d of run %s is no longer current", attempt, runID)
	}
	me := identityOf(r.Context()).name
	for i, al := range run.Attempts[attempt-1].Allocations {
		if al.NodeID == me {
			return run, attempt, i, nil
		}
	}
	return nil, 0, 0, api.FailedPrecondition("node %s holds no rank of attempt %d of run %s", me, attempt, runID)
}

// handleAgentCheckpointPut stores node 0's checkpoint of a live attempt as
// its run's latest.
func (s *Server) handleAgentCheckpointPut(w http.ResponseWriter, r *http.Request) error {
	run, attempt, rank, err := agentAttempt(r, s.store.State())
	if err != nil {
		return err
	}
	if rank != 0 {
		return api.Forbidden("only node 0 of the attempt uploads its checkpoint")
	}
	b, err := readBlob(r, api.MaxCheckpointBytes, "the checkpoint")
	if err != nil {
		return err
	}
	// The ID is the run's own, so dropping it never touches another run's.
	b.ID = "ck-" + run.ID + "-" + b.SHA256[:16]
	idx, err := s.apply(r.Context(), raftstore.MsgCheckpointPut, &raftstore.CheckpointPutRequest{
		NodeID: identityOf(r.Context()).name, RunID: run.ID, Attempt: attempt, Blob: b, Time: b.CreatedAt,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, idx, api.BlobRef{ID: b.ID, Size: b.Size, SHA256: b.SHA256})
	return nil
}

// handleAgentCheckpointGet sends a live attempt's node the run's latest
// checkpoint, or 204 when it has none.
func (s *Server) handleAgentCheckpointGet(w http.ResponseWriter, r *http.Request) error {
	st := s.store.State()
	run, _, _, err := agentAttempt(r, st)
	if err != nil {
		return err
	}
	var b *raftstore.Blob
	if run.CheckpointID != "" {
		b = st.Blob(run.CheckpointID)
	}
	if b == nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	w.Header().Set("Content-Type", "application/gzip")
	_, _ = w.Write(b.Data)
	return nil
}
