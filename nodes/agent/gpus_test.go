package agent

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/amld/amld/api"
	"github.com/amld/amld/gpu"
)

func mockGPUs(t *testing.T, n int) []api.GPU {
	t.Helper()
	gpus, note := DiscoverGPUs(context.Background(), gpu.NewMock(n), nil)
	if len(gpus) != n || note != "" {
		t.Fatalf("mock inventory gave %d GPUs, note %q", len(gpus), note)
	}
	return gpus
}

func TestRunHoldingGPUsSeesThemByUUID(t *testing.T) {
	h := newFakeHead(t)
	gpus := mockGPUs(t, 4)
	startAgent(t, h, "", func(c *Config) { c.GPUs = gpus })
	a := assignment("r-g", "sh", "-c", "env")
	a.Allocation = api.Allocation{NodeID: "n-1", GPUUUIDs: []string{gpus[2].UUID, gpus[0].UUID}}
	h.assign(a)
	st := h.final(a.Key(), 10*time.Second)
	if *st.ExitCode != 0 {
		t.Fatalf("exit code %d", *st.ExitCode)
	}
	out := h.logOf(a.Key())
	want := gpus[2].UUID + "," + gpus[0].UUID
	for _, k := range []string{"CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"} {
		if !strings.Contains(out, "\n"+k+"="+want+"\n") {
			t.Errorf("env lacks %s=%s:\n%s", k, want, out)
		}
	}
	h.mu.Lock()
	reg := h.registrations[0]
	h.mu.Unlock()
	if len(reg.GPUs) != 4 || reg.GPUs[1].UUID != gpus[1].UUID || reg.GPUError != "" {
		t.Errorf("registered GPUs %+v, error %q; want the 4 found", reg.GPUs, reg.GPUError)
	}
}

func TestCPURunOnAGPUNodeSeesNoGPU(t *testing.T) {
	h := newFakeHead(t)
	startAgent(t, h, "", func(c *Config) { c.GPUs = mockGPUs(t, 2) })
	a := assignment("r-c", "sh", "-c", "env")
	h.assign(a)
	h.final(a.Key(), 10*time.Second)
	out := h.logOf(a.Key())
	if !strings.Contains(out, "\nCUDA_VISIBLE_DEVICES=\n") || !strings.Contains(out, "\nNVIDIA_VISIBLE_DEVICES=void\n") {
		t.Errorf("a CPU run on a GPU node must be shown no GPU:\n%s", out)
	}
}

func TestAgentWithoutNVMLLibraryReportsZeroGPUsAndRunsCPURuns(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	// A library path that cannot exist: no NVML here, whatever the machine.
	inv := gpu.NewNVML(filepath.Join(t.TempDir(), "libnvidia-ml.so.1"))
	gpus, note := DiscoverGPUs(context.Background(), inv, log)
	if len(gpus) != 0 || note == "" {
		t.Fatalf("found %d GPUs, note %q; want none and a reason", len(gpus), note)
	}
	if lines := strings.Count(logs.String(), "\n"); lines != 1 || !strings.Contains(logs.String(), "no GPUs found") {
		t.Fatalf("want one clear log line, got:\n%s", logs.String())
	}

	h := newFakeHead(t)
	startAgent(t, h, "", func(c *Config) { c.GPUs, c.GPUError = gpus, note })
	a := assignment("r-cpu", "sh", "-c", "echo ok; env")
	h.assign(a)
	st := h.final(a.Key(), 10*time.Second)
	if *st.ExitCode != 0 || !strings.HasPrefix(h.logOf(a.Key()), "ok\n") {
		t.Fatalf("CPU run: code %d output %q", *st.ExitCode, h.logOf(a.Key()))
	}
	if strings.Contains(h.logOf(a.Key()), "NVIDIA_VISIBLE_DEVICES=") {
		t.Error("a node without GPUs must not set NVIDIA_VISIBLE_DEVICES")
	}
	h.mu.Lock()
	reg := h.registrations[0]
	h.mu.Unlock()
	if len(reg.GPUs) != 0 || reg.GPUError != note {
		t.Errorf("registered GPUs %v, error %q; want none and %q", reg.GPUs, reg.GPUError, note)
	}
}

func TestDiscoverGPUsLogsOneLine(t *testing.T) {
	for _, tc := range []struct {
		name     string
		inv      gpu.Inventory
		n        int
		note     string
		logsWant string
	}{
		{"found", gpu.NewMock(2), 2, "", "GPUs found"},
		{"no cgo", &gpu.Fake{Err: gpu.ErrNoCgo}, 0, gpu.ErrNoCgo.Error(), "no GPUs found"},
		{"no devices", &gpu.Fake{}, 0, "NVML lists no devices", "no GPUs found"},
		{"partial", &gpu.Fake{List: []gpu.Device{{UUID: "GPU-a"}}, Err: context.DeadlineExceeded}, 1, context.DeadlineExceeded.Error(), "some could not be read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			gpus, note := DiscoverGPUs(context.Background(), tc.inv, slog.New(slog.NewTextHandler(&logs, nil)))
			if len(gpus) != tc.n || note != tc.note {
				t.Errorf("got %d GPUs, note %q; want %d, %q", len(gpus), note, tc.n, tc.note)
			}
			if strings.Count(logs.String(), "\n") != 1 || !strings.Contains(logs.String(), tc.logsWant) {
				t.Errorf("logs:\n%s", logs.String())
			}
		})
	}
}

func TestShortenCutsOnARuneBoundary(t *testing.T) {
	if got := shorten("short", 10); got != "short" {
		t.Errorf("got %q", got)
	}
	if got := shorten(strings.Repeat("a", 20), 10); got != "aaaaaaa..." {
		t.Errorf("got %q", got)
	}
	got := shorten("aaaaaaé"+strings.Repeat("b", 10), 10) // é is 2 bytes at 6..7
	if !strings.HasSuffix(got, "...") || len(got) > 10 || !utf8.ValidString(got) {
		t.Errorf("got %q", got)
	}
}
