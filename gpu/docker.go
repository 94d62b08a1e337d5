package gpu

import (
	"slices"

	"github.com/docker/docker/api/types/container"
)

// DockerDriver is the device driver of the NVIDIA container toolkit.
const DockerDriver = "nvidia"

// DeviceRequests is what the docker runtime puts in a container's
// HostConfig.DeviceRequests to hand it the devices uuids: one request for
// the nvidia driver naming the devices by UUID, with the gpu capability
// (what `docker run --gpus '"device=UUID,..."'` sends). No uuids, no
// request: the container sees no GPU.
func DeviceRequests(uuids []string) []container.DeviceRequest {
	if len(uuids) == 0 {
		return nil
	}
	return []container.DeviceRequest{{
		Driver:       DockerDriver,
		DeviceIDs:    slices.Clone(uuids),
		Capabilities: [][]string{{"gpu"}},
	}}
}
