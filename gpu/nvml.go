//go:build cgo

package gpu

import (
	"context"
	"errors"
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// NVML is the Inventory of a cgo build: it asks the NVIDIA driver through
// NVML (github.com/NVIDIA/go-nvml). The library is loaded at each call to
// Devices and unloaded after, so a driver installed later is found by the
// next call.
type NVML struct {
	lib  nvml.Interface
	path string // for messages
}

var _ Inventory = (*NVML)(nil)

// DefaultLibrary is the NVML library the inventory loads unless told
// otherwise (found on the dynamic loader's path).
const DefaultLibrary = "libnvidia-ml.so.1"

// NewNVML returns the NVML inventory loading the library at path (""
// means DefaultLibrary, found on the loader's path).
func NewNVML(path string) *NVML {
	if path == "" {
		return &NVML{lib: nvml.New(), path: DefaultLibrary}
	}
	return &NVML{lib: nvml.New(nvml.WithLibraryPath(path)), path: path}
}

// FromNVML returns the inventory over any implementation of go-nvml's
// interface, such as the mocks of github.com/NVIDIA/go-nvml/pkg/nvml/mock.
func FromNVML(lib nvml.Interface) *NVML { return &NVML{lib: lib, path: "the given NVML"} }

// CgoEnabled reports whether this binary can call NVML.
const CgoEnabled = true

// Devices implements Inventory.
func (n *NVML) Devices(ctx context.Context) ([]Device, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch ret := n.lib.Init(); ret {
	case nvml.SUCCESS:
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return nil, fmt.Errorf("%w (%s): no NVIDIA driver on this machine, or the library is not on the loader's path", ErrNoLibrary, n.path)
	case nvml.ERROR_DRIVER_NOT_LOADED:
		return nil, fmt.Errorf("%w: NVML found %s but the kernel driver is not running", ErrNoDriver, n.path)
	default:
		return nil, fmt.Errorf("NVML init: %v", ret)
	}
	defer n.lib.Shutdown()

	driver, ret := n.lib.SystemGetDriverVersion()
	if ret != nvml.SUCCESS {
		driver = ""
	}
	cv, ret := n.lib.SystemGetCudaDriverVersion()
	if ret != nvml.SUCCESS {
		cv = 0
	}
	count, ret := n.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("NVML device count: %v", ret)
	}
	var devs []Device
	var errs []error
	for i := range count {
		d, err := n.device(i)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		d.Driver, d.CUDAVersion = driver, cudaVersion(cv)
		devs = append(devs, d)
	}
	return devs, errors.Join(errs...)
}

// device reads one device's identity.
func (n *NVML) device(i int) (Device, error) {
	h, ret := n.lib.DeviceGetHandleByIndex(i)
	if ret != nvml.SUCCESS {
		return Device{}, fmt.Errorf("GPU %d: NVML handle: %v", i, ret)
	}
	uuid, ret := h.GetUUID()
	if ret != nvml.SUCCESS || uuid == "" {
		return Device{}, fmt.Errorf("GPU %d: NVML UUID: %v", i, ret)
	}
	d := Device{Index: i, UUID: uuid}
	if idx, ret := h.GetIndex(); ret == nvml.SUCCESS {
		d.Index = idx
	}
	if name, ret := h.GetName(); ret == nvml.SUCCESS {
		d.Model = name
	}
	if mem, ret := h.GetMemoryInfo(); ret == nvml.SUCCESS {
		d.MemoryMB = int64(mem.Total / (1 << 20))
	}
	return d, nil
}
