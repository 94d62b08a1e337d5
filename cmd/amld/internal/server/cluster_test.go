package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// TestSubmitRetriedWithTheSameIdempotencyKeyMakesOneRun: a client whose
// first answer was lost sends the same submit again; it gets the run the
// first one made, and only one run exists.
func TestSubmitRetriedWithTheSameIdempotencyKeyMakesOneRun(t *testing.T) {
	ts := startTestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := ts.client.CreateTarget(ctx, api.TargetSpec{Name: "cpu-cluster", VMSize: "cpu-2", MaxNodes: 1}); err != nil {
		t.Fatal(err)
	}
	submit := func(key string) *api.Run {
		body, _ := json.Marshal(api.RunSpec{Target: "cpu-cluster", Command: []string{"true"}})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.srv.URL()+"/v1/runs", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+ts.token)
		req.Header.Set(idempotencyHeader, key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("submit: %s", resp.Status)
		}
		var r api.Run
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		return &r
	}
	a, b, other := submit("k-1"), submit("k-1"), submit("k-2")
	if a.ID != b.ID || a.ID == other.ID {
		t.Fatalf("runs %s, %s (same key) and %s (another key)", a.ID, b.ID, other.ID)
	}
	runs, err := ts.client.ListRuns(ctx, api.RunFilter{})
	if err != nil || len(runs) != 2 {
		t.Fatalf("%d runs (%v), want 2", len(runs), err)
	}
}

// TestStatusAndMembersOfASingleHead: /v1/status tells the head's Raft
// state, and the members list holds the head itself as leader.
func TestStatusAndMembersOfASingleHead(t *testing.T) {
	ts := startTestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := ts.client.Status(ctx)
	if err != nil || st.State != "Leader" || st.AppliedIndex == 0 || st.LastContactMS != -1 {
		t.Fatalf("status: %+v %v", st, err)
	}
	ms, err := ts.client.Members(ctx)
	if err != nil || len(ms) != 1 || !ms[0].Leader || !ms[0].Voter || ms[0].ID != "head-1" || ms[0].APIAddr != ts.srv.URL() {
		t.Fatalf("members: %+v %v", ms, err)
	}
	// A consistent read goes through a barrier on the leader.
	cons, _ := api.NewClient(api.Config{Addresses: ts.client.Addresses(), Token: "x", Consistent: true})
	if _, err := cons.ListTargets(ctx); api.StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("a consistent read with a bad token: %v", err)
	}
}
