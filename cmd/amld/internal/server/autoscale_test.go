package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// TestSaturatedClusterFollowsItsQueueAndSettings: a cluster whose backlog
// needs more than max_nodes keeps its scale decision while only runs
// arrive (autoscale.Decision.Holds), yet its reason catches up with the
// queue within a second or so, and raising max_nodes creates nodes at
// once.
func TestSaturatedClusterFollowsItsQueueAndSettings(t *testing.T) {
	ts := startTestServer(t)
	ctx := context.Background()
	if _, err := ts.client.CreateTarget(ctx, api.TargetSpec{Name: "sat", VMSize: "cpu-2", MaxNodes: 1}); err != nil {
		t.Fatal(err)
	}
	submit := func(n int) {
		t.Helper()
		for range n {
			if _, err := ts.client.SubmitRun(ctx, api.RunSpec{Target: "sat", Command: []string{"true"}, Resources: &api.Resources{CPUs: 2}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	created := func() int {
		ts.prov.mu.Lock()
		defer ts.prov.mu.Unlock()
		return len(ts.prov.created)
	}
	waitFor := func(what string, ok func(*api.Target) bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			tg, err := ts.client.GetTarget(ctx, "sat")
			if err != nil {
				t.Fatal(err)
			}
			if ok(tg) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: target %+v, %d nodes created", what, tg, created())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	submit(5)
	waitFor("5 runs at max_nodes 1", func(tg *api.Target) bool {
		return strings.HasPrefix(tg.ScaleReason, "at max_nodes=1: 5 runs waiting need 4 more nodes") && created() == 1
	})
	submit(3)
	waitFor("the reason counting 8 runs", func(tg *api.Target) bool {
		return strings.HasPrefix(tg.ScaleReason, "at max_nodes=1: 8 runs waiting need 7 more nodes")
	})
	three := 3
	if _, err := ts.client.UpdateTarget(ctx, "sat", api.TargetUpdate{MaxNodes: &three}); err != nil {
		t.Fatal(err)
	}
	waitFor("two more nodes after max_nodes 3", func(tg *api.Target) bool {
		return tg.TargetNodeCount == 3 && created() == 3
	})
	if n := created(); n != 3 {
		t.Fatalf("%d nodes created, want 3", n)
	}
}
