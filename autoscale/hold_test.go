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

// changeRuns changes in the ways runs change between two rounds, in place:
// runs queue, are canceled, end, and ready nodes go between idle and
// running.
func changeRuns(t *rapid.T, in *Input) {
	for i := range rapid.IntRange(1, 6).Draw(t, "changes") {
		switch rapid.IntRange(0, 3).Draw(t, "change") {
		case 0: // a run is submitted
			r := queued(fmt.Sprintf("new-%d", i), uint64(rapid.IntRange(1, 30).Draw(t, "newSeq")),
				rapid.IntRange(1, 3).Draw(t, "newNodeCount"), rapid.SampledFrom([]api.Resources{oneCPU, whole, {CPUs: 3}}).Draw(t, "newReq"))
			r.Priority = rapid.IntRange(0, 2).Draw(t, "newPriority")
			in.Runs = append(in.Runs, r)
		case 1, 2: // a queued run is canceled, or a live one ends
			if len(in.Runs) > 0 {
				k := rapid.IntRange(0, len(in.Runs)-1).Draw(t, "drop")
				in.Runs = slices.Delete(in.Runs, k, k+1)
			}
		case 3: // a ready node goes between idle and running
			var ready []*api.Node
			for _, n := range in.Nodes {
				if n.Ready() {
					ready = append(ready, n)
				}
			}
			if len(ready) == 0 {
				continue
			}
			n := rapid.SampledFrom(ready).Draw(t, "flip")
			if n.State == api.NodeIdle {
				n.State, n.IdleSince = api.NodeRunning, time.Time{}
			} else {
				n.State, n.IdleSince = api.NodeIdle, in.Now.Add(-time.Second)
			}
			n.StateChangedAt = in.Now
		}
	}
}

// TestSaturatedDecisionHolds: while a cluster stays saturated, changes of
// its runs change nothing of the decision but Needed, Reason and the count
// of nodes idle and running, and the decision holds for the changed input.
func TestSaturatedDecisionHolds(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := genInput(t)
		d := Decide(DefaultConfig(), in)
		if !d.Saturated {
			// Discards this example only: rapid draws until it has its
			// count of saturated ones, and fails the test when it cannot.
			t.Skip("not saturated")
		}

		next := copyInput(in)
		next.Now = in.Now.Add(time.Duration(rapid.IntRange(0, 999).Draw(t, "afterMs")) * time.Millisecond)
		changeRuns(t, &next)
		if d.NextCheck.IsZero() || next.Now.Before(d.NextCheck) {
			if !d.Holds(in, next) {
				t.Fatal("a saturated decision does not hold when only the runs changed")
			}
		}
		next.Now = in.Now
		d2 := Decide(DefaultConfig(), next)
		if !d2.Saturated {
			return // seen within HoldFor
		}
		for _, d := range []*Decision{&d, &d2} {
			d.Needed, d.Reason = 0, ""
			d.Counts.Idle, d.Counts.Running = 0, 0 // nodes going between idle and running
		}
		if !reflect.DeepEqual(d, d2) {
			t.Fatalf("runs changed a saturated decision:\n%+v\n%+v", d, d2)
		}
	})
}

func TestHoldsEnds(t *testing.T) {
	in := Input{Now: t0, Target: cluster(0, 1), Size: cpu2, Nodes: []*api.Node{runningNode("n-1")}, Runs: burst(3)}
	in.Runs = append(in.Runs, live("l", whole, "n-1"))
	d := Decide(DefaultConfig(), in)
	if !d.Saturated || d.TargetNodeCount != 1 || d.Create != 0 {
		t.Fatalf("decision %+v: want saturated at max_nodes 1", d)
	}
	later := func(f func(*Input)) Input {
		c := copyInput(in)
		c.Now = t0.Add(100 * time.Millisecond)
		f(&c)
		return c
	}
	if !d.Holds(in, later(func(*Input) {})) {
		t.Fatal("does not hold 100 ms later with nothing changed")
	}
	for name, next := range map[string]Input{
		"after HoldFor":    later(func(c *Input) { c.Now = t0.Add(HoldFor) }),
		"clock went back":  later(func(c *Input) { c.Now = t0.Add(-time.Millisecond) }),
		"max_nodes raised": later(func(c *Input) { c.Target.MaxNodes = 2 }),
		"idle seconds":     later(func(c *Input) { s := 5; c.Target.IdleSecondsBeforeScaledown = &s }),
		"provider failure": later(func(c *Input) { c.Target.ProviderFailures = 1 }),
		"new node":         later(func(c *Input) { c.Nodes = append(c.Nodes, preparingNode("n-2", c.Now)) }),
		"node unusable":    later(func(c *Input) { c.Nodes[0].State = api.NodeUnusable }),
		"node gone":        later(func(c *Input) { c.Nodes = nil }),
		"other vm_size":    later(func(c *Input) { c.Size.CPUs = 4 }),
	} {
		if d.Holds(in, next) {
			t.Errorf("%s: the decision still holds", name)
		}
	}
	unsat := copyInput(in)
	unsat.Runs = unsat.Runs[3:]
	if d := Decide(DefaultConfig(), unsat); d.Saturated || d.Holds(unsat, unsat) {
		t.Errorf("a cluster whose queue fits is saturated: %+v", d)
	}
}
