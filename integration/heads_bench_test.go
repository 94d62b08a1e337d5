package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// The multi-head benchmarks (BENCHMARKS.md). Each runs its measurement
// once, whatever b.N is: `make bench` runs them with -benchtime 1x.

// benchFlags are extra head flags from AMLD_BENCH_HEAD_FLAGS (space
// separated), to compare Raft timeouts.
func benchFlags() []string { return strings.Fields(os.Getenv("AMLD_BENCH_HEAD_FLAGS")) }

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// BenchmarkHeadsFailover: kill -9 of the leader to the next acknowledged
// submit that was sent after the kill, over 10 trials. Four clients
// submit without pause, each starting at a different head.
func BenchmarkHeadsFailover(b *testing.B) {
	c := startCluster(b, 3, benchFlags()...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := c.client().CreateTarget(ctx, api.TargetSpec{Name: "bench", VMSize: "cpu-2", MaxNodes: 1}); err != nil {
		b.Fatal(err)
	}
	var firstAck atomic.Int64 // unix nanos of the first ack of a submit sent after killedAt
	var killedAt atomic.Int64
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range 4 {
		var heads []*nhead
		for j := range c.heads {
			heads = append(heads, c.heads[(i+j)%3])
		}
		cl := c.client(heads...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sctx.Err() == nil {
				sent := time.Now().UnixNano()
				_, err := cl.SubmitRun(sctx, api.RunSpec{Target: "bench", Command: []string{"true"}, Resources: &api.Resources{CPUs: 1, MemoryMB: 64}})
				if err == nil && killedAt.Load() != 0 && sent > killedAt.Load() {
					firstAck.CompareAndSwap(0, time.Now().UnixNano())
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	var trials []time.Duration
	for trial := range 10 {
		old := c.leader()
		time.Sleep(500 * time.Millisecond)
		firstAck.Store(0)
		t0 := time.Now()
		killedAt.Store(t0.UnixNano())
		old.kill9()
		waitFor(b, time.Minute, "an acknowledged submit", func() (bool, string) { return firstAck.Load() != 0, "" })
		d := time.Duration(firstAck.Load() - t0.UnixNano())
		killedAt.Store(0)
		trials = append(trials, d)
		b.Logf("trial %d: killed %s, next acknowledged submit after %s", trial+1, old.id, d.Round(time.Millisecond))
		old.start()
		c.waitVoters(3)
	}
	stop()
	wg.Wait()
	b.Logf("failover over %d trials: median %s, max %s", len(trials), quantile(trials, 0.5).Round(time.Millisecond), slices.Max(trials).Round(time.Millisecond))
	b.ReportMetric(float64(quantile(trials, 0.5).Milliseconds()), "median-ms")
	b.ReportMetric(float64(slices.Max(trials).Milliseconds()), "max-ms")
}

// BenchmarkHeadsIdleElections: an idle 3-head cluster for
// AMLD_IDLE_SECONDS (default 150) must keep its leader and term.
func BenchmarkHeadsIdleElections(b *testing.B) {
	idle := 150 * time.Second
	if v, err := strconv.Atoi(os.Getenv("AMLD_IDLE_SECONDS")); err == nil && v > 0 {
		idle = time.Duration(v) * time.Second
	}
	c := startCluster(b, 3, benchFlags()...)
	leader := c.leader()
	terms := func() []uint64 {
		var out []uint64
		for _, h := range c.heads {
			st, err := c.status(h)
			if err != nil {
				b.Fatal(err)
			}
			out = append(out, st.Term)
		}
		return out
	}
	before := terms()
	// Watch the terms every 2 s and note each change with the load average,
	// to tell elections from a starved machine from others.
	last, end := before, time.Now().Add(idle)
	for time.Now().Before(end) {
		time.Sleep(2 * time.Second)
		now := terms()
		if !slices.Equal(now, last) {
			load, _ := os.ReadFile("/proc/loadavg")
			b.Logf("%s: terms %v → %v (load %s)", time.Now().Format("15:04:05"), last, now, strings.TrimSpace(string(load)))
			last = now
		}
	}
	after := terms()
	elections := 0
	for i := range before {
		elections = max(elections, int(after[i]-before[i]))
	}
	b.Logf("idle for %s: terms %v → %v, leader %s → %s", idle, before, after, leader.id, c.leader().id)
	for _, h := range c.heads {
		out := h.out.String()
		b.Logf("%s: %d lease step-downs, %d elections started on a heartbeat timeout", h.id,
			strings.Count(out, "failed to contact quorum of nodes, stepping down"),
			strings.Count(out, "heartbeat timeout reached, starting election")) // h1 has one from the bootstrap
	}
	b.ReportMetric(float64(elections), "elections")
}

// sample is one acknowledged submit: when it was sent, counted from the
// start of the measured window, and how long its answer took.
type sample struct{ at, took time.Duration }

// submitLoad runs clients goroutines submitting runs of command to target
// for d, each with a client made by mk(i), and returns the submits/s, the
// samples and the count of failed submits. Each client makes one submit
// before the window opens, so that the window starts with every
// connection open: what it measures is a burst of submits on a cluster
// already serving them, not 64 TLS handshakes at once.
func submitLoad(b *testing.B, clients int, d time.Duration, mk func(i int) *api.Client, target string, command ...string) (float64, []sample, int) {
	spec := api.RunSpec{Target: target, Command: command, Resources: &api.Resources{CPUs: 1, MemoryMB: 64}}
	warm, cancelWarm := context.WithTimeout(context.Background(), time.Minute)
	defer cancelWarm()
	var ready sync.WaitGroup
	cls := make([]*api.Client, clients)
	for i := range cls {
		cls[i] = mk(i)
		ready.Go(func() {
			if _, err := cls[i].SubmitRun(warm, spec); err != nil {
				b.Errorf("client %d, submit before the window: %v", i, err)
			}
		})
	}
	ready.Wait()
	if b.Failed() {
		b.FailNow()
	}

	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	var all []sample
	var errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, cl := range cls {
		wg.Go(func() {
			var mine []sample
			for ctx.Err() == nil {
				t0 := time.Now()
				_, err := cl.SubmitRun(ctx, spec)
				if err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				mine = append(mine, sample{at: t0.Sub(start), took: time.Since(t0)})
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return float64(len(all)) / time.Since(start).Seconds(), all, int(errs.Load())
}

// p99BySecond is the p99 of the submits sent in each second of the window,
// in milliseconds: where the slow ones bunch (a head's garbage collection
// shows as one slow second).
func p99BySecond(samples []sample) string {
	var secs [][]time.Duration
	for _, s := range samples {
		i := int(s.at / time.Second)
		for len(secs) <= i {
			secs = append(secs, nil)
		}
		secs[i] = append(secs[i], s.took)
	}
	var out []string
	for _, ds := range secs {
		out = append(out, strconv.FormatFloat(float64(quantile(ds, 0.99).Microseconds())/1000, 'f', 1, 64))
	}
	return strings.Join(out, " ")
}

// fillTarget submits two runs of command to target (a cpu-2 node's worth
// of one-CPU runs) and waits until both have started, or ended for a short
// command: the target's one node is then up, and a benchmark that follows
// does not measure its creation.
func (c *hcluster) fillTarget(b *testing.B, target string, command ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := c.client()
	var ids []string
	for range 2 {
		r, err := cl.SubmitRun(ctx, api.RunSpec{Target: target, Command: command, Resources: &api.Resources{CPUs: 1, MemoryMB: 64}})
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	for _, id := range ids {
		waitFor(b, 2*time.Minute, "run "+id+" to start", func() (bool, string) {
			r, _, err := cl.GetRun(ctx, id, api.Wait{})
			if err != nil {
				return false, err.Error()
			}
			return r.State == api.RunRunning || r.State == api.RunCompleted, r.State
		})
	}
}

// startSubmitBench starts three heads (with --enable-debug when
// AMLD_BENCH_PROFILE_DIR names where profiles go) and makes the targets
// "bench" and "busy": max_nodes 1 each, so the runs mostly queue, as in a
// burst of submits.
func startSubmitBench(b *testing.B) (*hcluster, string) {
	profDir := os.Getenv("AMLD_BENCH_PROFILE_DIR")
	flags := benchFlags()
	if profDir != "" {
		flags = append(flags, "--enable-debug")
	}
	c := startCluster(b, 3, flags...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, name := range []string{"bench", "busy"} {
		if _, err := c.client().CreateTarget(ctx, api.TargetSpec{Name: name, VMSize: "cpu-2", MaxNodes: 1}); err != nil {
			b.Fatal(err)
		}
	}
	return c, profDir
}

// BenchmarkHeadsSubmitThroughput: 64 concurrent clients submit runs over
// TLS to a 3-head cluster (fsync on) for 10 s, in three modes, each on a
// cluster of its own (so that no mode works through another's backlog).
// The window opens once the target's node is up and every client's
// connection is open (fillTarget, submitLoad).
//
//   - busy: to the leader, runs that sleep for an hour: two of them fill
//     the target's one node before the window, the rest queue. A burst
//     into a full cluster, where nothing but the submits changes.
//   - leader: to the leader, runs (`true`) that start and end two at a
//     time on the target's one node while the rest queue; the agent
//     running them shares the machine's two cores with the heads.
//   - spread: as busy, with the clients spread over the three heads
//     (followers forward their submits to the leader).
//
// With AMLD_BENCH_PROFILE_DIR set, the heads run with --enable-debug and
// each mode leaves there a 5-second CPU profile of every head and of the
// benchmark process (the clients): `go tool pprof -top bin/amld DIR/busy-h1.pprof`.
func BenchmarkHeadsSubmitThroughput(b *testing.B) {
	for _, mode := range []string{"busy", "leader", "spread"} {
		b.Run(mode, func(b *testing.B) {
			c, profDir := startSubmitBench(b)
			d := 10 * time.Second
			leader := c.leader()
			target, command := "bench", []string{"true"}
			if mode != "leader" {
				target, command = "busy", []string{"sleep", "3600"}
			}
			c.fillTarget(b, target, command...)
			if profDir != "" {
				go c.profile(b, profDir, mode, time.Second, 5*time.Second)
			}
			rate, samples, errs := submitLoad(b, 64, d, func(i int) *api.Client {
				if mode != "spread" {
					return c.client(leader)
				}
				var heads []*nhead
				for j := range c.heads {
					heads = append(heads, c.heads[(i+j)%3])
				}
				return c.client(heads...)
			}, target, command...)
			lat := make([]time.Duration, len(samples))
			for i, s := range samples {
				lat[i] = s.took
			}
			q := func(p float64) time.Duration { return quantile(lat, p).Round(10 * time.Microsecond) }
			b.Logf("%s: %.0f submits/s over %s, p50 %s, p90 %s, p99 %s, %d errors (64 clients, TLS, 3 heads); p99 by second (ms): %s",
				mode, rate, d, q(0.5), q(0.9), q(0.99), errs, p99BySecond(samples))
			b.ReportMetric(rate, "submits/s")
			b.ReportMetric(float64(quantile(lat, 0.99).Microseconds())/1000, "p99-ms")
		})
	}
	fmt.Fprintln(os.Stderr)
}

// profile waits for after, then takes a CPU profile of d from every head
// (through /v1/debug/pprof) and of this process, into dir/<mode>-<head>.pprof
// and dir/<mode>-clients.pprof. Failures are logged, not fatal.
func (c *hcluster) profile(b *testing.B, dir, mode string, after, d time.Duration) {
	time.Sleep(after)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Log(err)
		return
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.caPEM)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	var wg sync.WaitGroup
	for _, h := range c.heads {
		wg.Go(func() {
			url := fmt.Sprintf("%s/v1/debug/pprof/profile?seconds=%d", h.url(), int(d.Seconds()))
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.Header.Set("Authorization", "Bearer "+c.token)
			resp, err := hc.Do(req)
			if err != nil {
				b.Logf("profile %s: %v", h.id, err)
				return
			}
			defer resp.Body.Close()
			f, err := os.Create(filepath.Join(dir, mode+"-"+h.id+".pprof"))
			if err != nil {
				b.Log(err)
				return
			}
			defer f.Close()
			_, _ = io.Copy(f, resp.Body)
		})
	}
	if os.Getenv("AMLD_BENCH_TRACE") != "" {
		req, _ := http.NewRequest(http.MethodGet, c.leader().url()+"/v1/debug/pprof/trace?seconds=2", nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		if resp, err := hc.Do(req); err == nil {
			f, _ := os.Create(filepath.Join(dir, mode+"-leader.trace"))
			io.Copy(f, resp.Body)
			f.Close()
			resp.Body.Close()
		}
	}
	f, err := os.Create(filepath.Join(dir, mode+"-clients.pprof"))
	if err == nil {
		if err := pprof.StartCPUProfile(f); err == nil {
			time.Sleep(d)
			pprof.StopCPUProfile()
		}
		f.Close()
	}
	wg.Wait()
}

// BenchmarkHeadsSubmitLatency: one client submitting one run at a time,
// to the leader and then to a follower (forwarded; the follower answers
// once it has applied the write), 300 submits each: what amlctl sees on an
// idle cluster. It also counts the log entries written meanwhile (the
// runs start and end on the target's one node, and the scheduler and the
// agent write too).
func BenchmarkHeadsSubmitLatency(b *testing.B) {
	c, profDir := startSubmitBench(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	leader := c.leader()
	var follower *nhead
	for _, h := range c.heads {
		if h != leader {
			follower = h
			break
		}
	}
	for _, t := range []struct {
		name string
		head *nhead
	}{{"leader", leader}, {"follower", follower}} {
		cl := c.client(t.head)
		if profDir != "" {
			go c.profile(b, profDir, "latency-"+t.name, 200*time.Millisecond, time.Second)
		}
		var lat []time.Duration
		before, err := c.status(leader)
		if err != nil {
			b.Fatal(err)
		}
		for range 300 {
			t0 := time.Now()
			if _, err := cl.SubmitRun(ctx, api.RunSpec{Target: "bench", Command: []string{"true"}, Resources: &api.Resources{CPUs: 1, MemoryMB: 64}}); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		after, err := c.status(leader)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("%s: one client, p50 %s, p99 %s over %d submits (%d log entries)", t.name,
			quantile(lat, 0.5).Round(10*time.Microsecond), quantile(lat, 0.99).Round(10*time.Microsecond), len(lat), after.AppliedIndex-before.AppliedIndex)
		b.ReportMetric(float64(quantile(lat, 0.5).Microseconds())/1000, t.name+"-p50-ms")
		b.ReportMetric(float64(quantile(lat, 0.99).Microseconds())/1000, t.name+"-p99-ms")
	}
}
