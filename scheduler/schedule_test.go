package scheduler

import (
	"reflect"
	"slices"
	"testing"

	"github.com/amld/amld/api"
)

const cc = "cpu-cluster"

func TestHigherPriorityPlacedBeforeEarlierSubmit(t *testing.T) {
	st := state([]*api.Target{cluster(cc, "cpu-2", 1)},
		[]*api.Node{node("n1", cc, "cpu-2", api.NodeIdle)},
		queued("early-low", cc, 0, 1, res(2, 4096, 0), 1),
		queued("late-high", cc, 5, 2, res(2, 4096, 0), 1))
	p := Schedule(st)
	if got := placedOn(p); !reflect.DeepEqual(got, map[string][]string{"late-high": {"n1"}}) {
		t.Fatalf("placed %v, want late-high on n1", got)
	}
	if _, ok := reasons(p)["early-low"]; !ok {
		t.Errorf("early-low waits without a reason: %v", p.Reasons)
	}
}

func TestSamePriorityPlacedInSubmitOrder(t *testing.T) {
	st := state([]*api.Target{cluster(cc, "cpu-2", 1)},
		[]*api.Node{node("n1", cc, "cpu-2", api.NodeIdle)},
		queued("a-second", cc, 1, 2, res(2, 4096, 0), 1),
		queued("b-first", cc, 1, 1, res(2, 4096, 0), 1))
	if got := placedOn(Schedule(st)); !reflect.DeepEqual(got, map[string][]string{"b-first": {"n1"}}) {
		t.Fatalf("placed %v, want b-first on n1", got)
	}
}

func TestGangGetsDistinctNodes(t *testing.T) {
	// One node has room for both ranks; a gang must still get two nodes.
	st := state([]*api.Target{cluster(cc, "cpu-4", 2)},
		[]*api.Node{node("n1", cc, "cpu-4", api.NodeIdle), node("n2", cc, "cpu-4", api.NodeIdle)},
		queued("gang", cc, 0, 1, res(1, 1024, 0), 2))
	got := placedOn(Schedule(st))["gang"]
	if !reflect.DeepEqual(got, []string{"n1", "n2"}) {
		t.Fatalf("gang placed on %v, want [n1 n2]", got)
	}
}

func TestGangThatDoesNotFitIsNotPartlyPlaced(t *testing.T) {
	st := state([]*api.Target{cluster(cc, "cpu-4", 4)},
		[]*api.Node{node("n1", cc, "cpu-4", api.NodeIdle), node("n2", cc, "cpu-4", api.NodeIdle)},
		queued("gang3", cc, 0, 1, res(1, 1024, 0), 3))
	p := Schedule(st)
	if len(p.Placements) != 0 {
		t.Fatalf("placements %v, want none", p.Placements)
	}
	want := "waiting for 3 nodes of cpu-4 with 1 cpu, 1024 MiB free each: only 2 nodes with room"
	if got := reasons(p)["gang3"]; got != want {
		t.Errorf("reason %q, want %q", got, want)
	}
}

func TestBlockedHeadReservesClosestNodeButBackfillUsesOthers(t *testing.T) {
	// n1 has 2 cpus free, n2 has 1: the head (3 cpus) reserves n1, the
	// closest to fitting it. A 1-cpu run may backfill n2, but the next one
	// must not take n1.
	st := state([]*api.Target{cluster(cc, "cpu-4", 2)},
		[]*api.Node{node("n1", cc, "cpu-4", api.NodeRunning), node("n2", cc, "cpu-4", api.NodeRunning)},
		running("old1", cc, 0, res(2, 1024, 0), 1, "n1"),
		running("old2", cc, 0, res(3, 1024, 0), 2, "n2"),
		queued("head", cc, 5, 1, res(3, 1024, 0), 1),
		queued("small1", cc, 0, 2, res(1, 1024, 0), 1),
		queued("small2", cc, 0, 3, res(1, 1024, 0), 1))
	p := Schedule(st)
	if got := placedOn(p); !reflect.DeepEqual(got, map[string][]string{"small1": {"n2"}}) {
		t.Fatalf("placed %v, want only small1 on n2", got)
	}
	r := reasons(p)
	if want := "waiting behind run head (higher in the queue), which holds the nodes it needs"; r["small2"] != want {
		t.Errorf("small2 reason %q, want %q", r["small2"], want)
	}
	if want := "waiting for a node of cpu-4 with 3 cpu, 1024 MiB free: cluster at max_nodes=2, 2 running"; r["head"] != want {
		t.Errorf("head reason %q, want %q", r["head"], want)
	}
}

func TestRunThatCanNeverFitDoesNotBlockTheQueue(t *testing.T) {
	st := state([]*api.Target{cluster(cc, "cpu-2", 2)},
		[]*api.Node{node("n1", cc, "cpu-2", api.NodeIdle)},
		queued("huge", cc, 9, 1, res(8, 4096, 0), 1),
		queued("wide", cc, 9, 2, res(1, 1024, 0), 3),
		queued("small", cc, 0, 3, res(1, 1024, 0), 1))
	p := Schedule(st)
	if got := placedOn(p); !reflect.DeepEqual(got, map[string][]string{"small": {"n1"}}) {
		t.Fatalf("placed %v, want small on n1", got)
	}
	r := reasons(p)
	if want := "can never run on cpu-cluster: asks for 8 cpu, 4096 MiB per node but a node of cpu-2 has 2 cpu, 4096 MiB"; r["huge"] != want {
		t.Errorf("huge: %q, want %q", r["huge"], want)
	}
	if want := "can never run on cpu-cluster: needs 3 nodes but cpu-cluster allows at most max_nodes=2"; r["wide"] != want {
		t.Errorf("wide: %q, want %q", r["wide"], want)
	}
}

func TestGPUsHandedOutByDistinctUUIDs(t *testing.T) {
	st := state([]*api.Target{cluster("gpu", "gpu-8", 1)},
		[]*api.Node{node("g1", "gpu", "gpu-8", api.NodeIdle)})
	for _, id := range []string{"r1", "r2", "r3", "r4", "r5"} {
		st.Runs = append(st.Runs, queued(id, "gpu", 0, uint64(len(st.Runs)+1), res(2, 1024, 2), 1))
	}
	p := Schedule(st)
	if len(p.Placements) != 4 {
		t.Fatalf("%d placements, want 4", len(p.Placements))
	}
	var uuids []string
	for _, pl := range p.Placements {
		if len(pl.Allocations[0].GPUUUIDs) != 2 {
			t.Fatalf("%s got GPUs %v, want 2", pl.RunID, pl.Allocations[0].GPUUUIDs)
		}
		uuids = append(uuids, pl.Allocations[0].GPUUUIDs...)
	}
	want := []string{"g1-g0", "g1-g1", "g1-g2", "g1-g3", "g1-g4", "g1-g5", "g1-g6", "g1-g7"}
	if !reflect.DeepEqual(uuids, want) {
		t.Errorf("GPUs handed out %v, want each once, lowest index first: %v", uuids, want)
	}
	if got, want := reasons(p)["r5"], "waiting for 2 GPUs: 8 of 8 GPUs on 1 node in use"; got != want {
		t.Errorf("r5 reason %q, want %q", got, want)
	}
}

func TestGPUsHeldByLiveAttemptAreNotHandedOut(t *testing.T) {
	old := running("old", "gpu", 0, res(1, 1024, 2), 1, "g1")
	old.Attempts[0].Allocations[0].GPUUUIDs = []string{"g1-g0", "g1-g2"}
	st := state([]*api.Target{cluster("gpu", "gpu-8", 1)},
		[]*api.Node{node("g1", "gpu", "gpu-8", api.NodeRunning)},
		old, queued("new", "gpu", 0, 1, res(1, 1024, 3), 1))
	p := Schedule(st)
	if len(p.Placements) != 1 {
		t.Fatalf("placements %v", p.Placements)
	}
	if got, want := p.Placements[0].Allocations[0].GPUUUIDs, []string{"g1-g1", "g1-g3", "g1-g4"}; !reflect.DeepEqual(got, want) {
		t.Errorf("GPUs %v, want %v", got, want)
	}
}

func TestLiveAttemptsUseCapacity(t *testing.T) {
	st := state([]*api.Target{cluster(cc, "cpu-4", 1)},
		[]*api.Node{node("n1", cc, "cpu-4", api.NodeRunning)},
		running("old", cc, 0, res(3, 1024, 0), 1, "n1"),
		queued("fits", cc, 0, 1, res(1, 1024, 0), 1),
		queued("no-room", cc, 0, 2, res(1, 1024, 0), 1))
	p := Schedule(st)
	if got := placedOn(p); !reflect.DeepEqual(got, map[string][]string{"fits": {"n1"}}) {
		t.Fatalf("placed %v, want only fits on n1", got)
	}
}

func TestWorkPacksOntoBusyNodesFirst(t *testing.T) {
	st := state([]*api.Target{cluster(cc, "cpu-4", 3)},
		[]*api.Node{node("a-idle", cc, "cpu-4", api.NodeIdle), node("z-busy", cc, "cpu-4", api.NodeRunning)},
		running("old", cc, 0, res(1, 1024, 0), 1, "z-busy"),
		queued("new", cc, 0, 1, res(1, 1024, 0), 1))
	if got := placedOn(Schedule(st))["new"]; !reflect.DeepEqual(got, []string{"z-busy"}) {
		t.Fatalf("placed on %v, want the busy node", got)
	}
}

func TestOnlyReadyNodesOfTheRunsTargetReceiveWork(t *testing.T) {
	st := state([]*api.Target{cluster(cc, "cpu-2", 5), cluster("other", "cpu-2", 1)},
		[]*api.Node{
			node("prep", cc, "cpu-2", api.NodePreparing),
			node("leaving", cc, "cpu-2", api.NodeLeaving),
			node("unusable", cc, "cpu-2", api.NodeUnusable),
			node("preempted", cc, "cpu-2", api.NodePreempted),
			node("elsewhere", "other", "cpu-2", api.NodeIdle),
		},
		queued("r", cc, 0, 1, res(1, 1024, 0), 1))
	p := Schedule(st)
	if len(p.Placements) != 0 {
		t.Fatalf("placed %v on a node that is not ready or not its target's", p.Placements)
	}
	if got, want := reasons(p)["r"], "waiting for a node of cpu-2 with 1 cpu, 1024 MiB free: 1 node preparing"; got != want {
		t.Errorf("reason %q, want %q", got, want)
	}
}

func TestDeletingTargetGetsNoPlacements(t *testing.T) {
	c := cluster(cc, "cpu-2", 1)
	c.ProvisioningState = api.ProvisioningDeleting
	st := state([]*api.Target{c}, []*api.Node{node("n1", cc, "cpu-2", api.NodeIdle)},
		queued("r", cc, 0, 1, res(1, 1024, 0), 1))
	p := Schedule(st)
	if len(p.Placements) != 0 {
		t.Fatalf("placed %v on a deleting target", p.Placements)
	}
	if got, want := reasons(p)["r"], "target cpu-cluster is being deleted"; got != want {
		t.Errorf("reason %q, want %q", got, want)
	}
}

func TestWaitReasons(t *testing.T) {
	cpu2 := res(2, 4096, 0)
	for _, tc := range []struct {
		name   string
		target *api.Target
		nodes  []*api.Node
		runs   []*api.Run
		want   string
	}{
		{
			name:   "empty cluster",
			target: cluster(cc, "cpu-2", 4),
			runs:   []*api.Run{queued("r", cc, 0, 1, cpu2, 1)},
			want:   "waiting for 1 node of cpu-2: cpu-cluster has no nodes yet",
		},
		{
			name:   "at max_nodes",
			target: cluster(cc, "cpu-2", 4),
			nodes: []*api.Node{node("n1", cc, "cpu-2", api.NodeRunning), node("n2", cc, "cpu-2", api.NodeRunning),
				node("n3", cc, "cpu-2", api.NodeRunning), node("n4", cc, "cpu-2", api.NodeRunning)},
			runs: []*api.Run{
				running("o1", cc, 0, cpu2, 1, "n1"), running("o2", cc, 0, cpu2, 1, "n2"),
				running("o3", cc, 0, cpu2, 1, "n3"), running("o4", cc, 0, cpu2, 1, "n4"),
				queued("r", cc, 0, 1, cpu2, 2)},
			want: "waiting for 2 nodes of cpu-2: cluster at max_nodes=4, 4 running",
		},
		{
			name:   "nodes preparing",
			target: cluster(cc, "cpu-4", 4),
			nodes:  []*api.Node{node("n1", cc, "cpu-4", api.NodePreparing), node("n2", cc, "cpu-4", api.NodePreparing)},
			runs:   []*api.Run{queued("r", cc, 0, 1, sizes["cpu-4"].Resources(), 1)},
			want:   "waiting for 1 node of cpu-4: 2 nodes preparing",
		},
		{
			name:   "nodes busy below max_nodes",
			target: cluster(cc, "cpu-2", 10),
			nodes: []*api.Node{node("n1", cc, "cpu-2", api.NodeRunning), node("n2", cc, "cpu-2", api.NodeRunning),
				node("n3", cc, "cpu-2", api.NodeRunning)},
			runs: []*api.Run{
				running("o1", cc, 0, res(1, 1024, 0), 1, "n1", "n2", "n3"),
				queued("r", cc, 0, 1, cpu2, 1)},
			want: "waiting for a node of cpu-2 with 2 cpu, 4096 MiB free: 3 nodes busy",
		},
		{
			name:   "target does not exist",
			target: cluster(cc, "cpu-2", 1),
			runs:   []*api.Run{queued("r", "gone", 0, 1, cpu2, 1)},
			want:   "target gone does not exist",
		},
		{
			name:   "previous attempt still live",
			target: cluster(cc, "cpu-2", 1),
			nodes:  []*api.Node{node("n1", cc, "cpu-2", api.NodeRunning)},
			runs: []*api.Run{func() *api.Run {
				r := running("r", cc, 0, cpu2, 1, "n1")
				r.State = api.RunQueued
				return r
			}()},
			want: "waiting for its attempt 1 to stop",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Schedule(state([]*api.Target{tc.target}, tc.nodes, tc.runs...))
			if len(p.Placements) != 0 {
				t.Fatalf("placements %v, want none", p.Placements)
			}
			if got := reasons(p)["r"]; got != tc.want {
				t.Errorf("reason\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestUnchangedReasonIsNotEmittedAgain(t *testing.T) {
	r := queued("r", cc, 0, 1, res(2, 4096, 0), 1)
	st := state([]*api.Target{cluster(cc, "cpu-2", 4)}, nil, r)
	p := Schedule(st)
	if len(p.Reasons) != 1 {
		t.Fatalf("first round reasons %v, want one", p.Reasons)
	}
	r.Reason = p.Reasons[0].Reason
	if p2 := Schedule(st); !p2.Empty() {
		t.Errorf("second round with nothing new gave %+v, want an empty plan", p2)
	}
}

func TestScheduleIsDeterministicWhateverTheInputOrder(t *testing.T) {
	st := state([]*api.Target{cluster(cc, "cpu-4", 5), cluster("b", "cpu-2", 2)},
		[]*api.Node{node("n3", cc, "cpu-4", api.NodeIdle), node("n1", cc, "cpu-4", api.NodeIdle),
			node("n2", cc, "cpu-4", api.NodeIdle), node("b1", "b", "cpu-2", api.NodeIdle)},
		queued("r1", cc, 0, 3, res(3, 1024, 0), 2), queued("r2", cc, 1, 2, res(2, 1024, 0), 1),
		queued("r3", cc, 1, 1, res(4, 1024, 0), 2), queued("r4", "b", 0, 4, res(1, 1024, 0), 1),
		queued("r5", "b", 0, 5, res(2, 1024, 0), 1))
	want := Schedule(st)
	slices.Reverse(st.Nodes)
	slices.Reverse(st.Runs)
	if got := Schedule(st); !reflect.DeepEqual(got, want) {
		t.Errorf("reversed input gave\n%+v\nwant\n%+v", got, want)
	}
}
