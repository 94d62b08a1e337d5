package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// BenchmarkSubmitHTTP measures submits through the HTTP API on one head with
// fsync on (raft-boltdb's default): the latency of sequential submits (p50,
// p99) and the throughput of 64 concurrent clients. The cluster's nodes are
// never made (fake provider), so runs stay queued, as in a busy system.
func BenchmarkSubmitHTTP(b *testing.B) {
	ts := startTestServer(b)
	ctx := context.Background()
	if _, err := ts.client.CreateTarget(ctx, api.TargetSpec{Name: "bench", VMSize: "cpu-2", MaxNodes: 1}); err != nil {
		b.Fatal(err)
	}
	ts.prov.failErr = fmt.Errorf("no machines in benchmarks")
	spec := api.RunSpec{Target: "bench", Command: []string{"python3", "train.py"}, Resources: &api.Resources{CPUs: 1}}
	const sequential = 2000
	const concurrent, clients = 20000, 64
	for range b.N {
		lat := make([]time.Duration, 0, sequential)
		for range sequential {
			t0 := time.Now()
			if _, err := ts.client.SubmitRun(ctx, spec); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")

		var next atomic.Int64
		var wg sync.WaitGroup
		clat := make([][]time.Duration, clients)
		t0 := time.Now()
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= concurrent {
					s := time.Now()
					if _, err := ts.client.SubmitRun(ctx, spec); err != nil {
						b.Error(err)
						return
					}
					clat[c] = append(clat[c], time.Since(s))
				}
			}()
		}
		wg.Wait()
		el := time.Since(t0)
		all := slices.Concat(clat...)
		slices.Sort(all)
		b.ReportMetric(float64(concurrent)/el.Seconds(), "submits/s@64")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms@64")
	}
}

// BenchmarkSubmitHandler is what the head itself allocates for one submit:
// 64 goroutines call the API's handler (access log and forwarding
// included) on one head with fsync on, without a network or a client in
// between. B/op and allocs/op are per submit, Raft and the state machine
// included; they drive how often the leader collects garbage under a
// burst, and each collection is a bunch of slow submits (BENCHMARKS.md).
func BenchmarkSubmitHandler(b *testing.B) {
	ts := startTestServer(b)
	if _, err := ts.client.CreateTarget(context.Background(), api.TargetSpec{Name: "bench", VMSize: "cpu-2", MaxNodes: 1}); err != nil {
		b.Fatal(err)
	}
	ts.prov.failErr = fmt.Errorf("no machines in benchmarks")
	h, token := ts.srv.http.Handler, "Bearer "+ts.token
	const body = `{"target":"bench","command":["python3","train.py"],"resources":{"cpus":1}}`
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/v1/runs", strings.NewReader(body))
			req.Header.Set("Authorization", token)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusCreated {
				b.Fatalf("submit: %d %s", rec.Code, rec.Body)
			}
		}
	})
}
