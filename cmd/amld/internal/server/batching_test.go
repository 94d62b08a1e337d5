package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/nodes"
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

// TestRoundsBetweenFullOnesSeeTheHeadOfEachQueue: the rounds run on
// changes see the first SchedulerQueueDepth runs of each queue, in queue
// order, and every run holding a node; full rounds see every queued run,
// and word the reason of each, however deep.
func TestRoundsBetweenFullOnesSeeTheHeadOfEachQueue(t *testing.T) {
	ts := startTestServer(t, func(c *Config) { c.SchedulerQueueDepth = 2 })
	ts.prov.failErr = fmt.Errorf("no machines in this test")
	ctx := context.Background()
	if _, err := ts.client.CreateTarget(ctx, api.TargetSpec{Name: "deep", VMSize: "cpu-2", MaxNodes: 1}); err != nil {
		t.Fatal(err)
	}
	// Five runs that ask five different things (no hints), the last two
	// of a higher priority.
	var ids []string
	for i := range 5 {
		prio := 0
		if i >= 3 {
			prio = 1
		}
		r, err := ts.client.SubmitRun(ctx, api.RunSpec{Target: "deep", Command: []string{"true"}, Priority: prio,
			Resources: &api.Resources{CPUs: 1, MemoryMB: int64(64 * (i + 1))}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	st := ts.srv.store.State()
	if got, want := runIDs(ts.srv.schedState(st, false).Runs), ids[3:5]; !slices.Equal(got, want) {
		t.Fatalf("a round between full ones sees %v, want the two of priority 1 %v", got, want)
	}
	if got := runIDs(ts.srv.schedState(st, true).Runs); len(got) != 5 {
		t.Fatalf("a full round sees %v, want all five", got)
	}
	for _, id := range ids {
		waitState(t, ts, "a reason for "+id, func(st *raftstore.State) bool {
			r := st.Run(id)
			return r.Reason != "" && r.Reason != "waiting for the scheduler"
		})
	}
}

func runIDs(runs []*api.Run) []string {
	var ids []string
	for _, r := range runs {
		ids = append(ids, r.ID)
	}
	return ids
}

func TestSchedulerQueueDepthMustBePositive(t *testing.T) {
	for _, depth := range []int{0, -1, 1_000_001} {
		cfg := DefaultConfig()
		cfg.SchedulerQueueDepth = depth
		cfg.DataDir, cfg.Providers, cfg.DefaultProvider = "/tmp/x", map[string]nodes.Provider{"local": &fakeProvider{}}, "local"
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "scheduler queue depth") {
			t.Errorf("Validate with depth %d: %v", depth, err)
		}
	}
}
