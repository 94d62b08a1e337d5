package main

import (
	"strings"
	"testing"

	"github.com/amld/amld/api"
)

func TestListNodesShowsEachGPUWithTheRunHoldingIt(t *testing.T) {
	f := newFakeHead(t)
	node := api.NodeView{
		Node: api.Node{ID: "n-1", State: "running", VMSize: "gpu-2", Capacity: api.Resources{CPUs: 12, MemoryMB: 114688, GPUs: 2},
			GPUs: []api.GPU{
				{Index: 0, UUID: "GPU-aaaa", Model: "NVIDIA H100 80GB HBM3", MemoryMB: 81559},
				{Index: 1, UUID: "GPU-bbbb", Model: "NVIDIA H100 80GB HBM3", MemoryMB: 81559},
			}},
		Runs:    []string{"r-1"},
		GPURuns: map[string]string{"GPU-bbbb": "r-1"},
	}
	cpu := api.NodeView{Node: api.Node{ID: "n-2", State: "idle", VMSize: "gpu-2"}}
	f.handle("GET /v1/targets/{name}/nodes", []api.NodeView{node, cpu})
	res := f.runCLI(t.Context(), "compute", "list-nodes", "gpu")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	lines := strings.Split(res.stdout, "\n")
	find := func(uuid string) []string {
		for _, l := range lines {
			if strings.Contains(l, uuid) {
				return strings.Fields(l)
			}
		}
		t.Fatalf("no row for %s:\n%s", uuid, res.stdout)
		return nil
	}
	if !strings.Contains(res.stdout, "NODE  GPU  UUID") || !strings.Contains(res.stdout, "IN USE BY") {
		t.Errorf("no GPU table header:\n%s", res.stdout)
	}
	a, b := find("GPU-aaaa"), find("GPU-bbbb")
	if a[0] != "n-1" || a[1] != "0" || a[len(a)-1] != "-" || !strings.Contains(strings.Join(a, " "), "NVIDIA H100 80GB HBM3 81559 MiB") {
		t.Errorf("free GPU row %q", a)
	}
	if b[1] != "1" || b[len(b)-1] != "r-1" {
		t.Errorf("held GPU row %q, want in use by r-1", b)
	}
}

func TestListNodesWithoutGPUsPrintsNoGPUTable(t *testing.T) {
	f := newFakeHead(t)
	f.handle("GET /v1/targets/{name}/nodes", []api.NodeView{{Node: api.Node{ID: "n-1", State: "idle", VMSize: "cpu-2"}}})
	res := f.runCLI(t.Context(), "compute", "list-nodes", "cpu-cluster")
	if res.code != 0 || strings.Contains(res.stdout, "UUID") {
		t.Errorf("exit %d, output:\n%s", res.code, res.stdout)
	}
}
