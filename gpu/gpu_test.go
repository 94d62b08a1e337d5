package gpu

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
)

func TestVisibleDevicesEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		uuids   []string
		hasGPUs bool
		want    []string
	}{
		{"two devices", []string{"GPU-a", "GPU-b"}, true,
			[]string{"CUDA_VISIBLE_DEVICES=GPU-a,GPU-b", "NVIDIA_VISIBLE_DEVICES=GPU-a,GPU-b"}},
		{"none on a GPU node hides them", nil, true,
			[]string{"CUDA_VISIBLE_DEVICES=", "NVIDIA_VISIBLE_DEVICES=void"}},
		{"none on a CPU node sets nothing", nil, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := VisibleDevicesEnv(tc.uuids, tc.hasGPUs); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDockerDeviceRequestNamesTheDevicesForTheNvidiaDriver(t *testing.T) {
	uuids := []string{"GPU-11111111-2222-3333-4444-555555555555", "GPU-66666666-7777-8888-9999-000000000000"}
	reqs := DeviceRequests(uuids)
	if len(reqs) != 1 {
		t.Fatalf("%d device requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Driver != "nvidia" {
		t.Errorf("driver %q, want nvidia", r.Driver)
	}
	if !slices.Equal(r.DeviceIDs, uuids) {
		t.Errorf("device IDs %v, want %v", r.DeviceIDs, uuids)
	}
	// Docker refuses a request with both a count and device IDs.
	if r.Count != 0 {
		t.Errorf("count %d, want 0 with device IDs", r.Count)
	}
	if !reflect.DeepEqual(r.Capabilities, [][]string{{"gpu"}}) {
		t.Errorf("capabilities %v, want [[gpu]]", r.Capabilities)
	}
	uuids[0] = "changed"
	if r.DeviceIDs[0] == "changed" {
		t.Error("the request shares the caller's slice")
	}
	if got := DeviceRequests(nil); got != nil {
		t.Errorf("no devices gave %v, want no request", got)
	}
}

func TestFakeReturnsItsListAndError(t *testing.T) {
	boom := errors.New("boom")
	f := &Fake{List: []Device{{UUID: "GPU-x"}}, Err: boom}
	devs, err := f.Devices(context.Background())
	if len(devs) != 1 || !errors.Is(err, boom) {
		t.Fatalf("got %v, %v", devs, err)
	}
	devs[0].UUID = "changed"
	if f.List[0].UUID != "GPU-x" {
		t.Error("Devices returned the fake's own slice")
	}
}

func TestCUDAVersionFormat(t *testing.T) {
	for in, want := range map[int]string{12040: "12.4", 11080: "11.8", 13000: "13.0", 0: ""} {
		if got := cudaVersion(in); got != want {
			t.Errorf("cudaVersion(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestSummary(t *testing.T) {
	if got := Summary(nil); got != "no GPUs" {
		t.Errorf("Summary(nil) = %q", got)
	}
	devs := []Device{{Model: "A", MemoryMB: 1}, {Model: "B", MemoryMB: 2}, {Model: "A", MemoryMB: 1}}
	if got := Summary(devs); got != "2 × A (1 MiB), 1 × B (2 MiB)" {
		t.Errorf("Summary = %q", got)
	}
}
