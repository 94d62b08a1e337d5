package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// chaosConfig shapes a chaos run: runs of the example training job on a
// lowpriority cluster while a driver evicts a random busy node every
// evictMin..evictMax, for driveFor.
type chaosConfig struct {
	runs, nodes, epochs  int
	epochSec             float64
	evictMin, evictMax   time.Duration
	driveFor             time.Duration
	checkpoint           bool
	seed                 uint64
	deadline             time.Duration // for all runs to finish
	checkResumes, verify bool
}

// chaosResult holds the figures of a chaos run.
type chaosResult struct {
	evictions, restarts int
	// attemptTime sums every attempt's running time; work is what the runs
	// needed (runs x epochs x epochSec).
	attemptTime, work time.Duration
	// epochsRun counts epochs computed over all attempts (epochs redone
	// after a restart count again); epochsNeeded is runs x epochs.
	epochsRun, epochsNeeded int
	elapsed                 time.Duration
}

func (r chaosResult) String() string {
	waste := r.attemptTime - r.work
	return fmt.Sprintf("evictions %d, restarts %d, attempt time %.1fs for %.1fs of work (wasted %.1fs, %.0f%%), epochs run %d for %d needed, wall %.1fs",
		r.evictions, r.restarts, r.attemptTime.Seconds(), r.work.Seconds(), waste.Seconds(),
		100*waste.Seconds()/r.work.Seconds(), r.epochsRun, r.epochsNeeded, r.elapsed.Seconds())
}

// runChaos runs the scenario on a fresh head and checks what it must.
func runChaos(t testing.TB, cfg chaosConfig) chaosResult {
	h := startHead(t)
	c := h.client()
	if _, err := c.CreateTarget(ctx(t), api.TargetSpec{
		Name: "chaos", VMSize: "cpu-2", MaxNodes: cfg.nodes, VMPriority: api.VMPriorityLowPriority,
		IdleSecondsBeforeScaledown: intp(60),
	}); err != nil {
		t.Fatal(err)
	}
	src := trainSource(t, c)
	many := 1000
	var ids []string
	for i := range cfg.runs {
		s := trainRun("chaos", src, cfg.epochs, cfg.epochSec, !cfg.checkpoint)
		s.Resources = &api.Resources{CPUs: 1, MemoryMB: 1024}
		s.MaxPreemptions = &many
		s.DisplayName = fmt.Sprintf("chaos-%d", i)
		ids = append(ids, submitAll(t, c, s)...)
	}
	start := time.Now()

	// The driver: evict a random busy node every evictMin..evictMax.
	dctx, stopDriver := context.WithTimeout(context.Background(), cfg.driveFor)
	defer stopDriver()
	var res chaosResult
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(cfg.seed, 6))
		for {
			wait := cfg.evictMin + time.Duration(rng.Int64N(int64(cfg.evictMax-cfg.evictMin)+1))
			select {
			case <-dctx.Done():
				return
			case <-time.After(wait):
			}
			ns, err := c.ListNodes(dctx, "chaos")
			if err != nil {
				continue
			}
			var busy []string
			for _, n := range ns {
				if n.State == api.NodeRunning && len(n.Runs) > 0 {
					busy = append(busy, n.ID)
				}
			}
			if len(busy) == 0 {
				continue
			}
			victim := busy[rng.IntN(len(busy))]
			if _, err := c.SimulateEviction(dctx, "chaos", api.EvictionRequest{NodeID: victim}); err == nil {
				res.evictions++
			}
		}
	}()
	runs := waitTerminal(t, c, cfg.deadline, ids)
	res.elapsed = time.Since(start)
	stopDriver()
	wg.Wait()

	res.work = time.Duration(float64(cfg.runs*cfg.epochs) * cfg.epochSec * float64(time.Second))
	res.epochsNeeded = cfg.runs * cfg.epochs
	for _, id := range ids {
		r := runs[id]
		if cfg.verify {
			completedOnce(t, r)
			checkNoOverlap(t, r)
		}
		res.restarts += len(r.Attempts) - 1
		best := 0 // the furthest epoch any earlier attempt printed
		for _, a := range r.Attempts {
			if !a.StartedAt.IsZero() && !a.EndedAt.IsZero() {
				res.attemptTime += a.EndedAt.Sub(a.StartedAt)
			}
			if a.StartedAt.IsZero() {
				continue // stopped before its command started
			}
			log := attemptLog(t, c, id, a.Number)
			from := max(resumedAt(log), 0)
			last := lastEpoch(log)
			res.epochsRun += max(last-from, 0)
			if cfg.checkResumes && a.Number > 1 && best >= 2 && resumedAt(log) < best-1 {
				t.Errorf("run %s attempt %d resumed from epoch %d; earlier attempts had reached epoch %d:\n%s",
					id, a.Number, resumedAt(log), best, log)
			}
			best = max(best, last)
		}
	}
	return res
}

// TestChaosEvictionsLoseNothing is the chaos test: 40 runs of the example
// training job (10 epochs of about a second, a checkpoint after each) on a
// 4-node lowpriority cluster (two runs per node), while a driver evicts a
// random busy node every 2 to 5 s for a minute. Every run completes exactly
// once, no two attempts of a run overlap, and every resumed attempt starts
// from its checkpoint.
func TestChaosEvictionsLoseNothing(t *testing.T) {
	res := runChaos(t, chaosConfig{
		runs: 40, nodes: 4, epochs: 10, epochSec: 1,
		evictMin: 2 * time.Second, evictMax: 5 * time.Second, driveFor: time.Minute,
		checkpoint: true, seed: 1, deadline: 4 * time.Minute, checkResumes: true, verify: true,
	})
	if res.evictions < 5 {
		t.Errorf("only %d evictions happened: the scenario did not stress anything", res.evictions)
	}
	t.Logf("chaos figures: %s", res)
}

// BenchmarkChaosWastedWork runs the chaos scenario with and without
// checkpoints and reports the wasted attempt time (make bench).
func BenchmarkChaosWastedWork(b *testing.B) {
	for _, ck := range []bool{true, false} {
		name := "checkpoints"
		if !ck {
			name = "no-checkpoints"
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				res := runChaos(b, chaosConfig{
					runs: 40, nodes: 4, epochs: 10, epochSec: 1,
					evictMin: 2 * time.Second, evictMax: 5 * time.Second, driveFor: time.Minute,
					checkpoint: ck, seed: 1, deadline: 8 * time.Minute,
				})
				b.ReportMetric(res.attemptTime.Seconds(), "attempt-s")
				b.ReportMetric((res.attemptTime - res.work).Seconds(), "wasted-s")
				b.ReportMetric(float64(res.evictions), "evictions")
				b.ReportMetric(float64(res.restarts), "restarts")
				b.ReportMetric(float64(res.epochsRun-res.epochsNeeded), "epochs-redone")
				b.Logf("%s: %s", name, res)
			}
		})
	}
}
