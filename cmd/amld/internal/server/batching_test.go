package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/raftstore"
)

func TestClusterLogVersionIsWhatEveryHeadApplies(t *testing.T) {
	m := func(ids ...string) []raftstore.Member {
		var out []raftstore.Member
		for _, id := range ids {
			out = append(out, raftstore.Member{ID: id, Voter: true})
		}
		return out
	}
	h := func(id string, v int) *raftstore.Head { return &raftstore.Head{ID: id, LogVersion: v} }
	now := raftstore.LogVersion
	for _, c := range []struct {
		name    string
		members []raftstore.Member
		heads   []*raftstore.Head
		want    int
	}{
		{"all heads new", m("h1", "h2", "h3"), []*raftstore.Head{h("h1", now), h("h2", now), h("h3", now)}, now},
		{"one head from before batch entries", m("h1", "h2", "h3"), []*raftstore.Head{h("h1", now), h("h2", 0), h("h3", now)}, 0},
		{"one head applying batch entries only", m("h1", "h2", "h3"), []*raftstore.Head{h("h1", now), h("h2", 1), h("h3", now)}, 1},
		{"a head newer than this build", m("h1", "h2"), []*raftstore.Head{h("h1", now), h("h2", now+1)}, now},
		{"a member not in the heads table yet", m("h1", "h2"), []*raftstore.Head{h("h1", now)}, 0},
		{"a removed head still in the table", m("h1"), []*raftstore.Head{h("h1", now), h("h9", 0)}, now},
		{"no configuration", nil, []*raftstore.Head{h("h1", now)}, 0},
	} {
		if got := clusterLogVersion(c.members, c.heads); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

// TestHeadRecordsItsLogVersionAndTurnsBatchingOn: a single head records
// the log format it applies in the heads table, and its leader loop then
// turns batch entries on.
func TestHeadRecordsItsLogVersionAndTurnsBatchingOn(t *testing.T) {
	ts := startTestServer(t)
	deadline := time.Now().Add(15 * time.Second)
	for !ts.srv.store.Batching() {
		if time.Now().After(deadline) {
			t.Fatalf("batching still off; heads: %+v", ts.srv.store.State().Heads())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if h := ts.srv.store.State().Head("head-1"); h == nil || h.LogVersion != raftstore.LogVersion {
		t.Fatalf("head entry %+v, want log version %d", h, raftstore.LogVersion)
	}
}

// TestSubmitIntoABacklogStartsWithTheReasonOfItsAsk: once every head
// applies log format 2, a run submitted behind waiting runs that ask the
// same starts with the reason the last round gave them, and the next round
// does not write it again.
func TestSubmitIntoABacklogStartsWithTheReasonOfItsAsk(t *testing.T) {
	ts := startTestServer(t)
	ts.prov.failErr = fmt.Errorf("no machines in this test")
	ctx := context.Background()
	if _, err := ts.client.CreateTarget(ctx, api.TargetSpec{Name: "full", VMSize: "cpu-2", MaxNodes: 1}); err != nil {
		t.Fatal(err)
	}
	spec := api.RunSpec{Target: "full", Command: []string{"true"}}
	waitRun := func(id, what string, ok func(*api.Run) bool) *api.Run {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			r, _, err := ts.client.GetRun(ctx, id, api.Wait{})
			if err != nil {
				t.Fatal(err)
			}
			if ok(r) {
				return r
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %s: %+v; want %s", id, r, what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	worded := func(r *api.Run) bool { return r.Reason != "" && r.Reason != "waiting for the scheduler" }
	for deadline := time.Now().Add(15 * time.Second); ts.srv.logVersion.Load() < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("log format %d, want 2", ts.srv.logVersion.Load())
		}
	}
	if _, err := ts.client.SubmitRun(ctx, spec); err != nil { // the blocked head
		t.Fatal(err)
	}
	r2, err := ts.client.SubmitRun(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	r2 = waitRun(r2.ID, "a reason from the scheduler", worded)
	// The round that worded r2 left its hint; r3 asks the same.
	for deadline := time.Now().Add(15 * time.Second); ts.srv.hints.Load().Reason(r2) != r2.Reason; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no hint for r2's ask")
		}
	}
	r3, err := ts.client.SubmitRun(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if r3.Reason != r2.Reason {
		t.Fatalf("r3 starts with %q, want r2's %q", r3.Reason, r2.Reason)
	}
	// r4 asks less, so it has no hint: once a round has worded it, that
	// round has seen r3 too, and must have left it alone.
	small := spec
	small.Resources = &api.Resources{CPUs: 1, MemoryMB: 64}
	r4, err := ts.client.SubmitRun(ctx, small)
	if err != nil {
		t.Fatal(err)
	}
	if r4.Reason != "waiting for the scheduler" {
		t.Fatalf("r4 starts with %q, want no hint", r4.Reason)
	}
	waitRun(r4.ID, "a reason from the scheduler", worded)
	if got, _, err := ts.client.GetRun(ctx, r3.ID, api.Wait{}); err != nil || got.ModifyIndex != got.CreateIndex || got.Reason != r2.Reason {
		t.Fatalf("r3 after the next round: %+v, %v; want it unwritten", got, err)
	}
}
