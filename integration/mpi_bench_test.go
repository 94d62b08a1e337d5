package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/mpi"
)

// rankStartRE reads a rank's start line of mpiProgram.
var rankStartRE = regexp.MustCompile(`rank (\d+) of \d+ started on node rank \S+ entry_ns=(\d+) init_ns=(\d+)`)

// launchTimes is one launch, measured from t0 (submit, or mpirun's exec).
type launchTimes struct {
	started time.Duration // the last rank entered main()
	inited  time.Duration // the last rank returned from MPI_Init
	total   time.Duration // until the run completed (mpirun exited)
}

// rankTimes reads the 4 ranks' start lines from out, relative to t0.
func rankTimes(tb testing.TB, out string, t0 time.Time) (started, inited time.Duration) {
	tb.Helper()
	ms := rankStartRE.FindAllStringSubmatch(out, -1)
	if len(ms) != 4 {
		tb.Fatalf("%d rank start lines, want 4:\n%s", len(ms), out)
	}
	for _, m := range ms {
		e, _ := strconv.ParseInt(m[2], 10, 64)
		i, _ := strconv.ParseInt(m[3], 10, 64)
		started = max(started, time.Unix(0, e).Sub(t0))
		inited = max(inited, time.Unix(0, i).Sub(t0))
	}
	return started, inited
}

func medianOf(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkMPILaunchOverhead compares a 2-node x 2-process hello on warm
// nodes, from submit until every rank started, with the same mpirun
// launched by hand with a plain rsh agent script (fake hosts with their own
// TMPDIR) on the same machine.
func BenchmarkMPILaunchOverhead(b *testing.B) {
	reps := 7
	if n, err := strconv.Atoi(os.Getenv("MPI_BENCH_REPS")); err == nil && n > 0 {
		reps = n
	}
	h := startHead(b)
	c := h.client()
	if _, err := c.CreateTarget(ctx(b), api.TargetSpec{Name: "bench", VMSize: "cpu-2", MaxNodes: 2, IdleSecondsBeforeScaledown: intp(600)}); err != nil {
		b.Fatal(err)
	}
	srcDir := buildMPIProgram(b)
	src := uploadDir(b, c, srcDir)

	viaAmld := func() launchTimes {
		t0 := time.Now()
		r, err := c.SubmitRun(ctx(b), mpiRun("bench", src, nil))
		if err != nil {
			b.Fatal(err)
		}
		var idx uint64
		deadline := time.Now().Add(2 * time.Minute)
		for !api.RunTerminal(r.State) {
			if time.Now().After(deadline) {
				b.Fatalf("run %s did not finish: %s %s", r.ID, r.State, r.Reason)
			}
			wctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			r, idx, err = c.GetRun(wctx, r.ID, api.Wait{Index: idx, Wait: 10 * time.Second})
			cancel()
			if err != nil {
				b.Fatal(err)
			}
		}
		total := time.Since(t0)
		if r.State != api.RunCompleted {
			b.Fatalf("run %s %s: %s", r.ID, r.State, r.Reason)
		}
		started, inited := rankTimes(b, nodeLog(b, c, r.ID, 1, 0), t0)
		if os.Getenv("MPI_BENCH_DEBUG") != "" {
			at := r.Attempts[0]
			b.Logf("%s placed %s node0 %s node1 %s started %s", r.ID, at.PlacedAt.Sub(t0), at.Nodes[0].Started.Sub(t0), at.Nodes[1].Started.Sub(t0), started)
		}
		return launchTimes{started: started, inited: inited, total: total}
	}

	// By hand: the same mpirun arguments, a plain rsh agent script.
	dir := b.TempDir()
	agent := filepath.Join(dir, "plain-rsh")
	script := "#!/bin/sh\nhost=$1; shift\nmkdir -p " + dir + "/fake.$host\nTMPDIR=" + dir + "/fake.$host; export TMPDIR\nexec /bin/sh -c \"$*\"\n"
	if err := os.WriteFile(agent, []byte(script), 0o755); err != nil {
		b.Fatal(err)
	}
	layout := mpi.Layout{Nodes: []string{"hostA", "hostB"}, Slots: 2}
	hostfile := filepath.Join(dir, "hostfile")
	if err := os.WriteFile(hostfile, []byte(layout.Hostfile()), 0o644); err != nil {
		b.Fatal(err)
	}
	args := mpi.MpirunArgs(mpi.MpirunOptions{Hostfile: hostfile, Layout: layout, RshAgent: agent,
		AsRoot: os.Geteuid() == 0, IfInclude: "127.0.0.0/8", Command: []string{filepath.Join(srcDir, "allreduce")}})
	byHand := func() launchTimes {
		t0 := time.Now()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = srcDir
		out, err := cmd.CombinedOutput()
		total := time.Since(t0)
		if err != nil {
			b.Fatalf("mpirun by hand: %v\n%s", err, out)
		}
		started, inited := rankTimes(b, string(out), t0)
		if os.Getenv("MPI_BENCH_DEBUG") != "" {
			b.Logf("by hand: started %s", started)
		}
		return launchTimes{started: started, inited: inited, total: total}
	}

	for range b.N {
		viaAmld() // warms the nodes: both are made and registered
		byHand()
		var a, m struct{ started, inited, total []time.Duration }
		for range reps {
			x := viaAmld()
			a.started, a.inited, a.total = append(a.started, x.started), append(a.inited, x.inited), append(a.total, x.total)
			y := byHand()
			m.started, m.inited, m.total = append(m.started, y.started), append(m.inited, y.inited), append(m.total, y.total)
		}
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(ms(medianOf(a.started)), "amld-ranks-started-ms")
		b.ReportMetric(ms(medianOf(m.started)), "byhand-ranks-started-ms")
		b.ReportMetric(ms(medianOf(a.inited)), "amld-ranks-inited-ms")
		b.ReportMetric(ms(medianOf(m.inited)), "byhand-ranks-inited-ms")
		b.ReportMetric(ms(medianOf(a.total)), "amld-completed-ms")
		b.ReportMetric(ms(medianOf(m.total)), "byhand-completed-ms")
		line := func(name string, ds []time.Duration) string {
			s := slices.Clone(ds)
			slices.Sort(s)
			return fmt.Sprintf("%-28s median %7.1f ms  min %7.1f  max %7.1f", name, ms(medianOf(s)), ms(s[0]), ms(s[len(s)-1]))
		}
		b.Logf("2 nodes x 2 processes, %d launches each:\n%s", reps, strings.Join([]string{
			line("amld: submit→ranks started", a.started), line("by hand: exec→ranks started", m.started),
			line("amld: submit→MPI_Init done", a.inited), line("by hand: exec→MPI_Init done", m.inited),
			line("amld: submit→completed", a.total), line("by hand: exec→mpirun exit", m.total),
		}, "\n"))
	}
}
