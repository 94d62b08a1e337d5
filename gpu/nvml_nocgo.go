//go:build !cgo

package gpu

import "context"

// NVML is the Inventory of a CGO_ENABLED=0 build: it cannot call NVML and
// always reports no GPUs, with ErrNoCgo.
type NVML struct{}

var _ Inventory = (*NVML)(nil)

// DefaultLibrary is the NVML library a cgo build loads; unused here.
const DefaultLibrary = "libnvidia-ml.so.1"

// NewNVML returns the inventory of this build, which finds no GPUs.
func NewNVML(string) *NVML { return &NVML{} }

// CgoEnabled reports whether this binary can call NVML.
const CgoEnabled = false

// Devices implements Inventory: always ErrNoCgo.
func (*NVML) Devices(ctx context.Context) ([]Device, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, ErrNoCgo
}
