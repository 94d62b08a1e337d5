package autoscale

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

func decide(t *testing.T, in Input) Decision {
	t.Helper()
	if in.Size.Name == "" {
		in.Size = cpu2
	}
	if in.Now.IsZero() {
		in.Now = t0
	}
	d := Decide(DefaultConfig(), in)
	t.Logf("decision: %+v", d)
	return d
}

func wantReason(t *testing.T, d Decision, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(d.Reason, p) {
			t.Errorf("Reason %q lacks %q", d.Reason, p)
		}
	}
}

func TestScaleUp(t *testing.T) {
	tests := []struct {
		name                    string
		target                  *api.Target
		nodes                   []*api.Node
		runs                    []*api.Run
		create, nodeCount, need int
		reason                  string
	}{
		{
			name: "burst of 20 whole-node runs creates max_nodes, not 20", target: cluster(0, 3),
			runs: burst(20), create: 3, nodeCount: 3, need: 20,
			reason: "20 runs waiting need 20 more nodes of cpu-2: creating 3 (capped at max_nodes=3)",
		},
		{
			name: "gang of 2 on an empty cluster creates 2", target: cluster(0, 4),
			runs: []*api.Run{queued("g", 1, 2, whole)}, create: 2, nodeCount: 2, need: 2,
			reason: "1 run waiting needs 2 more nodes of cpu-2",
		},
		{
			name: "runs that fit on idle nodes create nothing", target: cluster(0, 4),
			nodes: []*api.Node{idleNode("n-1", t0), idleNode("n-2", t0)},
			runs:  burst(2), create: 0, nodeCount: 2, need: 2,
		},
		{
			name: "runs that fit on preparing nodes create nothing", target: cluster(0, 4),
			nodes: []*api.Node{preparingNode("n-1", t0)},
			runs:  burst(1), create: 0, nodeCount: 1, need: 1,
		},
		{
			name: "a waiting run fits the free room of a busy node", target: cluster(0, 4),
			nodes: []*api.Node{runningNode("n-1")},
			runs:  []*api.Run{live("a", oneCPU, "n-1"), queued("b", 2, 1, oneCPU)}, create: 0, nodeCount: 1, need: 1,
		},
		{
			name: "two half-node runs share one new node", target: cluster(0, 4),
			runs: []*api.Run{queued("a", 1, 1, oneCPU), queued("b", 2, 1, oneCPU)}, create: 1, nodeCount: 1, need: 1,
		},
		{
			name: "busy nodes count as needed", target: cluster(0, 4),
			nodes: []*api.Node{runningNode("n-1"), runningNode("n-2")},
			runs:  []*api.Run{live("a", whole, "n-1", "n-2"), queued("b", 2, 1, whole)}, create: 1, nodeCount: 3, need: 3,
		},
		{
			name: "runs that fit no node of the size are ignored", target: cluster(0, 3),
			runs:   []*api.Run{queued("big", 1, 1, api.Resources{CPUs: 4}), queued("gang", 2, 4, oneCPU)},
			reason: "2 waiting runs ignored: larger than a node of cpu-2 or than max_nodes=3",
		},
		{
			name: "min_nodes are kept up with no work", target: cluster(2, 4),
			create: 2, nodeCount: 2, need: 0, reason: "min_nodes=2: creating 2 more nodes of cpu-2",
		},
		{
			name: "at max_nodes nothing is created", target: cluster(0, 2),
			nodes:  []*api.Node{runningNode("n-1"), runningNode("n-2")},
			runs:   []*api.Run{live("a", whole, "n-1"), live("b", whole, "n-2"), queued("c", 3, 1, whole)},
			create: 0, nodeCount: 2, need: 3, reason: "at max_nodes=2: 1 run waiting needs 1 more node of cpu-2",
		},
		{
			name: "leaving nodes are neither capacity nor demand", target: cluster(0, 4),
			nodes: []*api.Node{nodeIn("n-1", api.NodeLeaving)},
			runs:  burst(1), create: 1, nodeCount: 1, need: 1,
		},
		{
			name: "nodes of other targets are ignored", target: cluster(0, 4),
			nodes: []*api.Node{{ID: "x", Target: "other", State: api.NodeIdle, Capacity: whole}},
			runs:  burst(1), create: 1, nodeCount: 1, need: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decide(t, Input{Target: tt.target, Nodes: tt.nodes, Runs: tt.runs})
			if d.Create != tt.create || d.TargetNodeCount != tt.nodeCount || d.Needed != tt.need {
				t.Fatalf("Create, TargetNodeCount, Needed = %d, %d, %d; want %d, %d, %d",
					d.Create, d.TargetNodeCount, d.Needed, tt.create, tt.nodeCount, tt.need)
			}
			if len(d.Delete) != 0 {
				t.Fatalf("Delete = %v, want none", d.Delete)
			}
			wantReason(t, d, tt.reason)
		})
	}
}

func TestIdleScaleDown(t *testing.T) {
	const idle = 120 * time.Second
	tests := []struct {
		name      string
		target    *api.Target
		nodes     []*api.Node
		runs      []*api.Run
		deleted   []string
		nextCheck time.Time
		reason    string
	}{
		{
			name: "idle just short of idle_seconds is kept", target: cluster(0, 4),
			nodes:     []*api.Node{idleNode("n-1", t0.Add(-idle+time.Second))},
			nextCheck: t0.Add(time.Second),
		},
		{
			name: "idle for idle_seconds is deleted", target: cluster(0, 4),
			nodes:   []*api.Node{idleNode("n-3", t0.Add(-idle))},
			deleted: []string{"n-3"},
			reason:  "scale down: node n-3 idle 120s (idle_seconds_before_scaledown=120)",
		},
		{
			name: "never below min_nodes", target: cluster(2, 4),
			nodes:   []*api.Node{idleNode("n-1", t0.Add(-time.Hour)), idleNode("n-2", t0.Add(-2*time.Hour)), idleNode("n-3", t0.Add(-3*time.Hour))},
			deleted: []string{"n-3"},
		},
		{
			name: "at min_nodes nothing is deleted and nothing is awaited", target: cluster(2, 4),
			nodes: []*api.Node{idleNode("n-1", t0.Add(-time.Hour)), idleNode("n-2", t0.Add(-time.Second))},
		},
		{
			name: "longest idle goes first", target: cluster(1, 4),
			nodes:   []*api.Node{idleNode("n-1", t0.Add(-3*time.Minute)), idleNode("n-2", t0.Add(-10*time.Minute)), idleNode("n-3", t0.Add(-5*time.Minute))},
			deleted: []string{"n-2", "n-3"},
			reason:  "scale down: nodes n-2, n-3 idle past idle_seconds_before_scaledown=120",
		},
		{
			name: "busy nodes are never deleted, even above min_nodes", target: cluster(0, 4),
			nodes: []*api.Node{runningNode("n-1"), idleNode("n-2", t0.Add(-time.Hour))},
			// n-2 says idle but the scheduler just placed work on it.
			runs: []*api.Run{live("a", whole, "n-1"), live("b", oneCPU, "n-2")},
		},
		{
			name: "an idle node a waiting run would use is kept", target: cluster(0, 4),
			nodes:   []*api.Node{idleNode("n-1", t0.Add(-time.Hour)), idleNode("n-2", t0.Add(-2*time.Hour))},
			runs:    []*api.Run{queued("a", 1, 1, whole)},
			deleted: []string{"n-2"},
		},
		{
			name: "custom idle_seconds", target: withIdle(cluster(0, 4), 30),
			nodes:     []*api.Node{idleNode("n-1", t0.Add(-30*time.Second)), idleNode("n-2", t0.Add(-10*time.Second))},
			deleted:   []string{"n-1"},
			nextCheck: t0.Add(20 * time.Second),
		},
		{
			name: "lowered max_nodes trims idle nodes at once", target: cluster(0, 1),
			nodes:     []*api.Node{idleNode("n-1", t0.Add(-time.Second)), idleNode("n-2", t0.Add(-2*time.Second))},
			deleted:   []string{"n-2"},
			nextCheck: t0.Add(idle - time.Second), // n-1 may then go too: min_nodes=0
			reason:    "scale down to max_nodes=1: deleting node n-2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decide(t, Input{Target: tt.target, Nodes: tt.nodes, Runs: tt.runs})
			if got := deletedIDs(d); !slices.Equal(got, tt.deleted) {
				t.Fatalf("deleted %v, want %v", got, tt.deleted)
			}
			if d.Create != 0 {
				t.Fatalf("Create = %d, want 0", d.Create)
			}
			if !d.NextCheck.Equal(tt.nextCheck) {
				t.Fatalf("NextCheck = %v, want %v", d.NextCheck, tt.nextCheck)
			}
			wantReason(t, d, tt.reason)
		})
	}
}

func withIdle(t *api.Target, secs int) *api.Target {
	t.IdleSecondsBeforeScaledown = &secs
	return t
}

func TestLongestIdleDeletedFirstInDeleteOrder(t *testing.T) {
	nodes := []*api.Node{idleNode("a", t0.Add(-5*time.Minute)), idleNode("b", t0.Add(-9*time.Minute)), idleNode("c", t0.Add(-7*time.Minute))}
	d := decide(t, Input{Target: cluster(0, 4), Nodes: nodes})
	if got := actionIDs(d.Delete); !slices.Equal(got, []string{"b", "c", "a"}) {
		t.Fatalf("Delete order %v, want b, c, a", got)
	}
}

func TestProvisioningDeadlineMarksUnusableAndReplaces(t *testing.T) {
	tgt := cluster(0, 4)
	nodes := []*api.Node{preparingNode("n-1", t0)}
	runs := burst(1)

	d := decide(t, Input{Now: t0.Add(5*time.Minute - time.Second), Target: tgt, Nodes: nodes, Runs: runs})
	if d.Create != 0 || len(d.MarkUnusable) != 0 || len(d.Delete) != 0 {
		t.Fatalf("before the deadline: %+v", d)
	}
	if want := t0.Add(5 * time.Minute); !d.NextCheck.Equal(want) {
		t.Fatalf("NextCheck = %v, want the deadline %v", d.NextCheck, want)
	}

	d = decide(t, Input{Now: t0.Add(5 * time.Minute), Target: tgt, Nodes: nodes, Runs: runs})
	if got := actionIDs(d.MarkUnusable); !slices.Equal(got, []string{"n-1"}) {
		t.Fatalf("MarkUnusable = %v, want n-1", got)
	}
	if !strings.Contains(d.MarkUnusable[0].Reason, "provisioning deadline 12:05:00 UTC") {
		t.Fatalf("MarkUnusable reason %q does not name the deadline", d.MarkUnusable[0].Reason)
	}
	if got := deletedIDs(d); !slices.Equal(got, []string{"n-1"}) || d.Delete[0].ProviderID != "p-n-1" {
		t.Fatalf("Delete = %+v, want n-1 with its provider ID", d.Delete)
	}
	if d.Create != 1 {
		t.Fatalf("Create = %d, want a replacement", d.Create)
	}
	wantReason(t, d, "node n-1 missed the provisioning deadline")
}

func TestUnusableAndPreemptedNodesAreDeletedAndReplaced(t *testing.T) {
	nodes := []*api.Node{nodeIn("u", api.NodeUnusable), nodeIn("p", api.NodePreempted), runningNode("r")}
	runs := []*api.Run{live("keep", whole, "r"), queued("a", 1, 1, whole), queued("b", 2, 1, whole)}
	d := decide(t, Input{Target: cluster(0, 4), Nodes: nodes, Runs: runs})
	if got := deletedIDs(d); !slices.Equal(got, []string{"p", "u"}) {
		t.Fatalf("deleted %v, want p and u", got)
	}
	if d.Create != 2 || d.TargetNodeCount != 3 {
		t.Fatalf("Create, TargetNodeCount = %d, %d; want 2, 3", d.Create, d.TargetNodeCount)
	}
}

func TestUnusableNodeWithLiveWorkIsKept(t *testing.T) {
	nodes := []*api.Node{nodeIn("u", api.NodeUnusable)}
	d := decide(t, Input{Target: cluster(0, 4), Nodes: nodes, Runs: []*api.Run{live("a", whole, "u")}})
	if len(d.Delete) != 0 {
		t.Fatalf("deleted %v, a node with live work", deletedIDs(d))
	}
	wantReason(t, d, "unusable or preempted node u kept until their runs end")
}

func TestBackoffHoldsCreatesThenResumes(t *testing.T) {
	tgt := cluster(0, 4)
	tgt.ProviderFailures = 3
	tgt.LastProviderFailure = t0
	in := Input{Target: tgt, Runs: burst(2)}

	in.Now = t0.Add(19 * time.Second)
	d := decide(t, in)
	until := t0.Add(20 * time.Second)
	if d.Create != 0 || d.TargetNodeCount != 2 || !d.BackoffUntil.Equal(until) || !d.NextCheck.Equal(until) {
		t.Fatalf("during backoff: Create %d, Target %d, BackoffUntil %v, NextCheck %v", d.Create, d.TargetNodeCount, d.BackoffUntil, d.NextCheck)
	}
	wantReason(t, d, "backing off after 3 provider errors until 12:00:20 UTC (want 2 more nodes of cpu-2)")

	in.Now = until
	if d = decide(t, in); d.Create != 2 || !d.BackoffUntil.IsZero() {
		t.Fatalf("after backoff: Create %d, BackoffUntil %v", d.Create, d.BackoffUntil)
	}
}

func TestBackoffDelaysGrowAndCap(t *testing.T) {
	for failures, wait := range map[int]time.Duration{1: 5 * time.Second, 2: 10 * time.Second, 3: 20 * time.Second, 6: 160 * time.Second, 7: 5 * time.Minute, 50: 5 * time.Minute} {
		tgt := cluster(0, 4)
		tgt.ProviderFailures = failures
		tgt.LastProviderFailure = t0
		if d := decide(t, Input{Now: t0.Add(wait - time.Millisecond), Target: tgt, Runs: burst(1)}); d.Create != 0 {
			t.Errorf("%d failures: created %d before %v", failures, d.Create, wait)
		}
		if d := decide(t, Input{Now: t0.Add(wait), Target: tgt, Runs: burst(1)}); d.Create != 1 {
			t.Errorf("%d failures: created %d after %v, want 1", failures, d.Create, wait)
		}
	}
}

func TestBackoffDoesNotHoldDeletes(t *testing.T) {
	tgt := cluster(0, 4)
	tgt.ProviderFailures = 5
	tgt.LastProviderFailure = t0
	d := decide(t, Input{Target: tgt, Nodes: []*api.Node{idleNode("n-1", t0.Add(-time.Hour))}})
	if got := deletedIDs(d); !slices.Equal(got, []string{"n-1"}) || !d.NextCheck.IsZero() {
		t.Fatalf("deleted %v, NextCheck %v; want n-1 and no check (no create is held)", got, d.NextCheck)
	}
}

func TestUpdateOfMaxNodesAppliesOnNextCall(t *testing.T) {
	tgt := cluster(0, 3)
	runs := burst(20)
	if d := decide(t, Input{Target: tgt, Runs: runs}); d.Create != 3 {
		t.Fatalf("Create = %d, want 3", d.Create)
	}
	nodes := []*api.Node{preparingNode("n-1", t0), preparingNode("n-2", t0), preparingNode("n-3", t0)}
	if d := decide(t, Input{Target: tgt, Nodes: nodes, Runs: runs}); d.Create != 0 {
		t.Fatalf("Create = %d at max, want 0", d.Create)
	}
	up := tgt.Copy()
	up.MaxNodes = 5
	if d := decide(t, Input{Target: up, Nodes: nodes, Runs: runs}); d.Create != 2 || d.TargetNodeCount != 5 {
		t.Fatalf("after max_nodes=5: Create %d, Target %d; want 2, 5", d.Create, d.TargetNodeCount)
	}
	down := tgt.Copy()
	down.MaxNodes = 2
	d := decide(t, Input{Target: down, Nodes: nodes, Runs: runs})
	if d.Create != 0 || d.TargetNodeCount != 2 || len(d.Delete) != 1 {
		t.Fatalf("after max_nodes=2: Create %d, Target %d, Delete %v; want 0, 2, one node", d.Create, d.TargetNodeCount, d.Delete)
	}
}

func TestDeletingTargetDeletesEverything(t *testing.T) {
	tgt := cluster(2, 4)
	tgt.ProvisioningState = api.ProvisioningDeleting
	nodes := []*api.Node{
		idleNode("i", t0), runningNode("busy"), runningNode("done"), preparingNode("p", t0),
		nodeIn("u", api.NodeUnusable), nodeIn("x", api.NodePreempted), nodeIn("l", api.NodeLeaving),
	}
	d := decide(t, Input{Target: tgt, Nodes: nodes, Runs: append(burst(5), live("a", whole, "busy"))})
	if d.TargetNodeCount != 0 || d.Create != 0 {
		t.Fatalf("TargetNodeCount, Create = %d, %d; want 0, 0", d.TargetNodeCount, d.Create)
	}
	if got := deletedIDs(d); !slices.Equal(got, []string{"done", "i", "p", "u", "x"}) {
		t.Fatalf("deleted %v", got)
	}
	wantReason(t, d, "target is Deleting: removing 5 nodes", "node busy waiting for runs to end")
}

func TestNextCheck(t *testing.T) {
	failed := cluster(0, 4)
	failed.ProviderFailures = 1
	failed.LastProviderFailure = t0.Add(-time.Second) // backoff ends t0+4s
	tests := []struct {
		name   string
		target *api.Target
		nodes  []*api.Node
		runs   []*api.Run
		want   time.Time
	}{
		{name: "nothing pending", target: cluster(0, 4)},
		{name: "busy nodes only", target: cluster(0, 4), nodes: []*api.Node{runningNode("n")}, runs: []*api.Run{live("a", whole, "n")}},
		{
			name: "earliest idle expiry", target: cluster(0, 4),
			nodes: []*api.Node{idleNode("a", t0.Add(-100*time.Second)), idleNode("b", t0.Add(-110*time.Second))},
			want:  t0.Add(10 * time.Second),
		},
		{
			name: "idle expiry of a node a waiting run would use is not awaited", target: cluster(0, 4),
			nodes: []*api.Node{idleNode("a", t0.Add(-100*time.Second))}, runs: burst(1),
		},
		{
			name: "provisioning deadline before idle expiry", target: cluster(0, 4),
			nodes: []*api.Node{idleNode("a", t0.Add(-time.Second)), preparingNode("p", t0.Add(-4*time.Minute))},
			want:  t0.Add(time.Minute),
		},
		{name: "backoff end when it holds creates", target: failed, runs: burst(1), want: t0.Add(4 * time.Second)},
		{name: "no backoff end when nothing is wanted", target: failed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decide(t, Input{Target: tt.target, Nodes: tt.nodes, Runs: tt.runs})
			if !d.NextCheck.Equal(tt.want) {
				t.Fatalf("NextCheck = %v, want %v", d.NextCheck, tt.want)
			}
		})
	}
}

func TestQueueOrderIsPriorityThenQueueSeq(t *testing.T) {
	a := queued("a", 3, 1, whole)
	b := queued("b", 1, 1, whole)
	c := queued("c", 2, 1, whole)
	c.Priority = 5
	done := queued("done", 0, 1, whole)
	done.State = api.RunCompleted
	got := queue(Input{Target: cluster(0, 1), Runs: []*api.Run{a, b, nil, done, c}})
	if ids := []string{got[0].ID, got[1].ID, got[2].ID}; len(got) != 3 || !slices.Equal(ids, []string{"c", "b", "a"}) {
		t.Fatalf("queue order %v, want c, b, a", ids)
	}
}

func TestNonClusterTargetsAreNotScaled(t *testing.T) {
	tgt := cluster(1, 4)
	tgt.Type = api.KindInstance
	d := decide(t, Input{Target: tgt, Nodes: []*api.Node{idleNode("n", t0.Add(-time.Hour))}, Runs: burst(3)})
	if d.Create != 0 || len(d.Delete) != 0 || d.Counts.Idle != 1 {
		t.Fatalf("decision %+v", d)
	}
}

func TestAllocationState(t *testing.T) {
	if s := (Decision{}).AllocationState(); s != api.AllocationSteady {
		t.Fatalf("empty decision: %s", s)
	}
	if s := (Decision{Create: 1}).AllocationState(); s != api.AllocationResizing {
		t.Fatalf("creating: %s", s)
	}
}
