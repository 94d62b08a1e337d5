package raftstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/amld/amld/api"
)

// BenchmarkApplySubmit measures RunSubmit commits through a real
// single-server Store: raft-boltdb with fsync on, a loopback transport.
// "sequential" is one proposer; "parallel64" is 64 proposers at once (raft
// batches their entries into shared fsyncs).
func BenchmarkApplySubmit(b *testing.B) {
	for _, proposers := range []int{1, 64} {
		name := "sequential"
		if proposers > 1 {
			name = fmt.Sprintf("parallel%d", proposers)
		}
		b.Run(name, func(b *testing.B) {
			s := openLeader(b, testConfig(b, b.TempDir(), freeAddr(b)))
			ctx := context.Background()
			if _, err := s.Apply(ctx, MsgTargetCreate, &TargetCreateRequest{Target: &api.Target{
				TargetSpec: api.TargetSpec{Name: "cpu", Type: api.KindCluster, MaxNodes: 4}}}); err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			submit := func() error {
				id := fmt.Sprintf("r-%d", next.Add(1))
				_, err := s.Apply(ctx, MsgRunSubmit, &RunSubmitRequest{Run: &api.Run{
					ID:      id,
					RunSpec: api.RunSpec{Target: "cpu", Command: []string{"python", "train.py", "--epochs", "10"}, NodeCount: 1},
					Owner:   "alice", Request: half, SubmittedAt: t0,
				}})
				return err
			}
			b.ResetTimer()
			var wg sync.WaitGroup
			var left atomic.Int64
			left.Store(int64(b.N))
			errs := make(chan error, proposers)
			for range proposers {
				wg.Go(func() {
					for left.Add(-1) >= 0 {
						if err := submit(); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "applies/s")
		})
	}
}
