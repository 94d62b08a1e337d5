package scheduler

import (
	"fmt"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// gpuBenchState is 1,000 idle gpu-8 nodes and 5,000 queued runs of 2 GPUs:
// 4,000 fit, handed out by UUID.
func gpuBenchState() *State {
	st := state([]*api.Target{cluster("gpu", "gpu-8", 1000)}, nil)
	for i := range 1000 {
		st.Nodes = append(st.Nodes, node(fmt.Sprintf("g%04d", i), "gpu", "gpu-8", api.NodeIdle))
	}
	for i := range 5000 {
		st.Runs = append(st.Runs, queued(fmt.Sprintf("r%05d", i), "gpu", 0, uint64(i+1), res(1, 1024, 2), 1))
	}
	return st
}

func benchGPU(b *testing.B, st *State, want int) {
	placements := 0
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		placements += len(Schedule(st).Placements)
	}
	if placements != want*b.N {
		b.Fatalf("%d placements, want %d", placements, want*b.N)
	}
	b.ReportMetric(float64(placements)/time.Since(start).Seconds(), "placements/s")
}

func BenchmarkScheduleGPUs(b *testing.B) { benchGPU(b, gpuBenchState(), 4000) }

// BenchmarkScheduleSharedGPUs is the local provider's case at scale: 100
// machines of 8 GPUs, each with 10 one-GPU nodes that all list their
// machine's 8 devices; 1,000 runs of 1 GPU, of which 800 fit.
func BenchmarkScheduleSharedGPUs(b *testing.B) {
	st := state([]*api.Target{cluster("gpu", "gpu-4", 1000)}, nil)
	for m := range 100 {
		var uuids []string
		for g := range 8 {
			uuids = append(uuids, fmt.Sprintf("m%03d-g%d", m, g))
		}
		for k := range 10 {
			st.Nodes = append(st.Nodes, localGPUNode(fmt.Sprintf("m%03d-n%d", m, k), "gpu", uuids...))
		}
	}
	for i := range 1000 {
		st.Runs = append(st.Runs, queued(fmt.Sprintf("r%05d", i), "gpu", 0, uint64(i+1), res(1, 1024, 1), 1))
	}
	benchGPU(b, st, 800)
}
