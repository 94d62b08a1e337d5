package scheduler

import (
	"reflect"
	"testing"

	"github.com/amld/amld/api"
)

func requeueCluster(maxNodes int) *api.Target {
	c := cluster(cc, "cpu-4", maxNodes)
	c.Preemption = api.PreemptionRequeue
	return c
}

func twoBusyNodes() []*api.Node {
	return []*api.Node{node("n1", cc, "cpu-4", api.NodeRunning), node("n2", cc, "cpu-4", api.NodeRunning)}
}

func TestPreemptionRequeuesLowestPriorityRun(t *testing.T) {
	whole := res(4, 1024, 0)
	st := state([]*api.Target{requeueCluster(2)}, twoBusyNodes(),
		running("low", cc, 0, whole, 1, "n1"),
		running("mid", cc, 1, whole, 2, "n2"),
		queued("urgent", cc, 5, 9, whole, 1))
	p := Schedule(st)
	if want := []Preemption{{RunID: "low", By: "urgent"}}; !reflect.DeepEqual(p.Preemptions, want) {
		t.Fatalf("preemptions %v, want %v", p.Preemptions, want)
	}
	if len(p.Placements) != 0 {
		t.Errorf("placed %v; the head waits for its victims' nodes to free up", p.Placements)
	}
	if got, want := reasons(p)["urgent"], "waiting for 1 run of lower priority to be preempted: low"; got != want {
		t.Errorf("reason %q, want %q", got, want)
	}
}

func TestPreemptionAmongEqualPriorityTakesMostRecentlyPlaced(t *testing.T) {
	whole := res(4, 1024, 0)
	st := state([]*api.Target{requeueCluster(2)}, twoBusyNodes(),
		running("older", cc, 0, whole, 1, "n1"),
		running("newer", cc, 0, whole, 2, "n2"),
		queued("urgent", cc, 5, 9, whole, 1))
	want := []Preemption{{RunID: "newer", By: "urgent"}}
	if got := Schedule(st).Preemptions; !reflect.DeepEqual(got, want) {
		t.Fatalf("preemptions %v, want %v", got, want)
	}
}

func TestPreemptionNeverTakesMoreThanNeeded(t *testing.T) {
	// urgent needs 4 cpus on one node. In candidate order: a (n1), b (n2),
	// c (n1). Taking a and b does not make room; c does, and then b turns
	// out unneeded and is spared.
	half := res(2, 1024, 0)
	st := state([]*api.Target{requeueCluster(2)}, twoBusyNodes(),
		running("a", cc, 0, half, 3, "n1"),
		running("b", cc, 0, half, 2, "n2"),
		running("c", cc, 1, half, 1, "n1"),
		running("d", cc, 3, half, 1, "n2"),
		queued("urgent", cc, 5, 9, res(4, 1024, 0), 1))
	want := []Preemption{{RunID: "a", By: "urgent"}, {RunID: "c", By: "urgent"}}
	if got := Schedule(st).Preemptions; !reflect.DeepEqual(got, want) {
		t.Fatalf("preemptions %v, want %v", got, want)
	}
}

func TestPreemptionMakesRoomForAGang(t *testing.T) {
	half := res(2, 1024, 0)
	st := state([]*api.Target{requeueCluster(2)}, twoBusyNodes(),
		running("x", cc, 0, half, 1, "n1", "n2"),
		running("y", cc, 1, half, 2, "n1", "n2"),
		queued("gang", cc, 5, 9, res(3, 1024, 0), 2))
	want := []Preemption{{RunID: "x", By: "gang"}, {RunID: "y", By: "gang"}}
	if got := Schedule(st).Preemptions; !reflect.DeepEqual(got, want) {
		t.Fatalf("preemptions %v, want %v", got, want)
	}
}

func TestNoPreemption(t *testing.T) {
	whole := res(4, 1024, 0)
	for _, tc := range []struct {
		name   string
		target *api.Target
		nodes  []*api.Node
		runs   []*api.Run
	}{
		{
			name:   "target preemption is none",
			target: cluster(cc, "cpu-4", 2),
			nodes:  twoBusyNodes(),
			runs:   []*api.Run{running("low", cc, 0, whole, 1, "n1"), running("low2", cc, 0, whole, 1, "n2")},
		},
		{
			name:   "target below max_nodes",
			target: requeueCluster(3),
			nodes:  twoBusyNodes(),
			runs:   []*api.Run{running("low", cc, 0, whole, 1, "n1"), running("low2", cc, 0, whole, 1, "n2")},
		},
		{
			name:   "running runs of equal priority",
			target: requeueCluster(2),
			nodes:  twoBusyNodes(),
			runs:   []*api.Run{running("same", cc, 5, whole, 1, "n1"), running("same2", cc, 5, whole, 1, "n2")},
		},
		{
			name:   "room is already being freed",
			target: requeueCluster(2),
			nodes:  twoBusyNodes(),
			runs: []*api.Run{func() *api.Run {
				r := running("stopping", cc, 0, whole, 1, "n1")
				r.State = api.RunCancelRequested
				return r
			}(), running("low2", cc, 0, whole, 1, "n2")},
		},
		{
			name:   "a node preparing would do",
			target: requeueCluster(3),
			nodes:  append(twoBusyNodes(), node("n3", cc, "cpu-4", api.NodePreparing)),
			runs:   []*api.Run{running("low", cc, 0, whole, 1, "n1"), running("low2", cc, 0, whole, 1, "n2")},
		},
		{
			name:   "evicting everything would not be enough",
			target: requeueCluster(2),
			nodes:  twoBusyNodes(),
			runs: []*api.Run{running("low", cc, 0, whole, 1, "n1"), running("high", cc, 9, whole, 1, "n2"),
				queued("gang2", cc, 5, 1, whole, 2)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runs := append(tc.runs, queued("urgent", cc, 5, 9, whole, 1))
			p := Schedule(state([]*api.Target{tc.target}, tc.nodes, runs...))
			if len(p.Preemptions) != 0 {
				t.Errorf("preemptions %v, want none", p.Preemptions)
			}
		})
	}
}

func TestNoPreemptionForARunThatCanNeverFit(t *testing.T) {
	st := state([]*api.Target{requeueCluster(2)}, twoBusyNodes(),
		running("low", cc, 0, res(4, 1024, 0), 1, "n1"),
		running("low2", cc, 0, res(4, 1024, 0), 1, "n2"),
		queued("huge", cc, 5, 9, res(8, 1024, 0), 1),
		queued("wide", cc, 5, 9, res(1, 1024, 0), 3))
	if got := Schedule(st).Preemptions; len(got) != 0 {
		t.Fatalf("preemptions %v, want none", got)
	}
}

func TestPreemptedRoomIsReservedForTheHead(t *testing.T) {
	// Freeing "low" gives n1 to urgent; the 1-cpu run behind it must not
	// take n1's room this round.
	st := state([]*api.Target{requeueCluster(2)}, twoBusyNodes(),
		running("low", cc, 0, res(3, 1024, 0), 1, "n1"),
		running("high", cc, 9, res(4, 1024, 0), 1, "n2"),
		queued("urgent", cc, 5, 1, res(4, 1024, 0), 1),
		queued("small", cc, 0, 2, res(1, 1024, 0), 1))
	p := Schedule(st)
	if len(p.Preemptions) != 1 || len(p.Placements) != 0 {
		t.Fatalf("preemptions %v placements %v, want low preempted and nothing placed", p.Preemptions, p.Placements)
	}
}
