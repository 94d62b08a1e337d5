//go:build cgo

package gpu

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
)

func TestNVMLInventoryReadsEveryDeviceOfAMockDGX(t *testing.T) {
	srv := dgxa100.New()
	devs, err := FromNVML(srv).Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 8 {
		t.Fatalf("found %d GPUs, want 8", len(devs))
	}
	seen := map[string]bool{}
	for i, d := range devs {
		want, _ := srv.Devices[i].GetUUID()
		switch {
		case d.Index != i:
			t.Errorf("device %d has index %d", i, d.Index)
		case d.UUID != want || !strings.HasPrefix(d.UUID, "GPU-"):
			t.Errorf("device %d UUID %q, want %q", i, d.UUID, want)
		case d.Model != "Mock NVIDIA A100-SXM4-40GB":
			t.Errorf("device %d model %q", i, d.Model)
		case d.MemoryMB != 40960:
			t.Errorf("device %d memory %d MiB, want 40960", i, d.MemoryMB)
		case d.Driver != "550.54.15" || d.CUDAVersion != "12.4":
			t.Errorf("device %d driver %q CUDA %q, want 550.54.15 and 12.4", i, d.Driver, d.CUDAVersion)
		}
		if seen[d.UUID] {
			t.Errorf("UUID %s reported twice", d.UUID)
		}
		seen[d.UUID] = true
	}
	if got := Summary(devs); got != "8 × Mock NVIDIA A100-SXM4-40GB (40960 MiB), driver 550.54.15, CUDA 12.4" {
		t.Errorf("Summary = %q", got)
	}
}

func TestNVMLInventoryReadsH100Memory(t *testing.T) {
	devs, err := FromNVML(dgxh100.New()).Devices(context.Background())
	if err != nil || len(devs) != 8 {
		t.Fatalf("devices %d, err %v", len(devs), err)
	}
	if !strings.Contains(devs[0].Model, "H100") || devs[0].MemoryMB < 80000 {
		t.Errorf("first device %+v, want an H100 with 80 GB", devs[0])
	}
}

func TestNVMLWithoutTheLibraryReportsNoGPUs(t *testing.T) {
	inv := NewNVML(filepath.Join(t.TempDir(), "libnvidia-ml.so.1"))
	devs, err := inv.Devices(context.Background())
	if len(devs) != 0 {
		t.Fatalf("found %d GPUs without a library", len(devs))
	}
	if !errors.Is(err, ErrNoLibrary) || !Unavailable(err) {
		t.Fatalf("err = %v, want ErrNoLibrary", err)
	}
	if !strings.Contains(err.Error(), "libnvidia-ml.so.1") {
		t.Errorf("error %q does not name the library", err)
	}
}

func TestNVMLDriverNotLoadedIsUnavailable(t *testing.T) {
	srv := dgxa100.New()
	srv.InitFunc = func() nvml.Return { return nvml.ERROR_DRIVER_NOT_LOADED }
	_, err := FromNVML(srv).Devices(context.Background())
	if !errors.Is(err, ErrNoDriver) || !Unavailable(err) {
		t.Fatalf("err = %v, want ErrNoDriver", err)
	}
}

func TestNVMLKeepsTheDevicesThatAnswer(t *testing.T) {
	srv := dgxa100.New()
	lost := srv.Devices[3].(*dgxa100.Device)
	lost.GetUUIDFunc = func() (string, nvml.Return) { return "", nvml.ERROR_GPU_IS_LOST }
	devs, err := FromNVML(srv).Devices(context.Background())
	if len(devs) != 7 {
		t.Fatalf("found %d GPUs, want the 7 that answer", len(devs))
	}
	if err == nil || Unavailable(err) || !strings.Contains(err.Error(), "GPU 3") {
		t.Fatalf("err = %v, want one naming GPU 3", err)
	}
}

func TestNewMockIsAnNGPUMachine(t *testing.T) {
	devs, err := NewMock(3).Devices(context.Background())
	if err != nil || len(devs) != 3 {
		t.Fatalf("devices %v, err %v", devs, err)
	}
	other, _ := NewMock(3).Devices(context.Background())
	if devs[0].UUID == other[0].UUID {
		t.Errorf("two mocks share UUID %s", devs[0].UUID)
	}
}
