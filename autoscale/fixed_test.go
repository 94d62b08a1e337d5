package autoscale

import (
	"slices"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

func instance(mod func(*api.Target)) *api.Target {
	t := &api.Target{
		TargetSpec: api.TargetSpec{
			Name: "c", Type: api.KindInstance, VMSize: cpu2.Name, MinNodes: 1, MaxNodes: 1,
		},
		ProvisioningState: api.ProvisioningSucceeded,
	}
	if mod != nil {
		mod(t)
	}
	return t
}

func decideFixed(t *testing.T, in Input) FixedDecision {
	t.Helper()
	if in.Size.Name == "" {
		in.Size = cpu2
	}
	if in.Now.IsZero() {
		in.Now = t0
	}
	d := DecideFixed(DefaultConfig(), in)
	t.Logf("decision: %+v", d)
	return d
}

func TestDecideFixed(t *testing.T) {
	idleShutdown := func(s int) func(*api.Target) {
		return func(t *api.Target) { t.IdleSecondsBeforeShutdown = &s }
	}
	tests := []struct {
		name     string
		target   *api.Target
		nodes    []*api.Node
		runs     []*api.Run
		now      time.Time
		create   int
		deleted  []string
		unusable []string
		stop     bool
		reason   string
	}{
		{name: "a new instance gets its node", target: instance(nil), create: 1, reason: "starting: creating its node of cpu-2"},
		{name: "a remote target gets its node", target: instance(func(t *api.Target) { t.Type = api.KindRemote }), create: 1},
		{name: "running with queued work: nothing to do", target: instance(nil),
			nodes: []*api.Node{runningNode("n-1")}, runs: []*api.Run{live("r1", oneCPU, "n-1"), queued("r2", 2, 1, oneCPU)}, reason: "running"},
		{name: "preparing: wait", target: instance(nil), nodes: []*api.Node{preparingNode("n-1", t0.Add(-time.Second))}, reason: "preparing"},
		{name: "missed deadline: replaced", target: instance(nil), nodes: []*api.Node{preparingNode("n-1", t0.Add(-time.Hour))},
			deleted: []string{"n-1"}, unusable: []string{"n-1"}, create: 1},
		{name: "unusable node: deleted and replaced", target: instance(nil), nodes: []*api.Node{nodeIn("n-1", api.NodeUnusable)},
			deleted: []string{"n-1"}, create: 1},
		{name: "old node leaving: wait before a new one", target: instance(nil), nodes: []*api.Node{nodeIn("n-1", api.NodeLeaving)},
			reason: "waiting for the old node to stop"},
		{name: "stopped: the node goes even with work", target: instance(func(t *api.Target) { t.Stopped = true; t.StopReason = "stopped by alice" }),
			nodes: []*api.Node{runningNode("n-1")}, runs: []*api.Run{live("r1", oneCPU, "n-1")},
			deleted: []string{"n-1"}, reason: "stopped: stopped by alice"},
		{name: "stopped and gone: nothing", target: instance(func(t *api.Target) { t.Stopped = true }), reason: "stopped: by a user"},
		{name: "deleting keeps nodes with work", target: instance(func(t *api.Target) { t.ProvisioningState = api.ProvisioningDeleting }),
			nodes: []*api.Node{runningNode("n-1"), idleNode("n-2", t0)}, runs: []*api.Run{live("r1", oneCPU, "n-1")}, deleted: []string{"n-2"}},
		{name: "backing off after provider errors", target: instance(func(t *api.Target) { t.ProviderFailures = 2; t.LastProviderFailure = t0 }),
			reason: "backing off after 2 provider errors"},
		{name: "backoff over: try again", target: instance(func(t *api.Target) { t.ProviderFailures = 1; t.LastProviderFailure = t0.Add(-time.Minute) }),
			create: 1},
		{name: "idle past idle shutdown: stop", target: instance(idleShutdown(60)), nodes: []*api.Node{idleNode("n-1", t0.Add(-2*time.Minute))}, stop: true},
		{name: "idle but not long enough", target: instance(idleShutdown(600)), nodes: []*api.Node{idleNode("n-1", t0.Add(-2*time.Minute))}},
		{name: "idle with a queued run: no shutdown", target: instance(idleShutdown(60)), nodes: []*api.Node{idleNode("n-1", t0.Add(-2*time.Minute))},
			runs: []*api.Run{queued("r1", 1, 1, whole)}},
		{name: "remote targets never shut down", target: instance(func(t *api.Target) { t.Type = api.KindRemote; s := 1; t.IdleSecondsBeforeShutdown = &s }),
			nodes: []*api.Node{idleNode("n-1", t0.Add(-2*time.Minute))}},
		{name: "extra idle node goes", target: instance(nil), nodes: []*api.Node{runningNode("n-1"), idleNode("n-2", t0)},
			runs: []*api.Run{live("r1", oneCPU, "n-1")}, deleted: []string{"n-2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range tc.nodes {
				n.Target = tc.target.Name
			}
			d := decideFixed(t, Input{Target: tc.target, Nodes: tc.nodes, Runs: tc.runs, Now: tc.now})
			if d.Create != tc.create {
				t.Errorf("Create %d, want %d", d.Create, tc.create)
			}
			if got := deletedIDs(d.Decision); !slices.Equal(got, tc.deleted) {
				t.Errorf("Delete %v, want %v", got, tc.deleted)
			}
			var unusable []string
			for _, a := range d.MarkUnusable {
				unusable = append(unusable, a.NodeID)
			}
			if !slices.Equal(unusable, tc.unusable) {
				t.Errorf("MarkUnusable %v, want %v", unusable, tc.unusable)
			}
			if d.Stop != tc.stop {
				t.Errorf("Stop %v (%s), want %v", d.Stop, d.StopReason, tc.stop)
			}
			if tc.reason != "" {
				wantReason(t, d.Decision, tc.reason)
			}
		})
	}
}

func TestIdleShutdownSetsNextCheck(t *testing.T) {
	s := 600
	tg := instance(func(t *api.Target) { t.IdleSecondsBeforeShutdown = &s })
	since := t0.Add(-time.Minute)
	d := decideFixed(t, Input{Target: tg, Nodes: []*api.Node{idleNode("n-1", since)}})
	if d.Stop || !d.NextCheck.Equal(since.Add(10*time.Minute)) {
		t.Fatalf("stop %v next check %v", d.Stop, d.NextCheck)
	}
	d = decideFixed(t, Input{Target: tg, Nodes: []*api.Node{idleNode("n-1", since)}, Now: since.Add(10 * time.Minute)})
	if !d.Stop || d.StopReason != "idle shutdown: idle 600s (idle_seconds_before_shutdown=600)" {
		t.Fatalf("stop %v reason %q", d.Stop, d.StopReason)
	}
}

func TestDecideFixedIgnoresClusters(t *testing.T) {
	d := decideFixed(t, Input{Target: cluster(0, 4), Runs: burst(2)})
	if d.Create != 0 || len(d.Delete) != 0 {
		t.Fatalf("decided for a cluster: %+v", d)
	}
}
