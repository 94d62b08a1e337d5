//go:build cgo

package gpu

import (
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/gpus"
)

// NewMock returns an inventory of a machine with n A100-SXM4-40GB GPUs
// (driver 550.54.15, CUDA 12.4): go-nvml's own mock server
// (github.com/NVIDIA/go-nvml/pkg/nvml/mock) behind the real NVML inventory
// code. Each call makes new random UUIDs. For tests on machines without a
// GPU (`amld agent --fake-gpus N`).
func NewMock(n int) Inventory {
	if n <= 0 {
		return &Fake{}
	}
	return FromNVML(dgxa100.NewWithGPUs(gpus.Multiple(n, gpus.A100_SXM4_40GB)...))
}
