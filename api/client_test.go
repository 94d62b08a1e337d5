package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestClientMovesOnFromHeadsThatDoNotAnswer: a head that is gone (network
// error) or answers 503 is skipped for the next; the client then sticks to
// the head that answered; an upload's body is sent again in full.
func TestClientMovesOnFromHeadsThatDoNotAnswer(t *testing.T) {
	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL
	gone.Close()
	var busyCalls, goodCalls atomic.Int64
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		busyCalls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"error":{"code":"unavailable","message":"no leader"}}`)
	}))
	defer busy.Close()
	var lastBody atomic.Value
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		goodCalls.Add(1)
		b, _ := io.ReadAll(r.Body)
		lastBody.Store(string(b))
		if r.Header.Get("Idempotency-Key") == "" && r.URL.Path == "/v1/runs" {
			t.Error("a submit without an idempotency key")
		}
		_, _ = io.WriteString(w, `{"id":"b-1","size":5}`)
	}))
	defer good.Close()

	c, err := NewClient(Config{Addresses: []string{goneURL, busy.URL, good.URL}, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ref, err := c.UploadSource(ctx, []byte("hello"))
	if err != nil || ref.ID != "b-1" {
		t.Fatalf("upload: %+v %v", ref, err)
	}
	if got := lastBody.Load(); got != "hello" {
		t.Errorf("the head that answered got %q", got)
	}
	if busyCalls.Load() != 1 {
		t.Errorf("the busy head was asked %d times", busyCalls.Load())
	}
	// The client now starts with the head that answered.
	if _, err := c.SubmitRun(ctx, RunSpec{Target: "x", Command: []string{"true"}}); err != nil {
		t.Fatal(err)
	}
	if busyCalls.Load() != 1 || goodCalls.Load() != 2 {
		t.Errorf("after a success the client went back to other heads: busy %d, good %d", busyCalls.Load(), goodCalls.Load())
	}
}

// TestClientGivesUpAfterRoundsWhenNoHeadAnswers: with every head busy the
// client goes round them a bounded number of times and returns the 503.
func TestClientGivesUpAfterRoundsWhenNoHeadAnswers(t *testing.T) {
	var calls atomic.Int64
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer busy.Close()
	c, _ := NewClient(Config{Addresses: []string{busy.URL, busy.URL}})
	_, err := c.ListTargets(context.Background())
	if StatusOf(err) != http.StatusServiceUnavailable {
		t.Fatalf("got %v, want 503", err)
	}
	if calls.Load() != 2*retryRounds {
		t.Errorf("%d calls, want %d", calls.Load(), 2*retryRounds)
	}
}

// TestClientAsksForConsistentReads: Config.Consistent adds
// consistent=true to reads only.
func TestClientAsksForConsistentReads(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.Query().Get("consistent"))
		_, _ = io.WriteString(w, `[]`)
	}))
	defer srv.Close()
	c, _ := NewClient(Config{Addresses: []string{srv.URL}, Consistent: true})
	_, _ = c.ListTargets(context.Background())
	_ = c.DeleteTarget(context.Background(), "x")
	if len(got) != 2 || got[0] != "GET true" || got[1] != "DELETE " {
		t.Errorf("requests: %q", got)
	}
}

// TestClientSendsTheHighestIndexItSaw: after an answer carrying index 42,
// every later request (also of a WithToken copy) carries min index 42.
func TestClientSendsTheHighestIndexItSaw(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get(MinIndexHeader))
		if len(got) == 1 {
			w.Header().Set(IndexHeader, "42")
		} else {
			w.Header().Set(IndexHeader, "7")
		}
		_, _ = io.WriteString(w, `[]`)
	}))
	defer srv.Close()
	c, _ := NewClient(Config{Addresses: []string{srv.URL}})
	_, _ = c.ListTargets(context.Background())
	_, _ = c.ListTargets(context.Background())
	_, _ = c.WithToken("other").ListTargets(context.Background())
	if len(got) != 3 || got[0] != "" || got[1] != "42" || got[2] != "42" {
		t.Errorf("min index headers sent: %q", got)
	}
}

// TestListedRunsKeepSmallEnvMaps: the answer decoder makes every
// map[string]string with room for 64 entries (about 5 KB); a list of runs
// comes back with each environment in a map sized to it.
func TestListedRunsKeepSmallEnvMaps(t *testing.T) {
	const n = 2000
	var body strings.Builder
	body.WriteString("[")
	for i := range n {
		if i > 0 {
			body.WriteString(",")
		}
		fmt.Fprintf(&body, `{"id":"run-%d","target":"cpu","command":["true"],"env":{"EPOCHS":"10","LR":"0.1"}}`, i)
	}
	body.WriteString("]")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, body.String())
	}))
	defer srv.Close()
	c, err := NewClient(Config{Addresses: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	retained := int64(1 << 62)
	for range 3 { // the least of three: other goroutines may allocate too
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		runs, err := c.ListRuns(context.Background(), RunFilter{})
		if err != nil || len(runs) != n || runs[n-1].Env["LR"] != "0.1" {
			t.Fatalf("%d runs, %v", len(runs), err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		retained = min(retained, (int64(after.HeapAlloc)-int64(before.HeapAlloc))/n)
		runtime.KeepAlive(runs)
	}
	// A 64-entry map alone is over 4 KB; a whole listed run is under 1.5 KB.
	if retained > 3000 {
		t.Fatalf("a listed run with two environment variables holds %d bytes", retained)
	}
	t.Logf("a listed run holds %d bytes", retained)
}
