package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// This machine has no GPU: the GPU tests start local agents with the hidden
// `--fake-gpus N` flag, which makes them report N mock GPUs (go-nvml's own
// mock server behind the real NVML inventory code, in a cgo build) and run
// everything else for real: registration, the scheduler, the process
// runtime handing the devices to the command.

// submitCtl submits a run with amlctl and returns its ID.
func submitCtl(t *testing.T, h *head, args ...string) string {
	t.Helper()
	out, errOut, code := h.ctl(append([]string{"job", "submit", "-o", "json"}, args...)...)
	var r api.Run
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.ID == "" {
		t.Fatalf("submit %v: exit %d\n%s\n%s", args, code, out, errOut)
	}
	return r.ID
}

// visibleDevices parses the "CUDA=... NVIDIA=..." line the GPU runs print.
func visibleDevices(t *testing.T, log string) []string {
	t.Helper()
	line, _, _ := strings.Cut(log, "\n")
	var cuda, nvidia string
	if _, err := fmt.Sscanf(line, "CUDA=%s NVIDIA=%s", &cuda, &nvidia); err != nil || cuda != nvidia {
		t.Fatalf("run printed %q: want CUDA=<uuids> NVIDIA=<the same>", line)
	}
	return strings.Split(cuda, ",")
}

func TestFourTwoGPURunsShareAnEightGPUNodeAndAFifthWaits(t *testing.T) {
	h := startHead(t, "--local-agent-arg=--fake-gpus=8")
	if out, errOut, code := h.ctl("compute", "create", "cluster", "--name", "gpu", "--vm-size", "gpu-8",
		"--max-nodes", "1", "--idle-seconds-before-scaledown", "600"); code != 0 {
		t.Fatalf("create: %d %s %s", code, out, errOut)
	}
	gate := filepath.Join(t.TempDir(), "go")
	script := fmt.Sprintf(`echo "CUDA=$CUDA_VISIBLE_DEVICES NVIDIA=$NVIDIA_VISIBLE_DEVICES"; while [ ! -e %s ]; do sleep 0.1; done`, gate)
	var ids []string
	for range 5 {
		ids = append(ids, submitCtl(t, h, "--target", "gpu", "--gpus", "2", "--max-run-duration-seconds", "180", "--", "sh", "-c", script))
	}
	c := h.client()
	var runs map[string]*api.Run
	// The 5th run's reason is the scheduler's, written by the round after
	// its submit: wait for it too, not only for the states.
	const want = "waiting for 2 GPUs: 8 of 8 GPUs on 1 node in use"
	waitFor(t, 90*time.Second, "4 runs running and the 5th waiting for GPUs", func() (bool, string) {
		runs = map[string]*api.Run{}
		running, last := 0, ""
		for _, id := range ids {
			r, _, err := c.GetRun(context.Background(), id, api.Wait{})
			if err != nil {
				return false, err.Error()
			}
			runs[id] = r
			if r.State == api.RunRunning {
				running++
			}
			last = fmt.Sprintf("%s %s: %s", r.ID, r.State, r.Reason)
		}
		return running == 4 && runs[ids[4]].State == api.RunQueued && runs[ids[4]].Reason == want,
			fmt.Sprintf("%d running; last %s (want the reason %q)", running, last, want)
	})

	ns, err := c.ListNodes(ctx(t), "gpu")
	if err != nil || len(ns) != 1 {
		t.Fatalf("nodes %v, %v", ns, err)
	}
	node := ns[0]
	if len(node.GPUs) != 8 || node.Capacity.GPUs != 8 || node.GPUs[0].Driver == "" || !strings.Contains(node.GPUs[0].Model, "A100") {
		t.Fatalf("node %s reports %d GPUs (%+v), capacity %v; want the 8 mock A100s", node.ID, len(node.GPUs), node.GPUs, node.Capacity)
	}
	held := map[string]string{}
	for _, id := range ids[:4] {
		r := runs[id]
		al := r.Current().Allocations[0]
		var out string
		waitFor(t, 30*time.Second, "the run's first line", func() (bool, string) {
			out = fullLog(t, c, id, 1)
			return strings.Contains(out, "\n"), out
		})
		seen := visibleDevices(t, out)
		if len(seen) != 2 || !slices.Equal(seen, al.GPUUUIDs) {
			t.Errorf("%s saw GPUs %v, allocated %v; want the 2 allocated", id, seen, al.GPUUUIDs)
		}
		for _, u := range seen {
			if other, ok := held[u]; ok {
				t.Errorf("GPU %s given to %s and %s", u, other, id)
			}
			held[u] = id
			if !slices.ContainsFunc(node.GPUs, func(g api.GPU) bool { return g.UUID == u }) {
				t.Errorf("%s got GPU %s, which node %s does not have", id, u, node.ID)
			}
		}
	}
	if len(held) != 8 {
		t.Errorf("%d distinct GPUs in use, want all 8", len(held))
	}

	// amlctl shows every GPU with the run holding it.
	out, errOut, code := h.ctl("compute", "list-nodes", "gpu")
	if code != 0 {
		t.Fatalf("list-nodes: %d %s", code, errOut)
	}
	t.Logf("amlctl compute list-nodes gpu:\n%s", out)
	for _, g := range node.GPUs {
		if !strings.Contains(out, g.UUID) || !strings.Contains(out, held[g.UUID]) {
			t.Errorf("list-nodes lacks GPU %s held by %s:\n%s", g.UUID, held[g.UUID], out)
		}
	}
	for _, col := range []string{"IN USE BY", "MODEL", "MEMORY", "40960 MiB"} {
		if !strings.Contains(out, col) {
			t.Errorf("list-nodes lacks %q:\n%s", col, out)
		}
	}

	// Once the first four end, the fifth gets two of the freed GPUs.
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	done := waitTerminal(t, c, 90*time.Second, ids)
	for _, id := range ids {
		if r := done[id]; r.State != api.RunCompleted {
			t.Errorf("%s ended %s: %s", id, r.State, r.Reason)
		}
	}
	if seen := visibleDevices(t, fullLog(t, c, ids[4], 1)); len(seen) != 2 {
		t.Errorf("5th run saw %v, want 2 GPUs", seen)
	}
}

func TestGPUNodeWithFewerGPUsThanItsSizeIsUnusable(t *testing.T) {
	h := startHead(t, "--local-agent-arg=--fake-gpus=1")
	c := h.client()
	if _, err := c.CreateTarget(ctx(t), api.TargetSpec{Name: "gpu-short", VMSize: "gpu-2", MaxNodes: 1}); err != nil {
		t.Fatal(err)
	}
	id := submitCtl(t, h, "--target", "gpu-short", "--gpus", "1", "--", "true")
	want := "vm_size gpu-2 promises 2 GPUs; the agent found 1"
	waitFor(t, 60*time.Second, "the node to register unusable", func() (bool, string) {
		tg, err := c.GetTarget(context.Background(), "gpu-short")
		if err != nil {
			return false, err.Error()
		}
		for _, e := range tg.ProvisioningErrors {
			if e.Code == "NodeUnusable" && strings.Contains(e.Message, want) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("provisioning errors %+v", tg.ProvisioningErrors)
	})
	// The run is not started on it and does not fail: it waits.
	r, _, err := c.GetRun(ctx(t), id, api.Wait{})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != api.RunQueued || len(r.Attempts) != 0 {
		t.Errorf("run %s with %d attempts (%s); want Queued with none", r.State, len(r.Attempts), r.Reason)
	}
	out, _, _ := h.ctl("compute", "show", "gpu-short")
	if !strings.Contains(out, "NodeUnusable") || !strings.Contains(out, want) {
		t.Errorf("compute show does not say why:\n%s", out)
	}
	if _, _, code := h.ctl("job", "cancel", id); code != 0 {
		t.Errorf("cancel: exit %d", code)
	}
}

func TestAgentWithoutNVMLReportsNoGPUsAndRunsCPURuns(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "libnvidia-ml.so.1")

	// What the agent sees, without and with (mock) GPUs.
	out, err := exec.Command(filepath.Join(binDir, "amld"), "agent", "--print-inventory", "--nvml-library", missing).CombinedOutput()
	if err != nil {
		t.Fatalf("print-inventory: %v\n%s", err, out)
	}
	for _, want := range []string{"cpus ", "memory ", "gpus           0", "NVML library not found"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("inventory lacks %q:\n%s", want, out)
		}
	}
	out, err = exec.Command(filepath.Join(binDir, "amld"), "agent", "--print-inventory", "--fake-gpus", "2").CombinedOutput()
	if err != nil || strings.Count(string(out), "GPU-") != 2 || !strings.Contains(string(out), "40960 MiB") {
		t.Errorf("print-inventory with 2 mock GPUs: %v\n%s", err, out)
	}

	// A node whose agent finds no NVML library offers no GPU and runs CPU runs.
	h := startHead(t, "--local-agent-arg=--nvml-library="+missing)
	if out, errOut, code := h.ctl("compute", "create", "cluster", "--name", "cpu-cluster", "--vm-size", "cpu-2",
		"--max-nodes", "1", "--idle-seconds-before-scaledown", "600"); code != 0 {
		t.Fatalf("create: %d %s %s", code, out, errOut)
	}
	stdout, errOut, code := h.ctl("job", "submit", "--target", "cpu-cluster", "--wait", "--", "sh", "-c", "echo cpu run ok")
	if code != 0 || !strings.Contains(stdout, "cpu run ok") {
		t.Fatalf("CPU run: exit %d\n%s\n%s", code, stdout, errOut)
	}
	ns, err := h.client().ListNodes(ctx(t), "cpu-cluster")
	if err != nil || len(ns) != 1 {
		t.Fatalf("nodes %v, %v", ns, err)
	}
	if n := ns[0]; len(n.GPUs) != 0 || n.Capacity.GPUs != 0 || n.State == api.NodeUnusable {
		t.Errorf("node %s %s with GPUs %v, capacity %v; want a usable node with none", n.ID, n.State, n.GPUs, n.Capacity)
	}
	b, err := os.ReadFile(filepath.Join(h.dataDir, "nodes", ns[0].ID, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "no GPUs found"); n != 1 || !strings.Contains(string(b), "NVML library not found") {
		t.Errorf("agent log has %d 'no GPUs found' lines, want one naming the missing library:\n%s", n, b)
	}
}
