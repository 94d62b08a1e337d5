package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
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
