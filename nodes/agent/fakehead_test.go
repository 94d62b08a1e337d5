package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// fakeHead is an in-memory head speaking the agent protocol, for testing
// the agent alone.
type fakeHead struct {
	t         *testing.T
	srv       *httptest.Server
	joinToken string

	mu            sync.Mutex
	changed       chan struct{} // closed and replaced on every change
	tokens        map[string]string
	registrations []api.RegisterRequest
	heartbeats    int
	index         uint64
	assignments   []api.Assignment
	shutdown      bool
	removed       bool // heartbeats get 404
	statuses      []api.AttemptStatus
	refused       []api.AttemptStatus     // status reports answered 409
	refusedLogs   []byte                  // output answered 409
	fencedLogs    map[api.AttemptKey]bool // output answered 409
	fencedStatus  map[api.AttemptKey]bool // status answered 409 once a line of output came
	failStatus    int                     // answer this many status reports with 503
	logs          map[api.AttemptKey][]byte
	appends       []api.LogAppend
	gaps          []string // appends that did not start where the stream ended
	blobs         map[string][]byte
	checkpoints   map[string][]byte         // the latest checkpoint of each run
	ckptUploads   []api.AttemptKey          // checkpoint uploads taken, in order
	ckptAtExit    map[api.AttemptKey][]byte // the run's checkpoint when the exited report came
	fencedCkpt    map[api.AttemptKey]bool   // checkpoint uploads answered 409
	refusedCkpt   int                       // checkpoint uploads answered 409
}

func newFakeHead(t *testing.T) *fakeHead {
	h := &fakeHead{
		t:            t,
		joinToken:    "join-secret-123",
		changed:      make(chan struct{}),
		tokens:       map[string]string{},
		fencedLogs:   map[api.AttemptKey]bool{},
		fencedStatus: map[api.AttemptKey]bool{},
		logs:         map[api.AttemptKey][]byte{},
		blobs:        map[string][]byte{},
		checkpoints:  map[string][]byte{},
		ckptAtExit:   map[api.AttemptKey][]byte{},
		fencedCkpt:   map[api.AttemptKey]bool{},
		index:        1,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/agent/register", h.register)
	mux.HandleFunc("POST /v1/agent/heartbeat", h.auth(h.heartbeat))
	mux.HandleFunc("GET /v1/agent/assignments", h.auth(h.assigned))
	mux.HandleFunc("POST /v1/agent/status", h.auth(h.status))
	mux.HandleFunc("POST /v1/agent/logs", h.auth(h.appendLog))
	mux.HandleFunc("POST /v1/agent/outputs", h.auth(h.outputs))
	mux.HandleFunc("GET /v1/blobs/{id}", h.auth(h.blob))
	mux.HandleFunc("POST /v1/agent/checkpoints", h.auth(h.putCheckpoint))
	mux.HandleFunc("GET /v1/agent/checkpoints", h.auth(h.getCheckpoint))
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	return h
}

// bump wakes blocking queries and waiters; h.mu must be held.
func (h *fakeHead) bump() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// update changes the head's state under its lock and wakes everyone.
func (h *fakeHead) update(fn func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fn()
	h.bump()
}

// assign replaces the node's assignments.
func (h *fakeHead) assign(asgs ...api.Assignment) {
	h.update(func() {
		h.index++
		h.assignments = asgs
	})
}

// waitFor waits until cond (called under h.mu) holds.
func (h *fakeHead) waitFor(what string, d time.Duration, cond func() bool) {
	h.t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		h.mu.Lock()
		ok, ch := cond(), h.changed
		h.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			h.mu.Lock()
			defer h.mu.Unlock()
			h.t.Fatalf("timed out waiting for %s; statuses %+v", what, h.statuses)
		}
	}
}

// final waits for k's exited report and returns it.
func (h *fakeHead) final(k api.AttemptKey, d time.Duration) api.AttemptStatus {
	h.t.Helper()
	var st api.AttemptStatus
	h.waitFor("exited report of "+k.RunID, d, func() bool {
		for _, s := range h.statuses {
			if s.AttemptKey == k && s.State == api.AttemptExited {
				st = s
				return true
			}
		}
		return false
	})
	return st
}

// states lists the states reported for k, in order.
func (h *fakeHead) states(k api.AttemptKey) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, s := range h.statuses {
		if s.AttemptKey == k {
			out = append(out, s.State)
		}
	}
	return out
}

func (h *fakeHead) logOf(k api.AttemptKey) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return string(h.logs[k])
}

func writeErr(w http.ResponseWriter, e *api.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(api.ErrorEnvelope{Error: e})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func bearer(r *http.Request) string {
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
}

func (h *fakeHead) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		_, ok := h.tokens[bearer(r)]
		h.mu.Unlock()
		if !ok {
			writeErr(w, api.Unauthorized("bad node token"))
			return
		}
		next(w, r)
	}
}

func (h *fakeHead) register(w http.ResponseWriter, r *http.Request) {
	if bearer(r) != h.joinToken {
		writeErr(w, api.Unauthorized("bad join token"))
		return
	}
	var req api.RegisterRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeErr(w, api.Invalid("", "%v", err))
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.registrations = append(h.registrations, req)
	id := req.NodeID
	if id == "" {
		id = "n-auto"
	}
	tok := fmt.Sprintf("node-token-%d", len(h.registrations))
	h.tokens[tok] = id
	h.bump()
	writeJSON(w, api.RegisterResponse{NodeID: id, NodeToken: tok, HeartbeatIntervalMS: 50})
}

// revokeTokens forgets every node token, as a head that lost them would.
func (h *fakeHead) revokeTokens() { h.update(func() { h.tokens = map[string]string{} }) }

func (h *fakeHead) heartbeat(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.removed {
		writeErr(w, api.NotFound("no such node"))
		return
	}
	h.heartbeats++
	h.bump()
}

func (h *fakeHead) assigned(w http.ResponseWriter, r *http.Request) {
	idx, _ := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
	wait, _ := time.ParseDuration(r.URL.Query().Get("wait"))
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		h.mu.Lock()
		if h.index != idx || h.shutdown {
			resp := api.AssignmentsResponse{Index: h.index, Assignments: h.assignments, Shutdown: h.shutdown}
			h.mu.Unlock()
			writeJSON(w, resp)
			return
		}
		ch := h.changed
		h.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			idx = 0 // answer with what there is
		case <-r.Context().Done():
			return
		}
	}
}

func (h *fakeHead) status(w http.ResponseWriter, r *http.Request) {
	var st api.AttemptStatus
	if err := json.NewDecoder(r.Body).Decode(&st); err != nil {
		writeErr(w, api.Invalid("", "%v", err))
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.bump()
	for h.fencedStatus[st.AttemptKey] && !bytes.Contains(h.logs[st.AttemptKey], []byte("\n")) {
		ch := h.changed
		h.mu.Unlock()
		select {
		case <-ch:
		case <-r.Context().Done():
		}
		h.mu.Lock()
		if r.Context().Err() != nil {
			return
		}
	}
	switch {
	case h.fencedStatus[st.AttemptKey]:
		h.refused = append(h.refused, st)
		writeErr(w, api.FailedPrecondition("attempt fenced off"))
	case h.failStatus > 0:
		h.failStatus--
		writeErr(w, api.Unavailable("no leader"))
	default:
		h.statuses = append(h.statuses, st)
		if st.State == api.AttemptExited {
			h.ckptAtExit[st.AttemptKey] = h.checkpoints[st.RunID]
		}
	}
}

func (h *fakeHead) appendLog(w http.ResponseWriter, r *http.Request) {
	var la api.LogAppend
	if err := json.NewDecoder(r.Body).Decode(&la); err != nil {
		writeErr(w, api.Invalid("", "%v", err))
		return
	}
	if len(la.Data) > api.MaxLogChunkBytes {
		writeErr(w, api.TooLarge("chunk too large"))
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.bump()
	if h.fencedLogs[la.AttemptKey] {
		h.refusedLogs = append(h.refusedLogs, la.Data...)
		writeErr(w, api.FailedPrecondition("attempt fenced off"))
		return
	}
	h.appends = append(h.appends, api.LogAppend{AttemptKey: la.AttemptKey, Offset: la.Offset, Data: nil})
	have := int64(len(h.logs[la.AttemptKey]))
	switch {
	case la.Offset > have:
		h.gaps = append(h.gaps, fmt.Sprintf("append at %d, stream has %d", la.Offset, have))
	case la.Offset+int64(len(la.Data)) > have:
		h.logs[la.AttemptKey] = append(h.logs[la.AttemptKey], la.Data[have-la.Offset:]...)
	}
}

func (h *fakeHead) outputs(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(io.LimitReader(r.Body, api.MaxOutputsBytes+1))
	if err != nil || len(b) > api.MaxOutputsBytes {
		writeErr(w, api.TooLarge("outputs too large"))
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	id := fmt.Sprintf("out-%s-%s", r.URL.Query().Get("run"), r.URL.Query().Get("attempt"))
	h.blobs[id] = b
	h.bump()
	writeJSON(w, api.BlobRef{ID: id, Size: int64(len(b))})
}

func (h *fakeHead) blob(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	b, ok := h.blobs[r.PathValue("id")]
	h.mu.Unlock()
	if !ok {
		writeErr(w, api.NotFound("no such blob"))
		return
	}
	_, _ = w.Write(b)
}

// syncBuffer is a log sink safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testAgent is a running agent under test.
type testAgent struct {
	*Agent
	cfg    Config
	cancel context.CancelFunc
	errc   chan error
	logs   *syncBuffer
}

// startAgent runs an agent against h with fast test settings; edit changes
// the config first. The agent is stopped at the end of the test.
func startAgent(t *testing.T, h *fakeHead, workDir string, edit func(*Config)) *testAgent {
	t.Helper()
	if workDir == "" {
		workDir = t.TempDir()
	}
	logs := &syncBuffer{}
	cfg := DefaultConfig()
	cfg.HeadAddrs = []string{h.srv.URL}
	cfg.JoinToken = h.joinToken
	cfg.NodeID = "n-1"
	cfg.WorkDir = workDir
	cfg.Capacity = api.Resources{CPUs: 2, MemoryMB: 1024}
	cfg.KillGrace = 300 * time.Millisecond
	cfg.AssignmentsWait = 2 * time.Second
	cfg.RetryMin, cfg.RetryMax = 5*time.Millisecond, 50*time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if edit != nil {
		edit(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ta := &testAgent{Agent: a, cfg: cfg, cancel: cancel, errc: make(chan error, 1), logs: logs}
	go func() { ta.errc <- a.Run(ctx) }()
	t.Cleanup(func() { ta.stop(t) })
	return ta
}

// stop cancels the agent and waits for Run; it checks no secret was logged.
func (ta *testAgent) stop(t *testing.T) error {
	t.Helper()
	ta.cancel()
	select {
	case err, ok := <-ta.errc:
		if ok {
			close(ta.errc)
			logs := ta.logs.String()
			if strings.Contains(logs, ta.cfg.JoinToken) || strings.Contains(logs, "node-token-") {
				t.Errorf("a token was logged:\n%s", logs)
			}
		}
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not stop within 10s")
	}
	return nil
}

func checkpointKey(r *http.Request) api.AttemptKey {
	q := r.URL.Query()
	a, _ := strconv.Atoi(q.Get("attempt"))
	n, _ := strconv.Atoi(q.Get("node"))
	return api.AttemptKey{RunID: q.Get("run"), Attempt: a, NodeIndex: n}
}

func (h *fakeHead) putCheckpoint(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(io.LimitReader(r.Body, api.MaxCheckpointBytes+1))
	if err != nil || len(b) > api.MaxCheckpointBytes {
		writeErr(w, api.TooLarge("checkpoint too large"))
		return
	}
	k := checkpointKey(r)
	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.bump()
	if h.fencedStatus[k] || h.fencedLogs[k] || h.fencedCkpt[k] {
		h.refusedCkpt++
		writeErr(w, api.FailedPrecondition("attempt fenced off"))
		return
	}
	h.checkpoints[k.RunID] = b
	h.ckptUploads = append(h.ckptUploads, k)
	writeJSON(w, api.BlobRef{ID: "ck-" + k.RunID, Size: int64(len(b))})
}

func (h *fakeHead) getCheckpoint(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	b, ok := h.checkpoints[checkpointKey(r).RunID]
	h.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	_, _ = w.Write(b)
}
