//go:build !cgo

package gpu

import (
	"crypto/rand"
	"fmt"
)

// NewMock returns an inventory of a machine with n fake A100-SXM4-40GB GPUs
// with random UUIDs. (A cgo build uses go-nvml's own mock server instead;
// go-nvml does not compile without cgo.) For tests on machines without a
// GPU (`amld agent --fake-gpus N`).
func NewMock(n int) Inventory {
	f := &Fake{}
	for i := range max(n, 0) {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		f.List = append(f.List, Device{
			Index:       i,
			UUID:        fmt.Sprintf("GPU-%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]),
			Model:       "Mock NVIDIA A100-SXM4-40GB",
			MemoryMB:    40960,
			Driver:      "550.54.15",
			CUDAVersion: "12.4",
		})
	}
	return f
}
