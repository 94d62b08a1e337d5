package scheduler

import (
	"testing"

	"github.com/amld/amld/api"
)

// localGPUNode is a node of a one-GPU size on a machine with the devices
// uuids, which every local node of that machine lists.
func localGPUNode(id, target string, uuids ...string) *api.Node {
	n := &api.Node{ID: id, Target: target, State: api.NodeIdle, VMSize: "gpu-4", Capacity: res(8, 32768, 1)}
	for i, u := range uuids {
		n.GPUs = append(n.GPUs, api.GPU{Index: i, UUID: u})
	}
	return n
}

func TestNodesSharingAMachinesGPUsNeverGetTheSameOne(t *testing.T) {
	st := state([]*api.Target{cluster("gpu", "gpu-4", 3)}, []*api.Node{
		localGPUNode("a", "gpu", "m-g0", "m-g1"),
		localGPUNode("b", "gpu", "m-g0", "m-g1"),
		localGPUNode("c", "gpu", "m-g0", "m-g1"),
	})
	for _, id := range []string{"r1", "r2", "r3"} {
		st.Runs = append(st.Runs, queued(id, "gpu", 0, uint64(len(st.Runs)+1), res(1, 1024, 1), 1))
	}
	p := Schedule(st)
	if len(p.Placements) != 2 {
		t.Fatalf("%d placements, want 2: the machine has 2 GPUs", len(p.Placements))
	}
	got := map[string]bool{}
	for _, pl := range p.Placements {
		for _, u := range pl.Allocations[0].GPUUUIDs {
			if got[u] {
				t.Fatalf("GPU %s handed out twice in one round: %+v", u, p.Placements)
			}
			got[u] = true
		}
	}
	if got, want := reasons(p)["r3"], "waiting for 1 GPU: 2 of 2 GPUs on 3 nodes in use"; got != want {
		t.Errorf("r3 reason %q, want %q", got, want)
	}
}

func TestSharedGPUsAcrossTargetsAreHandedOutOnce(t *testing.T) {
	st := state([]*api.Target{cluster("one", "gpu-4", 1), cluster("two", "gpu-4", 1)}, []*api.Node{
		localGPUNode("a", "one", "m-g0"),
		localGPUNode("b", "two", "m-g0"),
	})
	st.Runs = append(st.Runs,
		queued("r1", "one", 0, 1, res(1, 1024, 1), 1),
		queued("r2", "two", 0, 2, res(1, 1024, 1), 1))
	if p := Schedule(st); len(p.Placements) != 1 {
		t.Fatalf("%d placements of the machine's one GPU, want 1: %+v", len(p.Placements), p.Placements)
	}
}
