package server

import (
	"testing"
	"time"

	"github.com/amld/amld/raftstore"
)

func TestBatchingOnlyWhenEveryHeadAppliesBatches(t *testing.T) {
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
		want    bool
	}{
		{"all heads new", m("h1", "h2", "h3"), []*raftstore.Head{h("h1", now), h("h2", now), h("h3", now)}, true},
		{"one head of an older build", m("h1", "h2", "h3"), []*raftstore.Head{h("h1", now), h("h2", 0), h("h3", now)}, false},
		{"a member not in the heads table yet", m("h1", "h2"), []*raftstore.Head{h("h1", now)}, false},
		{"a removed head still in the table", m("h1"), []*raftstore.Head{h("h1", now), h("h9", 0)}, true},
		{"no configuration", nil, []*raftstore.Head{h("h1", now)}, false},
	} {
		if got := batchingSupported(c.members, c.heads); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
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
