package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// fakeHead fakes the few endpoints of an amld head that the CLI tests need,
// recording what it was sent.
type fakeHead struct {
	t   *testing.T
	srv *httptest.Server
	mux *http.ServeMux
	// done ends handlers that block like a blocking query with no change.
	done chan struct{}

	mu sync.Mutex
	// runStates is the script of GetRun: the answer to ?index=i is
	// runStates[i] (the first call has no index), with index i+1.
	runStates []*api.Run
	// logs maps "attempt/offset" to the chunk answered.
	logs map[string]*api.LogChunk
	// onLogs, when set, is called on each Logs request.
	onLogs func(q string)
	// Recorded requests.
	bodies  map[string][]byte // "METHOD /path" → last body
	headers map[string]http.Header
	blobs   [][]byte
}

// newFakeHead starts a fake head; it stops when the test ends.
func newFakeHead(t *testing.T) *fakeHead {
	f := &fakeHead{t: t, mux: http.NewServeMux(), done: make(chan struct{}),
		logs: map[string]*api.LogChunk{}, bodies: map[string][]byte{}, headers: map[string]http.Header{}}
	f.mux.HandleFunc("GET /v1/runs/{id}", f.getRun)
	f.mux.HandleFunc("GET /v1/runs/{id}/logs", f.getLogs)
	f.mux.HandleFunc("POST /v1/blobs", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.blobs = append(f.blobs, b)
		f.mu.Unlock()
		reply(w, api.BlobRef{ID: "b-1", Size: int64(len(b))})
	})
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		f.mu.Lock()
		f.bodies[r.Method+" "+r.URL.Path] = b
		f.headers[r.Method+" "+r.URL.Path] = r.Header.Clone()
		f.mu.Unlock()
		f.mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() { close(f.done) }) // runs before Close
	return f
}

// handle answers method+path with v as JSON.
func (f *fakeHead) handle(pattern string, v any) {
	f.mux.HandleFunc(pattern, func(w http.ResponseWriter, _ *http.Request) { reply(w, v) })
}

// handleError answers pattern with an API error.
func (f *fakeHead) handleError(pattern string, e *api.Error) {
	f.mux.HandleFunc(pattern, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(e.Status)
		_ = json.NewEncoder(w).Encode(api.ErrorEnvelope{Error: e})
	})
}

// body returns the last body sent to method+path.
func (f *fakeHead) body(key string) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bodies[key]
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeHead) getRun(w http.ResponseWriter, r *http.Request) {
	i, _ := strconv.Atoi(r.URL.Query().Get("index"))
	f.mu.Lock()
	states := f.runStates
	f.mu.Unlock()
	if len(states) == 0 {
		f.handleNotFound(w, "no run "+r.PathValue("id"))
		return
	}
	if i >= len(states) {
		// Nothing changes past the script: block like a blocking query.
		select {
		case <-r.Context().Done():
		case <-f.done:
		}
		i = len(states) - 1
	}
	w.Header().Set(api.IndexHeader, strconv.Itoa(i+1))
	reply(w, states[i])
}

func (f *fakeHead) getLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	at := q.Get("attempt")
	if at == "" {
		at = "0"
	}
	key := at + "/" + q.Get("offset")
	f.mu.Lock()
	lc, ok := f.logs[key]
	hook := f.onLogs
	f.mu.Unlock()
	if hook != nil {
		hook(r.URL.RawQuery)
	}
	if !ok {
		f.t.Errorf("unexpected log read %s", r.URL.RawQuery)
		f.handleNotFound(w, "no log "+key)
		return
	}
	reply(w, lc)
}

func (f *fakeHead) handleNotFound(w http.ResponseWriter, msg string) {
	w.WriteHeader(http.StatusNotFound)
	_ = json.NewEncoder(w).Encode(api.ErrorEnvelope{Error: api.NotFound("%s", msg)})
}

// chunk makes a log chunk of attempt at offset.
func chunk(attempt int, offset int64, data string, complete bool) *api.LogChunk {
	return &api.LogChunk{Attempt: attempt, Offset: offset, NextOffset: offset + int64(len(data)),
		Data: []byte(data), Complete: complete, Index: uint64(100 + offset)}
}

// setLog scripts the log chunk at attempt/offset.
func (f *fakeHead) setLog(lc *api.LogChunk) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs[fmt.Sprintf("%d/%d", lc.Attempt, lc.Offset)] = lc
}

// cliResult is what one amlctl invocation did.
type cliResult struct {
	stdout, stderr string
	code           int
}

// runCLI runs amlctl against f with AMLCTL_ADDR and AMLCTL_TOKEN set.
func (f *fakeHead) runCLI(ctx context.Context, args ...string) cliResult {
	env := map[string]string{envAddr: f.srv.URL, envToken: "tok-secret"}
	return runCLIEnv(f.t, ctx, env, args...)
}

// runCLIEnv runs amlctl with env as its environment and an empty home.
func runCLIEnv(t *testing.T, ctx context.Context, env map[string]string, args ...string) cliResult {
	t.Helper()
	var out, errOut bytes.Buffer
	home := t.TempDir()
	a := &app{
		stdout:    &out,
		stderr:    &errOut,
		getenv:    func(k string) string { return env[k] },
		configDir: func() (string, error) { return home, nil },
		pollWait:  5 * time.Second,
		minPoll:   5 * time.Millisecond,
	}
	code := a.execute(ctx, args)
	return cliResult{stdout: out.String(), stderr: errOut.String(), code: code}
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }
