package raftstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// BenchmarkApplySubmit measures RunSubmit commits through a real
// single-server Store: raft-boltdb with fsync on, a loopback transport.
// "sequential" is one proposer; "parallel64" is 64 proposers at once (raft
// batches their entries into shared fsyncs); "3servers-tls-" is the same
// against a leader with two followers over the TLS transport, all in this
// process; "-nobatch" is without batch entries (group commit off, as
// before every head of a cluster applies them).
func BenchmarkApplySubmit(b *testing.B) {
	for _, c := range []struct {
		proposers, servers int
		nobatch            bool
	}{{1, 1, false}, {64, 1, true}, {64, 1, false}, {1, 3, false}, {64, 3, true}, {64, 3, false}} {
		name := "sequential"
		if c.proposers > 1 {
			name = fmt.Sprintf("parallel%d", c.proposers)
		}
		if c.servers > 1 {
			name = fmt.Sprintf("%dservers-tls-%s", c.servers, name)
		}
		if c.nobatch {
			name += "-nobatch"
		}
		proposers := c.proposers
		b.Run(name, func(b *testing.B) {
			s := openBenchCluster(b, c.servers)
			s.SetBatching(!c.nobatch)
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
			applyInParallel(b, proposers, submit)
		})
	}
}

// applyInParallel times b.N calls of apply made by n goroutines at once
// and reports applies/s; the first error fails the benchmark.
func applyInParallel(b *testing.B, n int, apply func() error) {
	b.ResetTimer()
	var wg sync.WaitGroup
	var left atomic.Int64
	left.Store(int64(b.N))
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				if err := apply(); err != nil {
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
}

// openBenchCluster starts servers stores (one alone on plain TCP, or
// several on TLS with the first the leader) and returns the leader.
func openBenchCluster(b *testing.B, servers int) *Store {
	if servers == 1 {
		return openLeader(b, testConfig(b, b.TempDir(), freeAddr(b)))
	}
	var ids []string
	for i := range servers {
		ids = append(ids, fmt.Sprintf("s%d", i+1))
	}
	tc := testPeerTLS(b, ids...)
	var leader *Store
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i, id := range ids {
		cfg := testConfig(b, b.TempDir(), freeAddr(b))
		cfg.ID, cfg.Bootstrap, cfg.TLS = id, i == 0, tc[id]
		d := DefaultConfig()
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = d.HeartbeatTimeout, d.ElectionTimeout, d.LeaderLeaseTimeout
		if i == 0 {
			leader = openLeader(b, cfg)
			continue
		}
		s, err := Open(cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		if err := leader.AddVoter(ctx, s.ID(), s.RaftAddr()); err != nil {
			b.Fatal(err)
		}
	}
	return leader
}
