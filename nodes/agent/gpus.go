package agent

import (
	"context"
	"log/slog"
	"unicode/utf8"

	"github.com/amld/amld/api"
	"github.com/amld/amld/gpu"
)

// DiscoverGPUs asks inv for this machine's GPUs, as the agent reports them
// at registration (Config.GPUs and Config.GPUError). It logs exactly one
// line: the GPUs found, or why there are none (no NVML library, no driver,
// a build without cgo), in which case the node offers none and the agent
// works on. note is the error to report to the head ("" when all is well).
func DiscoverGPUs(ctx context.Context, inv gpu.Inventory, log *slog.Logger) (gpus []api.GPU, note string) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	devs, err := inv.Devices(ctx)
	gpus = ToAPI(devs)
	defer func() { note = shorten(note, maxGPUNote) }()
	switch {
	case gpu.Unavailable(err):
		log.Info("no GPUs found; this node offers none", "reason", err.Error())
		return gpus, err.Error()
	case err != nil && len(gpus) == 0:
		log.Warn("GPU discovery failed; this node offers none", "err", err)
		return gpus, err.Error()
	case err != nil:
		log.Warn("GPUs found, but some could not be read", "count", len(gpus), "gpus", gpu.Summary(devs), "err", err)
		return gpus, err.Error()
	case len(gpus) == 0:
		log.Info("no GPUs found; this node offers none", "reason", "NVML lists no devices")
		return gpus, "NVML lists no devices"
	}
	log.Info("GPUs found", "count", len(gpus), "gpus", gpu.Summary(devs))
	return gpus, ""
}

// ToAPI converts inventory devices to the wire type.
func ToAPI(devs []gpu.Device) []api.GPU {
	var out []api.GPU
	for _, d := range devs {
		out = append(out, api.GPU{
			Index: d.Index, UUID: d.UUID, Model: d.Model, MemoryMB: d.MemoryMB,
			Driver: d.Driver, CUDAVersion: d.CUDAVersion,
		})
	}
	return out
}

// maxGPUNote bounds the GPU error an agent reports (the head takes 1 KiB).
const maxGPUNote = 512

// shorten cuts s to at most n bytes, on a rune boundary, marking the cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
