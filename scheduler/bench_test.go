package scheduler

import (
	"fmt"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// benchState is 1,000 idle cpu-8 nodes of one target and 10,000 queued
// single-node runs of 1 cpu, 2048 MiB with mixed priorities: 8,000 fit.
func benchState() *State {
	st := state([]*api.Target{cluster(cc, "cpu-8", 1000)}, nil)
	for i := range 1000 {
		st.Nodes = append(st.Nodes, node(fmt.Sprintf("n%04d", i), cc, "cpu-8", api.NodeIdle))
	}
	for i := range 10000 {
		st.Runs = append(st.Runs, queued(fmt.Sprintf("r%05d", i), cc, (i*7919)%5, uint64(i+1), res(1, 2048, 0), 1))
	}
	return st
}

func BenchmarkSchedule(b *testing.B) {
	st := benchState()
	placements := 0
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		placements += len(Schedule(st).Placements)
	}
	elapsed := time.Since(start).Seconds()
	if want := 8000 * b.N; placements != want {
		b.Fatalf("%d placements, want %d", placements, want)
	}
	b.ReportMetric(float64(placements)/elapsed, "placements/s")
}

// BenchmarkScheduleFragmented is the worst case for the node scan: free
// cpus and free memory sit on different nodes, so no run fits although
// every node has something free, and two small runs at the back of the
// queue keep every node worth trying.
func BenchmarkScheduleFragmented(b *testing.B) {
	st := benchState()
	for i, n := range st.Nodes {
		n.State = api.NodeRunning
		held := res(7, 32768, 0)
		if i%2 == 0 {
			held = res(8, 30720, 0)
		}
		st.Runs = append(st.Runs, running(fmt.Sprintf("l%04d", i), cc, 0, held, 1, n.ID))
	}
	st.Runs = append(st.Runs, queued("cpu-only", cc, -1, 1, res(1, 0, 0), 1), queued("mem-only", cc, -1, 2, res(0, 2048, 0), 1))
	b.ReportAllocs()
	for b.Loop() {
		if p := Schedule(st); len(p.Placements) != 2 {
			b.Fatalf("%d placements, want the 2 small runs", len(p.Placements))
		}
	}
}

// BenchmarkScheduleBacklog is a burst of submits into a full cluster: one
// node running two runs, and 20,000 queued runs that cannot start, each
// already showing the reason the round gives it (the steady state of the
// scheduling loop while a backlog drains).
func BenchmarkScheduleBacklog(b *testing.B) {
	st := state([]*api.Target{cluster(cc, "cpu-2", 1)}, []*api.Node{node("n0", cc, "cpu-2", api.NodeRunning)},
		running("l0", cc, 0, res(1, 64, 0), 1, "n0"), running("l1", cc, 0, res(1, 64, 0), 2, "n0"))
	for i := range 20000 {
		st.Runs = append(st.Runs, queued(fmt.Sprintf("r%05d", i), cc, 0, uint64(i+1), res(1, 64, 0), 1))
	}
	why := map[string]string{}
	for _, w := range Schedule(st).Reasons {
		why[w.RunID] = w.Reason
	}
	for _, r := range st.Runs {
		if w, ok := why[r.ID]; ok {
			r.Reason = w
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if p := Schedule(st); len(p.Placements) != 0 || len(p.Reasons) != 0 {
			b.Fatalf("%d placements and %d new reasons, want none", len(p.Placements), len(p.Reasons))
		}
	}
}
