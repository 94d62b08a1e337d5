package integration

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// BenchmarkScaleFromZero measures, on the local provider, the time from a
// submit to a cluster with no nodes until the run's first output line is
// readable through the API: node creation, agent start and registration,
// placement, process start and log shipping included.
func BenchmarkScaleFromZero(b *testing.B) {
	h := startHead(b)
	c := h.client()
	const trials = 10
	for range b.N {
		var lat []time.Duration
		for i := range trials {
			name := fmt.Sprintf("sfz-%d-%d", b.N, i)
			if _, err := c.CreateTarget(context.Background(), api.TargetSpec{Name: name, VMSize: "cpu-2", MaxNodes: 1, IdleSecondsBeforeScaledown: intp(0)}); err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			r, err := c.SubmitRun(context.Background(), api.RunSpec{Target: name, Command: []string{"sh", "-c", "echo first; sleep 1"}})
			if err != nil {
				b.Fatal(err)
			}
			var idx uint64
			for {
				lc, err := c.Logs(context.Background(), r.ID, api.LogQuery{Attempt: 1, Wait: api.Wait{Index: max(idx, 1), Wait: 10 * time.Second}})
				if err != nil {
					b.Fatal(err)
				}
				if len(lc.Data) > 0 {
					break
				}
				idx = lc.Index
				if time.Since(t0) > 30*time.Second {
					b.Fatal("no output within 30s")
				}
			}
			lat = append(lat, time.Since(t0))
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	}
}
