package scheduler

import (
	"reflect"
	"testing"

	"github.com/amld/amld/api"
)

// withImage gives r an image: it needs the docker runtime.
func withImage(r *api.Run) *api.Run {
	r.Environment.Image = "amld/base:cpu"
	return r
}

// withRuntimes sets the runtimes n's agent reported.
func withRuntimes(n *api.Node, rts ...string) *api.Node {
	n.Runtimes = rts
	return n
}

func TestHasRunRuntimeNeedsDockerOnlyForImages(t *testing.T) {
	for _, tc := range []struct {
		name     string
		runtimes []string
		image    bool
		want     bool
	}{
		{"process run, process node", []string{"process"}, false, true},
		{"process run, node reported nothing", nil, false, true},
		{"process run, docker node", []string{"process", "docker"}, false, true},
		{"image run, docker node", []string{"process", "docker"}, true, true},
		{"image run, process-only node", []string{"process"}, true, false},
		{"image run, node reported nothing", nil, true, false},
	} {
		ns := &nodeState{node: withRuntimes(node("n1", cc, "cpu-2", api.NodeIdle), tc.runtimes...)}
		r := queued("r", cc, 0, 1, res(1, 1, 0), 1)
		if tc.image {
			withImage(r)
		}
		if got := hasRunRuntime(ns, r); got != tc.want {
			t.Errorf("%s: hasRunRuntime = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestFailedCheckNamesRuntime(t *testing.T) {
	r := withImage(queued("r", cc, 0, 1, res(1, 1024, 0), 1))
	ns := &nodeState{node: withRuntimes(node("n", cc, "cpu-2", api.NodeIdle), "process"), free: res(2, 4096, 0)}
	if got := failedCheck(checks, ns, r); got != "runtime" {
		t.Fatalf("failedCheck = %q, want runtime", got)
	}
}

func TestImageRunPlacedOnlyOnDockerNode(t *testing.T) {
	st := state([]*api.Target{cluster(cc, "cpu-2", 2)},
		[]*api.Node{
			withRuntimes(node("n1", cc, "cpu-2", api.NodeIdle), "process"),
			withRuntimes(node("n2", cc, "cpu-2", api.NodeIdle), "process", "docker"),
		},
		withImage(queued("img", cc, 0, 1, res(2, 4096, 0), 1)))
	if got := placedOn(Schedule(st)); !reflect.DeepEqual(got, map[string][]string{"img": {"n2"}}) {
		t.Fatalf("placed %v, want img on n2", got)
	}
}

func TestImageRunWaitsWithReasonWhenNoNodeHasDocker(t *testing.T) {
	st := state([]*api.Target{cluster(cc, "cpu-2", 2)},
		[]*api.Node{
			withRuntimes(node("n1", cc, "cpu-2", api.NodeIdle), "process"),
			withRuntimes(node("n2", cc, "cpu-2", api.NodeIdle), "process"),
		},
		withImage(queued("img", cc, 0, 1, res(1, 1024, 0), 1)),
		queued("plain", cc, 0, 2, res(1, 1024, 0), 1))
	p := Schedule(st)
	// The image run's failed ask must not stop a process run with the same
	// request from using the nodes.
	if got := placedOn(p); !reflect.DeepEqual(got, map[string][]string{"plain": {"n1"}}) {
		t.Fatalf("placed %v, want plain on n1 only", got)
	}
	want := "waiting for a node of cpu-cluster with the docker runtime (the run has an image): none of the 2 ready nodes has it (their agents found no engine)"
	if got := reasons(p)["img"]; got != want {
		t.Errorf("reason %q, want %q", got, want)
	}
}

func TestImageRunWaitsForRoomOnDockerNodes(t *testing.T) {
	st := state([]*api.Target{cluster(cc, "cpu-2", 2)},
		[]*api.Node{
			withRuntimes(node("n1", cc, "cpu-2", api.NodeRunning), "process", "docker"),
			withRuntimes(node("n2", cc, "cpu-2", api.NodeIdle), "process"),
		},
		running("busy", cc, 0, res(2, 4096, 0), 0, "n1"),
		withImage(queued("img", cc, 0, 1, res(2, 4096, 0), 1)))
	p := Schedule(st)
	if len(p.Placements) != 0 {
		t.Fatalf("placements %v, want none", p.Placements)
	}
	want := "waiting for 1 node of cpu-2: cluster at max_nodes=2, 1 running, 1 idle"
	if got := reasons(p)["img"]; got != want {
		t.Errorf("reason %q, want %q", got, want)
	}
}
