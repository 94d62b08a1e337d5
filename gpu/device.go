package gpu

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Device is one GPU as the inventory found it.
type Device struct {
	// Index is NVML's index of the device (the order nvidia-smi shows).
	Index int
	// UUID names the device ("GPU-8d1c2c5e-..."); amld hands devices out
	// by UUID.
	UUID string
	// Model is the product name ("NVIDIA A100-SXM4-40GB").
	Model string
	// MemoryMB is the device's total memory in MiB.
	MemoryMB int64
	// Driver is the NVIDIA driver version ("550.54.15").
	Driver string
	// CUDAVersion is the highest CUDA version the driver supports ("12.4").
	CUDAVersion string
}

// Inventory finds the GPUs of this machine.
type Inventory interface {
	// Devices lists the machine's GPUs, lowest index first. It returns an
	// error wrapping ErrNoLibrary, ErrNoDriver or ErrNoCgo when GPUs cannot be looked
	// for at all (the machine is then treated as having none). Other errors
	// may come with the devices that could be read; a caller may use them.
	// Devices may be called more than once.
	Devices(ctx context.Context) ([]Device, error)
}

var (
	// ErrNoLibrary means the NVML library (libnvidia-ml.so.1, part of the
	// NVIDIA driver) could not be loaded: this machine has no NVIDIA driver,
	// or the library is not on the loader's path.
	ErrNoLibrary = errors.New("NVML library not found")
	// ErrNoCgo means this binary was built without cgo (CGO_ENABLED=0) and
	// cannot call NVML.
	ErrNoCgo = errors.New("GPU discovery needs a cgo build of amld; this one was built with CGO_ENABLED=0")
	// ErrNoDriver means the NVML library loaded but the NVIDIA kernel
	// driver is not running.
	ErrNoDriver = errors.New("NVIDIA driver not loaded")
)

// Unavailable reports whether err says GPUs cannot be looked for on this
// machine or with this build (no NVML library, no driver, no cgo), as opposed to a
// failure while reading devices.
func Unavailable(err error) bool {
	return errors.Is(err, ErrNoLibrary) || errors.Is(err, ErrNoCgo) || errors.Is(err, ErrNoDriver)
}

// Fake is an in-memory Inventory for tests.
type Fake struct {
	// List is what Devices returns (a copy).
	List []Device
	// Err is returned with List.
	Err error
}

var _ Inventory = (*Fake)(nil)

// Devices implements Inventory.
func (f *Fake) Devices(ctx context.Context) ([]Device, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return slices.Clone(f.List), f.Err
}

// cudaVersion formats NVML's CUDA driver version (major*1000 + minor*10)
// as "12.4".
func cudaVersion(v int) string {
	if v <= 0 {
		return ""
	}
	return fmt.Sprintf("%d.%d", v/1000, v%1000/10)
}

// Summary words a list of devices for a log line or a listing:
// "8 × NVIDIA A100-SXM4-40GB (40960 MiB), driver 550.54.15, CUDA 12.4".
func Summary(devs []Device) string {
	if len(devs) == 0 {
		return "no GPUs"
	}
	var models []string
	count := map[string]int{}
	for _, d := range devs {
		k := fmt.Sprintf("%s (%d MiB)", d.Model, d.MemoryMB)
		if count[k] == 0 {
			models = append(models, k)
		}
		count[k]++
	}
	parts := make([]string, len(models))
	for i, m := range models {
		parts[i] = fmt.Sprintf("%d × %s", count[m], m)
	}
	s := strings.Join(parts, ", ")
	if d := devs[0]; d.Driver != "" {
		s += ", driver " + d.Driver
	}
	if d := devs[0]; d.CUDAVersion != "" {
		s += ", CUDA " + d.CUDAVersion
	}
	return s
}
