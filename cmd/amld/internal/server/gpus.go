package server

import (
	"context"
	"fmt"
	"strings"

	"github.com/amld/amld/api"
	"github.com/amld/amld/raftstore"
)

// Limits on what an agent reports about its GPUs (docs/api.md).
const (
	maxReportedGPUs  = 256
	maxGPUFieldBytes = 256
	maxGPUErrorBytes = 1024
)

// checkReportedGPUs refuses a registration whose GPU report is out of
// bounds, naming the field.
func checkReportedGPUs(reg api.RegisterRequest) error {
	if len(reg.GPUs) > maxReportedGPUs {
		return api.Invalid("gpus", "lists %d devices; at most %d", len(reg.GPUs), maxReportedGPUs)
	}
	for i, g := range reg.GPUs {
		for name, v := range map[string]string{"uuid": g.UUID, "model": g.Model, "driver_version": g.Driver, "cuda_version": g.CUDAVersion} {
			if len(v) > maxGPUFieldBytes {
				return api.Invalid(fmt.Sprintf("gpus[%d].%s", i, name), "is longer than %d bytes", maxGPUFieldBytes)
			}
		}
		if g.MemoryMB < 0 {
			return api.Invalid(fmt.Sprintf("gpus[%d].memory_mb", i), "must not be negative")
		}
	}
	if len(reg.GPUError) > maxGPUErrorBytes {
		return api.Invalid("gpu_error", "is longer than %d bytes", maxGPUErrorBytes)
	}
	return nil
}

// nodeGPUs decides, at registration, which of the GPUs an agent reported the
// node offers, how many runs may hold at once (its capacity), and whether
// the node is unusable because it has fewer than its vm_size promises. A
// size without GPUs offers none: its node's devices are not recorded. A
// size naming a gpu_model (other than "any") counts only devices whose
// model contains that name (case-insensitively). Every matching device is
// kept, even beyond the count, so that local nodes sharing one machine's
// GPUs can each be handed a different one (the scheduler never hands a UUID
// to two runs).
func nodeGPUs(size api.VMSize, reg api.RegisterRequest) (gpus []api.GPU, count int, unusable string) {
	if size.GPUs <= 0 {
		return nil, 0, ""
	}
	want := strings.ToLower(size.GPUModel)
	if want == "any" {
		want = ""
	}
	seen := map[string]bool{}
	for _, g := range reg.GPUs {
		if g.UUID == "" || seen[g.UUID] {
			continue
		}
		if want != "" && !strings.Contains(strings.ToLower(g.Model), want) {
			continue
		}
		seen[g.UUID] = true
		gpus = append(gpus, g)
	}
	offered := len(gpus)
	if c := reg.Capacity.GPUs; c > 0 && c < offered {
		offered = c
	}
	if offered >= size.GPUs {
		return gpus, size.GPUs, ""
	}
	found := "none"
	switch {
	case len(gpus) > offered:
		found = fmt.Sprintf("%d and offers %d (--gpus)", len(gpus), offered)
	case len(gpus) > 0:
		found = fmt.Sprint(len(gpus))
	}
	if want != "" && len(reg.GPUs) > len(gpus) {
		found += fmt.Sprintf(" of model %s (%d GPUs in all)", size.GPUModel, len(reg.GPUs))
	}
	why := fmt.Sprintf("vm_size %s promises %s; the agent found %s", size.Name, gpuCount(size.GPUs), found)
	if reg.GPUError != "" {
		why += ": " + reg.GPUError
	}
	return gpus, offered, why
}

// gpuCount writes "1 GPU", "2 GPUs".
func gpuCount(n int) string {
	if n == 1 {
		return "1 GPU"
	}
	return fmt.Sprintf("%d GPUs", n)
}

// recordUnusable adds a node found unusable at registration to its target's
// provisioning_errors, where `amlctl compute show` shows it.
func (s *Server) recordUnusable(ctx context.Context, target, nodeID, why string) {
	perr := &api.ProvisioningError{Time: now(), Code: "NodeUnusable", Message: fmt.Sprintf("node %s: %s", nodeID, why)}
	if _, err := s.apply(ctx, raftstore.MsgProvisioningResult, &raftstore.ProvisioningResultRequest{Name: target, Error: perr, Time: now()}); err != nil {
		s.log.Warn("record provisioning error", "target", target, "err", err)
	}
}

// addGPURuns records in a node view that run holds the GPUs uuids.
func addGPURuns(v *api.NodeView, run string, uuids []string) {
	for _, u := range uuids {
		if v.GPURuns == nil {
			v.GPURuns = map[string]string{}
		}
		v.GPURuns[u] = run
	}
}
