package gpu

import "strings"

// Environment variables that select the GPUs a process sees.
const (
	// EnvCUDA is read by the CUDA runtime: only the listed devices exist
	// for the process, renumbered from 0.
	EnvCUDA = "CUDA_VISIBLE_DEVICES"
	// EnvNVIDIA is read by the NVIDIA container toolkit (and by tools that
	// follow it): the devices to expose.
	EnvNVIDIA = "NVIDIA_VISIBLE_DEVICES"
)

// VisibleDevicesEnv is the environment (KEY=VALUE entries) that hands the
// devices uuids to a command: CUDA_VISIBLE_DEVICES and
// NVIDIA_VISIBLE_DEVICES, both set to the UUIDs joined by commas. UUIDs,
// not indices: CUDA numbers devices fastest first unless told otherwise,
// which need not be NVML's (nvidia-smi's) order, while a UUID means the
// same device to every tool.
//
// With no uuids on a node that has GPUs (nodeHasGPUs), the command is
// shown none (CUDA_VISIBLE_DEVICES empty, NVIDIA_VISIBLE_DEVICES=void), so
// a CPU run cannot take a GPU another run holds. On a node without GPUs
// nothing is set.
func VisibleDevicesEnv(uuids []string, nodeHasGPUs bool) []string {
	switch {
	case len(uuids) > 0:
		v := strings.Join(uuids, ",")
		return []string{EnvCUDA + "=" + v, EnvNVIDIA + "=" + v}
	case nodeHasGPUs:
		return []string{EnvCUDA + "=", EnvNVIDIA + "=void"}
	}
	return nil
}
