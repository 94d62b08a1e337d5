package server

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/amld/amld/api"
)

func gpuList(models ...string) []api.GPU {
	var out []api.GPU
	for i, m := range models {
		out = append(out, api.GPU{Index: i, UUID: "GPU-" + string(rune('a'+i)), Model: m, MemoryMB: 1024})
	}
	return out
}

func TestNodeGPUsDecidesCapacityAndUnusable(t *testing.T) {
	gpu2 := api.VMSize{Name: "gpu-2", CPUs: 12, MemoryGB: 112, GPUs: 2, GPUModel: "any"}
	a100x2 := api.VMSize{Name: "a100-2", CPUs: 12, MemoryGB: 112, GPUs: 2, GPUModel: "A100"}
	cpu := api.VMSize{Name: "cpu-2", CPUs: 2, MemoryGB: 8}
	for _, tc := range []struct {
		name        string
		size        api.VMSize
		reg         api.RegisterRequest
		gpus, count int
		unusableHas []string // "" for usable
		wantUsable  bool
	}{
		{name: "exactly as promised", size: gpu2, reg: api.RegisterRequest{GPUs: gpuList("H100", "H100")},
			gpus: 2, count: 2, wantUsable: true},
		{name: "more than promised: all kept, count capped", size: gpu2, reg: api.RegisterRequest{GPUs: gpuList("H100", "H100", "H100", "H100")},
			gpus: 4, count: 2, wantUsable: true},
		{name: "fewer than promised", size: gpu2, reg: api.RegisterRequest{GPUs: gpuList("H100")},
			gpus: 1, count: 1, unusableHas: []string{"vm_size gpu-2 promises 2 GPUs", "found 1"}},
		{name: "none, with the agent's reason", size: gpu2, reg: api.RegisterRequest{GPUError: "NVML library not found (libnvidia-ml.so.1)"},
			gpus: 0, count: 0, unusableHas: []string{"found none", "NVML library not found"}},
		{name: "offered fewer with --gpus", size: gpu2, reg: api.RegisterRequest{GPUs: gpuList("H100", "H100"), Capacity: api.Resources{GPUs: 1}},
			gpus: 2, count: 1, unusableHas: []string{"found 2 and offers 1"}},
		{name: "duplicate and empty UUIDs do not count", size: gpu2,
			reg:  api.RegisterRequest{GPUs: []api.GPU{{UUID: "GPU-a"}, {UUID: "GPU-a"}, {UUID: ""}}},
			gpus: 1, count: 1, unusableHas: []string{"found 1"}},
		{name: "model named by the size", size: a100x2, reg: api.RegisterRequest{GPUs: gpuList("NVIDIA A100-SXM4-40GB", "Tesla T4", "NVIDIA A100-SXM4-40GB")},
			gpus: 2, count: 2, wantUsable: true},
		{name: "wrong model", size: a100x2, reg: api.RegisterRequest{GPUs: gpuList("Tesla T4", "Tesla T4")},
			gpus: 0, count: 0, unusableHas: []string{"of model A100 (2 GPUs in all)"}},
		{name: "a CPU size offers no GPU", size: cpu, reg: api.RegisterRequest{GPUs: gpuList("H100")},
			gpus: 0, count: 0, wantUsable: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gpus, count, why := nodeGPUs(tc.size, tc.reg)
			if len(gpus) != tc.gpus || count != tc.count {
				t.Errorf("got %d GPUs, count %d; want %d, %d", len(gpus), count, tc.gpus, tc.count)
			}
			if tc.wantUsable != (why == "") {
				t.Fatalf("unusable = %q, want usable %v", why, tc.wantUsable)
			}
			for _, s := range tc.unusableHas {
				if !strings.Contains(why, s) {
					t.Errorf("reason %q lacks %q", why, s)
				}
			}
		})
	}
}

func TestGPUNodeShortOfGPUsIsUnusableAtRegistration(t *testing.T) {
	ts := startTestServer(t)
	ctx := context.Background()
	if _, err := ts.client.CreateTarget(ctx, api.TargetSpec{Name: "gpu", VMSize: "gpu-2", MaxNodes: 2}); err != nil {
		t.Fatal(err)
	}
	join := ts.client.WithToken(ts.srv.JoinToken())
	resp, err := join.Register(ctx, api.RegisterRequest{
		Target: "gpu", Hostname: "h", Address: "127.0.0.1:1", GPUs: gpuList("H100"), Version: "test",
		GPUError: "",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "vm_size gpu-2 promises 2 GPUs; the agent found 1"
	if resp.Unusable != want {
		t.Errorf("register answered unusable %q, want %q", resp.Unusable, want)
	}
	// The autoscaler may already be removing it (leaving, then gone); until
	// then it shows why.
	ns, err := ts.client.ListNodes(ctx, "gpu")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if (n.State != api.NodeUnusable && n.State != api.NodeLeaving) || !strings.Contains(n.Reason, want) {
			t.Errorf("node %s %q, want unusable with %q", n.State, n.Reason, want)
		}
	}
	tg, err := ts.client.GetTarget(ctx, "gpu")
	if err != nil {
		t.Fatal(err)
	}
	if len(tg.ProvisioningErrors) == 0 || tg.ProvisioningErrors[0].Code != "NodeUnusable" || !strings.Contains(tg.ProvisioningErrors[0].Message, want) {
		t.Errorf("provisioning errors %+v, want the node's reason", tg.ProvisioningErrors)
	}

	// A node with what the size promises is usable, with its GPUs listed.
	resp, err = join.Register(ctx, api.RegisterRequest{Target: "gpu", Hostname: "h2", Address: "127.0.0.1:2", GPUs: gpuList("H100", "H100"), Version: "test"})
	if err != nil || resp.Unusable != "" {
		t.Fatalf("register: %v, unusable %q", err, resp.Unusable)
	}
	ns, _ = ts.client.ListNodes(ctx, "gpu")
	for _, n := range ns {
		if n.ID == resp.NodeID && (n.State != api.NodeIdle || len(n.GPUs) != 2 || n.Capacity.GPUs != 2) {
			t.Errorf("node %s %s with %d GPUs, capacity %v", n.ID, n.State, len(n.GPUs), n.Capacity)
		}
	}
}

func TestOversizedGPUReportsAreRefusedNamingTheField(t *testing.T) {
	many := make([]api.GPU, maxReportedGPUs+1)
	for _, tc := range []struct {
		reg   api.RegisterRequest
		field string
	}{
		{api.RegisterRequest{GPUs: many}, "gpus"},
		{api.RegisterRequest{GPUs: []api.GPU{{UUID: strings.Repeat("x", 300)}}}, "gpus[0].uuid"},
		{api.RegisterRequest{GPUs: []api.GPU{{UUID: "GPU-a", MemoryMB: -1}}}, "gpus[0].memory_mb"},
		{api.RegisterRequest{GPUError: strings.Repeat("e", 2000)}, "gpu_error"},
	} {
		err := checkReportedGPUs(tc.reg)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Field != tc.field || ae.Status != 400 {
			t.Errorf("%s: got %v, want a 400 naming %s", tc.field, err, tc.field)
		}
	}
	if err := checkReportedGPUs(api.RegisterRequest{GPUs: gpuList("H100", "H100")}); err != nil {
		t.Errorf("a normal report was refused: %v", err)
	}
}
