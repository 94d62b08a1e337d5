package integration

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// firstLine submits spec and returns the time from the submit call to the
// first byte of the run's output at the head, then waits for the run.
func firstLine(b *testing.B, c *api.Client, spec api.RunSpec) time.Duration {
	b.Helper()
	start := time.Now()
	r, err := c.SubmitRun(context.Background(), spec)
	if err != nil {
		b.Fatalf("submit: %v", err)
	}
	var idx uint64
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		lc, err := c.Logs(ctx, r.ID, api.LogQuery{Wait: api.Wait{Index: idx, Wait: 10 * time.Second}})
		cancel()
		if err == nil && len(lc.Data) > 0 {
			d := time.Since(start)
			waitFor(b, 2*time.Minute, "run "+r.ID+" to end", func() (bool, string) {
				r, _, err := c.GetRun(context.Background(), r.ID, api.Wait{})
				return err == nil && api.RunTerminal(r.State), fmt.Sprint(err)
			})
			return d
		}
		if err == nil {
			idx = lc.Index
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	}
	b.Fatalf("run %s printed nothing within 3 minutes", r.ID)
	return 0
}

// summary reports the median and the slowest of ds as metrics named name.
func summary(b *testing.B, name string, ds []time.Duration) {
	slices.Sort(ds)
	med := ds[len(ds)/2]
	b.ReportMetric(float64(med.Milliseconds()), name+"-p50-ms")
	b.ReportMetric(float64(ds[len(ds)-1].Milliseconds()), name+"-max-ms")
	b.Logf("%s: n=%d p50=%s max=%s all=%v", name, len(ds), med, ds[len(ds)-1], ds)
}

// BenchmarkDockerFirstOutputLine measures submit → first output line of a
// trivial run on a warm node: the process runtime and the docker runtime
// on the same local node, and the docker runtime on a docker-provider
// node. The docker runtime's overhead is the difference of the first two.
func BenchmarkDockerFirstOutputLine(b *testing.B) {
	const n = 10
	h := startBenchDockerHead(b)
	c := h.client()
	for _, tc := range []struct{ target, provider string }{{"bench-local", "local"}, {"bench-docker", "docker"}} {
		if _, err := c.CreateTarget(context.Background(), api.TargetSpec{
			Name: tc.target, VMSize: "cpu-1", MaxNodes: 1, IdleSecondsBeforeScaledown: intp(600), Provider: tc.provider,
		}); err != nil {
			b.Fatal(err)
		}
	}
	proc := api.RunSpec{Target: "bench-local", Command: []string{"sh", "-c", "echo hi"}}
	img := api.RunSpec{Target: "bench-local", Environment: api.Environment{Image: baseImage}, Command: []string{"sh", "-c", "echo hi"}}
	dk := img
	dk.Target = "bench-docker"
	// Warm up: the nodes exist and the image is known.
	firstLine(b, c, proc)
	firstLine(b, c, img)
	firstLine(b, c, dk)
	b.ResetTimer()
	for range b.N {
		var p, d, k []time.Duration
		for range n { // interleaved, so that both see the same machine
			p = append(p, firstLine(b, c, proc))
			d = append(d, firstLine(b, c, img))
			k = append(k, firstLine(b, c, dk))
		}
		summary(b, "process-local", p)
		summary(b, "docker-local", d)
		summary(b, "docker-provider", k)
	}
}

// BenchmarkDockerScaleFromZero measures submit → first output line on a
// docker-provider cluster with no node: the autoscaler asks for a node,
// the provider starts its container, the agent registers, the run's
// container starts.
func BenchmarkDockerScaleFromZero(b *testing.B) {
	const n = 5
	h := startBenchDockerHead(b)
	c := h.client()
	for range b.N {
		var ds []time.Duration
		for i := range n {
			name := fmt.Sprintf("bench-sfz-%d", i)
			if _, err := c.CreateTarget(context.Background(), api.TargetSpec{
				Name: name, VMSize: "cpu-1", MaxNodes: 1, IdleSecondsBeforeScaledown: intp(0), Provider: "docker",
			}); err != nil {
				b.Fatal(err)
			}
			ds = append(ds, firstLine(b, c, api.RunSpec{Target: name, Environment: api.Environment{Image: baseImage}, Command: []string{"sh", "-c", "echo hi"}}))
		}
		summary(b, "scale-from-zero", ds)
	}
}

// startBenchDockerHead is startDockerHead for a benchmark.
func startBenchDockerHead(b *testing.B) *head {
	b.Helper()
	img := nodeImage(b)
	label := fmt.Sprintf("amld.test=%s-%d", b.Name(), time.Now().UnixNano())
	b.Cleanup(func() { removeDockerLabelled(b, label) })
	return startHead(b, "--docker-node-image", img, "--docker-label", label)
}
