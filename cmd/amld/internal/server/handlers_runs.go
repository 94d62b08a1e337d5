package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/raftstore"
)

// readBlob reads a raw upload of at most limit bytes.
func readBlob(r *http.Request, limit int64, what string) (*raftstore.Blob, error) {
	body := http.MaxBytesReader(nil, r.Body, limit)
	data, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, api.TooLarge("%s is larger than the cap of %d bytes (%d MiB)", what, limit, limit>>20)
		}
		return nil, api.Invalid("body", "could not read the upload: %v", err)
	}
	if len(data) == 0 {
		return nil, api.Invalid("body", "%s is empty", what)
	}
	sum := sha256.Sum256(data)
	hexsum := hex.EncodeToString(sum[:])
	return &raftstore.Blob{ID: "b-" + hexsum[:24], SHA256: hexsum, Size: int64(len(data)), Data: data, CreatedAt: now()}, nil
}

func (s *Server) putBlob(ctx context.Context, b *raftstore.Blob) (uint64, error) {
	if s.store.State().Blob(b.ID) != nil {
		return 0, nil
	}
	return s.apply(ctx, raftstore.MsgBlobPut, &raftstore.BlobPutRequest{Blob: b})
}

func (s *Server) handleUploadSource(w http.ResponseWriter, r *http.Request) error {
	b, err := readBlob(r, api.MaxSourceBytes, "the source snapshot")
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

func (s *Server) handleGetBlob(w http.ResponseWriter, r *http.Request) error {
	b := s.store.State().Blob(r.PathValue("id"))
	if b == nil {
		return api.NotFound("no blob %q", r.PathValue("id"))
	}
	w.Header().Set("Content-Type", "application/gzip")
	_, _ = w.Write(b.Data)
	return nil
}

func (s *Server) handleSubmitRun(w http.ResponseWriter, r *http.Request) error {
	var spec api.RunSpec
	if err := decodeBody(r, &spec); err != nil {
		return err
	}
	st := s.store.State()
	if spec.Target == "" {
		return api.Invalid("target", "is required (amlctl compute list shows the targets)")
	}
	t := st.Target(spec.Target)
	if t == nil || !canSee(identityOf(r.Context()), t) {
		return api.NotFound("no target named %q (amlctl compute list shows them)", spec.Target)
	}
	if t.ProvisioningState == api.ProvisioningDeleting {
		return api.FailedPrecondition("target %s is being deleted", t.Name)
	}
	size, ok := s.targetSize(t)
	if !ok {
		return api.FailedPrecondition("target %s has vm_size %q, which this head's catalogue lacks", t.Name, t.VMSize)
	}
	req, err := validateRunSpec(&spec, t, size)
	if err != nil {
		return err
	}
	if err := checkImageRuntime(&spec, t, s.cfg.Providers[t.Provider]); err != nil {
		return err
	}
	if spec.SourceID != "" && st.Blob(spec.SourceID) == nil {
		return api.Invalid("source_id", "no uploaded source %q", spec.SourceID)
	}
	// A retry with the same idempotency key names the same run: the state
	// machine refuses it as a duplicate, and the run it finds is the
	// answer (below). Looking it up here first would spare a retry its
	// log entry but cost every submit a lookup, a twentieth of the
	// leader's CPU under a burst.
	id, idemKey := newID("run"), r.Header.Get(idempotencyHeader)
	if idemKey != "" {
		id = idempotentID("run", identityOf(r.Context()).name, idemKey)
	}
	run := &api.Run{
		RunSpec:     spec,
		ID:          id,
		Owner:       identityOf(r.Context()).name,
		State:       api.RunQueued,
		Request:     req,
		SubmittedAt: now(),
		Private:     t.Type == api.KindInstance,
	}
	key, err := newRunKey(&run.RunSpec, run.ID, s.sealer)
	if err != nil {
		return err
	}
	sub := &raftstore.RunSubmitRequest{Run: run, SSHKey: key}
	if s.logVersion.Load() >= 2 {
		// Word the run's wait like the last round's for runs that ask the
		// same: mostly right in a backlog, and then the next round need
		// not write the run again (scheduler.Hints).
		sub.Reason = s.hints.Load().Reason(run)
	}
	idx, err := s.applySubmit(r.Context(), sub)
	if fallbackOf(r.Context()) != nil {
		s.catchUpTo(r.Context(), idx) // a follower reads its own write
	}
	if err != nil {
		if idemKey != "" && api.StatusOf(err) == http.StatusConflict {
			st := s.store.State()
			if old := st.Run(id); old != nil {
				writeJSON(w, http.StatusCreated, st.Index(), old)
				return nil
			}
		}
		return err
	}
	got := s.store.State().Run(run.ID)
	if got == nil {
		got = run // a follower that has not caught up within catchUpWait
	}
	writeJSON(w, http.StatusCreated, idx, got)
	return nil
}

func (s *Server) handleListRuns(w http.ResponseWriter, r *http.Request) error {
	st := s.store.State()
	q := r.URL.Query()
	target, state := q.Get("target"), q.Get("state")
	runs := st.Runs()
	if target != "" {
		runs = st.RunsOfTarget(target)
	}
	out := []*api.Run{}
	for i := len(runs) - 1; i >= 0; i-- { // newest first
		if !canSeeRun(identityOf(r.Context()), runs[i]) {
			continue
		}
		if state == "" || runs[i].State == state {
			out = append(out, runs[i])
		}
	}
	writeJSON(w, http.StatusOK, st.Index(), out)
	return nil
}

func (s *Server) lookupRun(st *raftstore.State, id string) (*api.Run, error) {
	run := st.Run(id)
	if run == nil {
		return nil, api.NotFound("no run %q (amlctl job list shows them)", id)
	}
	return run, nil
}

// handleGetRun answers at once, or with ?index=N waits until the run
// changes past N (a blocking query).
func (s *Server) handleGetRun(w http.ResponseWriter, r *http.Request) error {
	idx, wait, err := waitParams(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	st := s.store.State()
	for {
		run, err := s.lookupVisibleRun(r, st, id)
		if err != nil {
			return err
		}
		if idx == 0 || run.ModifyIndex > idx || ctx.Err() != nil {
			writeJSON(w, http.StatusOK, run.ModifyIndex, run)
			return nil
		}
		st = s.store.WaitForIndex(ctx, st.Index())
	}
}

func (s *Server) handleCancelRun(w http.ResponseWriter, r *http.Request) error {
	st := s.store.State()
	run, err := s.lookupVisibleRun(r, st, r.PathValue("id"))
	if err != nil {
		return err
	}
	if id := identityOf(r.Context()); !id.isAdmin() && run.Owner != id.name {
		return api.Forbidden("run %s belongs to %s; only its owner or an admin may cancel it", run.ID, run.Owner)
	}
	if api.RunTerminal(run.State) {
		return api.FailedPrecondition("run %s is already %s", run.ID, run.State)
	}
	idx, err := s.apply(r.Context(), raftstore.MsgRunCancel, &raftstore.RunCancelRequest{RunID: run.ID, Time: now()})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, idx, s.store.State().Run(run.ID))
	return nil
}

// handleLogs returns one node's output of one attempt from an offset; with
// ?index it waits for more output, the end of the stream, or a new attempt.
func (s *Server) handleLogs(w http.ResponseWriter, r *http.Request) error {
	idx, wait, err := waitParams(r)
	if err != nil {
		return err
	}
	attempt, err := intParam(r, "attempt", 0, 0, 1<<30)
	if err != nil {
		return err
	}
	node, err := intParam(r, "node", 0, 0, 10000)
	if err != nil {
		return err
	}
	offset, err := intParam(r, "offset", 0, 0, 1<<40)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	id := r.PathValue("id")
	st := s.store.State()
	for {
		run, err := s.lookupVisibleRun(r, st, id)
		if err != nil {
			return err
		}
		chunk := logChunk(st, run, int(attempt), int(node), offset)
		if idx == 0 || len(chunk.Data) > 0 || chunk.Complete || ctx.Err() != nil || run.ModifyIndex > idx {
			writeJSON(w, http.StatusOK, chunk.Index, chunk)
			return nil
		}
		st = s.store.WaitForIndex(ctx, st.Index())
	}
}

// logChunk reads a log stream; attempt 0 means the run's latest.
func logChunk(st *raftstore.State, run *api.Run, attempt, node int, offset int64) *api.LogChunk {
	if attempt == 0 {
		attempt = len(run.Attempts)
	}
	c := &api.LogChunk{Attempt: attempt, NodeIndex: node, Offset: offset, NextOffset: offset, Index: st.Index(), Data: []byte{}}
	if attempt == 0 {
		c.Complete = api.RunTerminal(run.State)
		return c
	}
	if attempt > len(run.Attempts) {
		return c
	}
	a := run.Attempts[attempt-1]
	if node >= len(a.Nodes) {
		c.Complete = true
		return c
	}
	data, length, _ := st.Log(run.ID, attempt, node, offset)
	if offset > length {
		c.Offset, c.NextOffset = length, length
	}
	if len(data) > 0 {
		c.Data = data
		c.NextOffset = offset + int64(len(data))
	}
	c.Complete = (a.Ended || a.Nodes[node].State == api.AttemptExited) && c.NextOffset >= length
	return c
}

func (s *Server) handleOutputs(w http.ResponseWriter, r *http.Request) error {
	st := s.store.State()
	run, err := s.lookupVisibleRun(r, st, r.PathValue("id"))
	if err != nil {
		return err
	}
	attempt, err := intParam(r, "attempt", 0, 0, 1<<30)
	if err != nil {
		return err
	}
	var blobID string
	if attempt > 0 {
		if int(attempt) > len(run.Attempts) {
			return api.NotFound("run %s has %d attempts", run.ID, len(run.Attempts))
		}
		blobID = run.Attempts[attempt-1].OutputsID
	} else {
		for i := len(run.Attempts) - 1; i >= 0 && blobID == ""; i-- {
			blobID = run.Attempts[i].OutputsID
		}
	}
	if blobID == "" {
		return api.NotFound("run %s has no outputs yet (state %s); outputs are what the run leaves in ./outputs", run.ID, run.State)
	}
	b := st.Blob(blobID)
	if b == nil {
		return api.NotFound("outputs of run %s are missing", run.ID)
	}
	w.Header().Set("Content-Type", "application/gzip")
	_, _ = w.Write(b.Data)
	return nil
}

var _ = time.Second
