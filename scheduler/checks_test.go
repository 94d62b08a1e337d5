package scheduler

import (
	"testing"

	"github.com/amld/amld/api"
)

func TestNodeReadyOnlyIdleOrRunning(t *testing.T) {
	for _, tc := range []struct {
		state string
		want  bool
	}{
		{api.NodeIdle, true},
		{api.NodeRunning, true},
		{api.NodePreparing, false},
		{api.NodeLeaving, false},
		{api.NodePreempted, false},
		{api.NodeUnusable, false},
	} {
		ns := &nodeState{node: node("n1", "c", "cpu-2", tc.state)}
		if got := nodeReady(ns, nil); got != tc.want {
			t.Errorf("nodeReady(%s) = %v, want %v", tc.state, got, tc.want)
		}
	}
}

func TestSameTargetMatchesRunTarget(t *testing.T) {
	ns := &nodeState{node: node("n1", "c1", "cpu-2", api.NodeIdle)}
	for _, tc := range []struct {
		target string
		want   bool
	}{{"c1", true}, {"c2", false}, {"", false}} {
		r := queued("r", tc.target, 0, 1, res(1, 1, 0), 1)
		if got := sameTarget(ns, r); got != tc.want {
			t.Errorf("sameTarget(node of c1, run of %q) = %v, want %v", tc.target, got, tc.want)
		}
	}
}

func TestFitsResourcesEveryDimension(t *testing.T) {
	free := res(2, 4096, 1)
	for _, tc := range []struct {
		name string
		req  api.Resources
		want bool
	}{
		{"exact", res(2, 4096, 1), true},
		{"smaller", res(1, 1024, 0), true},
		{"zero", res(0, 0, 0), true},
		{"too many cpus", res(3, 1024, 0), false},
		{"too much memory", res(1, 4097, 0), false},
		{"too many gpus", res(1, 1024, 2), false},
	} {
		ns := &nodeState{free: free}
		r := queued("r", "c", 0, 1, tc.req, 1)
		if got := fitsResources(ns, r); got != tc.want {
			t.Errorf("%s: fitsResources(%v in %v) = %v, want %v", tc.name, tc.req, free, got, tc.want)
		}
	}
}

func TestGPUsFreeCountsFreeUUIDs(t *testing.T) {
	for _, tc := range []struct {
		name string
		free []string
		gpus int
		want bool
	}{
		{"no gpus asked, none free", nil, 0, true},
		{"enough", []string{"g0", "g1"}, 2, true},
		{"one short", []string{"g0"}, 2, false},
		{"none free", nil, 1, false},
	} {
		ns := &nodeState{gpus: tc.free, free: res(8, 8192, 8)}
		r := queued("r", "c", 0, 1, res(1, 1, tc.gpus), 1)
		if got := gpusFree(ns, r); got != tc.want {
			t.Errorf("%s: gpusFree = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestFailedCheckNamesFirstFailure(t *testing.T) {
	r := queued("r", "c1", 0, 1, res(2, 1024, 1), 1)
	for _, tc := range []struct {
		name string
		ns   *nodeState
		want string
	}{
		{"passes", &nodeState{node: node("n", "c1", "gpu-8", api.NodeIdle), free: res(2, 1024, 1), gpus: []string{"g"}}, ""},
		{"not ready", &nodeState{node: node("n", "c1", "gpu-8", api.NodeLeaving), free: res(2, 1024, 1), gpus: []string{"g"}}, "ready"},
		{"other target", &nodeState{node: node("n", "c2", "gpu-8", api.NodeIdle), free: res(2, 1024, 1), gpus: []string{"g"}}, "target"},
		{"full", &nodeState{node: node("n", "c1", "gpu-8", api.NodeIdle), free: res(1, 1024, 1), gpus: []string{"g"}}, "resources"},
		{"gpu held", &nodeState{node: node("n", "c1", "gpu-8", api.NodeIdle), free: res(2, 1024, 1)}, "gpus"},
	} {
		if got := failedCheck(checks, tc.ns, r); got != tc.want {
			t.Errorf("%s: failedCheck = %q, want %q", tc.name, got, tc.want)
		}
		if got := feasible(checks, tc.ns, r); got != (tc.want == "") {
			t.Errorf("%s: feasible = %v", tc.name, got)
		}
	}
}

func TestNeverFits(t *testing.T) {
	c := cluster("cpu-cluster", "cpu-2", 4)
	for _, tc := range []struct {
		name  string
		req   api.Resources
		nodes int
		size  api.VMSize
		want  string
	}{
		{"fits", res(2, 4096, 0), 4, sizes["cpu-2"], ""},
		{"default node count", res(1, 1, 0), 0, sizes["cpu-2"], ""},
		{"gang over max_nodes", res(1, 1, 0), 5, sizes["cpu-2"], "needs 5 nodes but cpu-cluster allows at most max_nodes=4"},
		{"bigger than a node", res(4, 8192, 0), 1, sizes["cpu-2"], "asks for 4 cpu, 8192 MiB per node but a node of cpu-2 has 2 cpu, 4096 MiB"},
		{"gpus on a cpu size", res(1, 1, 1), 1, sizes["cpu-2"], "asks for 1 cpu, 1 MiB, 1 gpu per node but a node of cpu-2 has 2 cpu, 4096 MiB"},
		{"unknown size", res(64, 1, 0), 1, api.VMSize{}, ""},
		{"negative", res(-1, 1, 0), 1, sizes["cpu-2"], "asks for a negative amount (-1 cpu, 1 MiB)"},
	} {
		r := queued("r", "cpu-cluster", 0, 1, tc.req, tc.nodes)
		if got := NeverFits(r, c, tc.size); got != tc.want {
			t.Errorf("%s: NeverFits = %q, want %q", tc.name, got, tc.want)
		}
	}
}
