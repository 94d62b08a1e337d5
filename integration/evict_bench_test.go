package integration

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// BenchmarkEvictionToNextAttempt measures, on the local provider, the time
// from a simulated eviction of the only node of a lowpriority cluster
// (max_nodes 1) to the run's next attempt running on a new node, over 20
// evictions; it also reports how long the new nodes took to start (from
// the head's record to the agent's registration).
func BenchmarkEvictionToNextAttempt(b *testing.B) {
	const evictions = 20
	h := startHead(b)
	c := h.client()
	if _, err := c.CreateTarget(ctx(b), api.TargetSpec{
		Name: "bench", VMSize: "cpu-2", MaxNodes: 1, VMPriority: api.VMPriorityLowPriority, IdleSecondsBeforeScaledown: intp(60),
	}); err != nil {
		b.Fatal(err)
	}
	s := trainRun("bench", trainSource(b, c), 1000000, 0.05, false)
	many := 1000
	s.MaxPreemptions = &many
	id := submitAll(b, c, s)[0]
	var total, stop, nodeStart, afterNode []time.Duration
	b.ResetTimer()
	for range b.N {
		for i := 1; i <= evictions; i++ {
			r := waitAttemptRunning(b, c, id, i, time.Minute)
			old := r.Attempts[i-1].Allocations[0].NodeID
			t0 := time.Now()
			if _, err := c.SimulateEviction(context.Background(), "bench", api.EvictionRequest{NodeID: old}); err != nil {
				b.Fatal(err)
			}
			r = waitAttemptRunning(b, c, id, i+1, time.Minute)
			next := r.Attempts[i]
			if next.Allocations[0].NodeID == old {
				b.Fatalf("attempt %d ran on the evicted node", i+1)
			}
			total = append(total, next.StartedAt.Sub(t0))
			stop = append(stop, r.Attempts[i-1].EndedAt.Sub(t0))
			ns, err := c.ListNodes(context.Background(), "bench")
			if err != nil {
				b.Fatal(err)
			}
			for _, n := range ns {
				if n.ID == next.Allocations[0].NodeID {
					nodeStart = append(nodeStart, n.RegisteredAt.Sub(n.CreatedAt))
					afterNode = append(afterNode, next.StartedAt.Sub(n.RegisteredAt))
				}
			}
		}
	}
	b.StopTimer()
	med := func(ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[len(s)/2]
	}
	p90 := func(ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[len(s)*9/10]
	}
	b.ReportMetric(float64(med(total).Milliseconds()), "median-ms")
	b.ReportMetric(float64(p90(total).Milliseconds()), "p90-ms")
	b.ReportMetric(float64(med(nodeStart).Milliseconds()), "node-start-median-ms")
	b.Logf("eviction -> next attempt running on a new node, %d evictions: median %s, p90 %s, max %s",
		len(total), med(total), p90(total), slices.Max(total))
	b.Logf("  of which: eviction -> old attempt ended (SIGTERM, final checkpoint, report): median %s", med(stop))
	b.Logf("  new node: created -> agent registered: median %s; registered -> attempt running: median %s",
		med(nodeStart), med(afterNode))
}
