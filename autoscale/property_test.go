package autoscale

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/amld/amld/api"
	"pgregory.net/rapid"
)

// genInput draws a cluster with nodes in every state, live runs on any of
// them (even on nodes that should not hold any) and a queue of runs of
// every shape.
func genInput(t *rapid.T) Input {
	minNodes := rapid.IntRange(0, 4).Draw(t, "min")
	tgt := cluster(minNodes, rapid.IntRange(max(minNodes, 1), 6).Draw(t, "max"))
	secs := rapid.IntRange(0, 300).Draw(t, "idleSeconds")
	tgt.IdleSecondsBeforeScaledown = &secs
	if rapid.IntRange(0, 5).Draw(t, "deleting") == 0 {
		tgt.ProvisioningState = api.ProvisioningDeleting
	}
	tgt.ProviderFailures = rapid.IntRange(0, 4).Draw(t, "failures")
	tgt.LastProviderFailure = t0.Add(-time.Duration(rapid.IntRange(0, 120).Draw(t, "failedAgo")) * time.Second)

	in := Input{Now: t0, Target: tgt, Size: cpu2}
	for i := range rapid.IntRange(0, 8).Draw(t, "nodes") {
		n := &api.Node{
			ID: fmt.Sprintf("n-%d", i), Target: "c", ProviderID: fmt.Sprintf("p-%d", i),
			State:     rapid.SampledFrom(api.NodeStates).Draw(t, "state"),
			Capacity:  whole,
			CreatedAt: t0.Add(-time.Duration(rapid.IntRange(0, 600).Draw(t, "createdAgo")) * time.Second),
		}
		if n.State == api.NodeIdle {
			n.IdleSince = t0.Add(-time.Duration(rapid.IntRange(0, 400).Draw(t, "idleAgo")) * time.Second)
		}
		in.Nodes = append(in.Nodes, n)
	}
	reqs := []api.Resources{oneCPU, whole, {CPUs: 3}}
	if len(in.Nodes) > 0 {
		for i := range rapid.IntRange(0, 4).Draw(t, "live") {
			var on []string
			for range rapid.IntRange(1, 2).Draw(t, "liveNodes") {
				on = append(on, rapid.SampledFrom(in.Nodes).Draw(t, "on").ID)
			}
			in.Runs = append(in.Runs, live(fmt.Sprintf("l-%d", i), rapid.SampledFrom(reqs[:2]).Draw(t, "liveReq"), on...))
		}
	}
	for i := range rapid.IntRange(0, 10).Draw(t, "queued") {
		r := queued(fmt.Sprintf("q-%d", i), uint64(rapid.IntRange(1, 20).Draw(t, "seq")),
			rapid.IntRange(1, 3).Draw(t, "nodeCount"), rapid.SampledFrom(reqs).Draw(t, "req"))
		r.Priority = rapid.IntRange(0, 2).Draw(t, "priority")
		in.Runs = append(in.Runs, r)
	}
	return in
}

func copyInput(in Input) Input {
	c := in
	c.Target = in.Target.Copy()
	c.Nodes, c.Runs = nil, nil
	for _, n := range in.Nodes {
		c.Nodes = append(c.Nodes, n.Copy())
	}
	for _, r := range in.Runs {
		c.Runs = append(c.Runs, r.Copy())
	}
	return c
}

func TestDecideKeepsItsPromises(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := genInput(t)
		before := copyInput(in)
		d := Decide(DefaultConfig(), in)
		tgt := in.Target

		if !reflect.DeepEqual(copyInput(in), before) {
			t.Fatal("Decide changed its input")
		}
		rev := copyInput(in)
		slices.Reverse(rev.Nodes)
		slices.Reverse(rev.Runs)
		if d2 := Decide(DefaultConfig(), rev); !reflect.DeepEqual(d, d2) {
			t.Fatalf("decision depends on input order:\n%+v\n%+v", d, d2)
		}

		work := map[string]bool{}
		for _, r := range in.Runs {
			if a := r.LiveAttempt(); a != nil {
				for _, al := range a.Allocations {
					work[al.NodeID] = true
				}
			}
		}
		byID := map[string]*api.Node{}
		have := 0
		for _, n := range in.Nodes {
			byID[n.ID] = n
			if n.Ready() || (n.State == api.NodePreparing && t0.Before(n.CreatedAt.Add(5*time.Minute))) {
				have++
			}
		}
		seen := map[string]bool{}
		kept := have
		for _, a := range d.Delete {
			n := byID[a.NodeID]
			switch {
			case n == nil:
				t.Fatalf("deleted unknown node %s", a.NodeID)
			case work[n.ID]:
				t.Fatalf("deleted node %s with live work", n.ID)
			case n.State == api.NodeLeaving:
				t.Fatalf("deleted leaving node %s again", n.ID)
			case seen[n.ID]:
				t.Fatalf("deleted node %s twice", n.ID)
			case a.ProviderID != n.ProviderID:
				t.Fatalf("delete of %s carries provider ID %q", n.ID, a.ProviderID)
			}
			seen[n.ID] = true
			if n.Ready() || (n.State == api.NodePreparing && !slices.ContainsFunc(d.MarkUnusable, func(m NodeAction) bool { return m.NodeID == n.ID })) {
				kept--
			}
			if n.State == api.NodeIdle && tgt.ProvisioningState != api.ProvisioningDeleting && have <= tgt.MaxNodes && t0.Before(n.IdleSince.Add(time.Duration(tgt.IdleSeconds())*time.Second)) {
				t.Fatalf("deleted node %s before idle_seconds_before_scaledown", n.ID)
			}
		}
		for _, m := range d.MarkUnusable {
			if n := byID[m.NodeID]; n.State != api.NodePreparing || t0.Before(n.CreatedAt.Add(5*time.Minute)) {
				t.Fatalf("marked %s (%s, created %v) unusable", n.ID, n.State, n.CreatedAt)
			}
		}
		if d.Create < 0 || (d.Create > 0 && have+d.Create > tgt.MaxNodes) {
			t.Fatalf("Create = %d with %d nodes, max_nodes=%d", d.Create, have, tgt.MaxNodes)
		}
		if !d.NextCheck.IsZero() && !d.NextCheck.After(t0) {
			t.Fatalf("NextCheck %v is not ahead of now", d.NextCheck)
		}
		if tgt.ProvisioningState == api.ProvisioningDeleting {
			if d.Create != 0 || d.TargetNodeCount != 0 {
				t.Fatalf("Deleting target: Create %d, TargetNodeCount %d", d.Create, d.TargetNodeCount)
			}
			return
		}
		if d.TargetNodeCount < tgt.MinNodes || d.TargetNodeCount > tgt.MaxNodes {
			t.Fatalf("TargetNodeCount %d outside [%d, %d]", d.TargetNodeCount, tgt.MinNodes, tgt.MaxNodes)
		}
		if kept < min(tgt.MinNodes, have) {
			t.Fatalf("scaled down to %d of %d nodes, below min_nodes=%d", kept, have, tgt.MinNodes)
		}
		if !d.BackoffUntil.IsZero() && d.Create != 0 {
			t.Fatalf("created %d while backing off until %v", d.Create, d.BackoffUntil)
		}
	})
}
