package agent

import (
	"reflect"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/amld/amld/api"
)

// TestDockerHostConfigHandsGPUsAsNvidiaDeviceRequest checks what the docker
// runtime asks of the engine for a GPU attempt (no GPU here: the request is
// what can be checked).
func TestDockerHostConfigHandsGPUsAsNvidiaDeviceRequest(t *testing.T) {
	d := &DockerRuntime{ncpu: 16}
	spec := Spec{
		Dir: "/work/runs/r/1/0",
		Allocation: api.Allocation{
			NodeID:    "n-1",
			Resources: api.Resources{CPUs: 4, MemoryMB: 2048, GPUs: 2},
			GPUUUIDs:  []string{"GPU-aaaa", "GPU-bbbb"},
		},
	}
	hc := d.hostConfig(spec)
	want := []container.DeviceRequest{{Driver: "nvidia", DeviceIDs: []string{"GPU-aaaa", "GPU-bbbb"}, Capabilities: [][]string{{"gpu"}}}}
	if !reflect.DeepEqual(hc.DeviceRequests, want) {
		t.Errorf("device requests = %+v, want %+v", hc.DeviceRequests, want)
	}
	if hc.NanoCPUs != 4e9 || hc.Memory != 2048<<20 || hc.MemorySwap != hc.Memory {
		t.Errorf("limits: cpus %d memory %d swap %d", hc.NanoCPUs, hc.Memory, hc.MemorySwap)
	}
	spec.Allocation.GPUUUIDs = nil
	if hc := d.hostConfig(spec); hc.DeviceRequests != nil {
		t.Errorf("a CPU attempt got device requests %+v", hc.DeviceRequests)
	}
}
