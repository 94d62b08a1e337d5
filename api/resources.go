package api

import "fmt"

// Resources is an amount of a node's capacity: whole CPUs, memory in MiB, and
// a number of GPUs.
type Resources struct {
	CPUs     int   `json:"cpus"`
	MemoryMB int64 `json:"memory_mb"`
	GPUs     int   `json:"gpus"`
}

// Fits reports whether r fits within free.
func (r Resources) Fits(free Resources) bool {
	return r.CPUs <= free.CPUs && r.MemoryMB <= free.MemoryMB && r.GPUs <= free.GPUs
}

// Add returns r + o.
func (r Resources) Add(o Resources) Resources {
	return Resources{CPUs: r.CPUs + o.CPUs, MemoryMB: r.MemoryMB + o.MemoryMB, GPUs: r.GPUs + o.GPUs}
}

// Sub returns r - o.
func (r Resources) Sub(o Resources) Resources {
	return Resources{CPUs: r.CPUs - o.CPUs, MemoryMB: r.MemoryMB - o.MemoryMB, GPUs: r.GPUs - o.GPUs}
}

// IsZero reports whether r asks for nothing.
func (r Resources) IsZero() bool { return r == Resources{} }

// String formats r the way the CLI shows it.
func (r Resources) String() string {
	s := fmt.Sprintf("%d cpu, %d MiB", r.CPUs, r.MemoryMB)
	if r.GPUs > 0 {
		s += fmt.Sprintf(", %d gpu", r.GPUs)
	}
	return s
}

// VMSize is an entry of the vm_size catalogue: the shape of every node of a
// cluster.
type VMSize struct {
	Name     string  `json:"name"`
	CPUs     int     `json:"cpus"`
	MemoryGB float64 `json:"memory_gb"`
	GPUs     int     `json:"gpus"`
	GPUModel string  `json:"gpu_model,omitempty"`
}

// Resources is the capacity of one node of this size.
func (s VMSize) Resources() Resources {
	return Resources{CPUs: s.CPUs, MemoryMB: int64(s.MemoryGB * 1024), GPUs: s.GPUs}
}

// GPU is one device found on a node.
type GPU struct {
	Index       int    `json:"index"`
	UUID        string `json:"uuid"`
	Model       string `json:"model"`
	MemoryMB    int64  `json:"memory_mb"`
	Driver      string `json:"driver_version,omitempty"`
	CUDAVersion string `json:"cuda_version,omitempty"`
}
