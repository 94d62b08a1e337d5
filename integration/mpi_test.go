package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// mpiProgram is the test's MPI job: every rank prints when it started
// (process entry and after MPI_Init, in Unix nanoseconds), joins an
// allreduce of the ranks and prints the sum. FAIL_RANK=R makes rank R exit
// 3 instead of joining; HOLD_FIRST_ATTEMPT=S keeps the ranks of attempt 1
// alive S seconds after the sum.
const mpiProgram = `#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    long long entry = now_ns();
    int rank, size, sum = 0;
    MPI_Init(&argc, &argv);
    long long inited = now_ns();
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const char *node = getenv("NODE_RANK");
    printf("rank %d of %d started on node rank %s entry_ns=%lld init_ns=%lld\n", rank, size, node ? node : "?", entry, inited);
    fflush(stdout);
    const char *fail = getenv("FAIL_RANK");
    if (fail && atoi(fail) == rank) {
        fprintf(stderr, "rank %d: exiting with code 3\n", rank);
        exit(3);
    }
    MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    printf("rank %d of %d: sum %d\n", rank, size, sum);
    fflush(stdout);
    const char *hold = getenv("HOLD_FIRST_ATTEMPT");
    const char *attempt = getenv("AML_ATTEMPT");
    if (hold && attempt && strcmp(attempt, "1") == 0)
        sleep(atoi(hold));
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Finalize();
    return 0;
}
`

// buildMPIProgram compiles mpiProgram with mpicc into a fresh source dir.
func buildMPIProgram(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "allreduce.c"), []byte(mpiProgram), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mpicc", "-O2", "-o", filepath.Join(dir, "allreduce"), filepath.Join(dir, "allreduce.c")).CombinedOutput()
	if err != nil {
		t.Fatalf("mpicc (scripts/deps.sh installs libopenmpi-dev): %v\n%s", err, out)
	}
	return dir
}

// uploadDir uploads dir's regular files as a source snapshot.
func uploadDir(t testing.TB, c *api.Client, dir string) string {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := e.Info()
		if err := tw.WriteHeader(&tar.Header{Name: e.Name(), Mode: int64(fi.Mode().Perm()), Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	ref, err := c.UploadSource(ctx(t), buf.Bytes())
	if err != nil {
		t.Fatalf("upload source: %v", err)
	}
	return ref.ID
}

// mpiRun is a 2-node x 2-process run of the test program.
func mpiRun(target, sourceID string, env map[string]string) api.RunSpec {
	return api.RunSpec{Target: target, Command: []string{"./allreduce"}, SourceID: sourceID,
		NodeCount: 2, ProcessCountPerNode: 2, Env: env}
}

// nodeLog reads one node's whole output of one attempt.
func nodeLog(t testing.TB, c *api.Client, id string, attempt, node int) string {
	t.Helper()
	var sb strings.Builder
	var off int64
	for {
		lc, err := c.Logs(ctx(t), id, api.LogQuery{Attempt: attempt, NodeIndex: node, Offset: off})
		if err != nil {
			t.Fatalf("logs of %s node %d: %v", id, node, err)
		}
		sb.Write(lc.Data)
		off = lc.NextOffset
		if len(lc.Data) == 0 {
			return sb.String()
		}
	}
}

// wantSumOnEveryRank checks that each of the 4 ranks printed sum 6.
func wantSumOnEveryRank(t *testing.T, what, log string) {
	t.Helper()
	for r := range 4 {
		if want := fmt.Sprintf("rank %d of 4: sum 6\n", r); strings.Count(log, want) != 1 {
			t.Errorf("%s: %q appears %d times, want once; output:\n%s", what, strings.TrimSpace(want), strings.Count(log, want), log)
		}
	}
}

// processesUnder lists the processes whose executable lies under dir.
func processesUnder(dir string) []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/exe")
	for _, p := range procs {
		if exe, err := os.Readlink(p); err == nil && strings.HasPrefix(exe, dir+"/") {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(p, "/proc/"), "/exe")+" "+exe)
		}
	}
	return out
}

func waitNoProcessesUnder(t *testing.T, dir string) {
	t.Helper()
	waitFor(t, 30*time.Second, "the run's ranks to be gone", func() (bool, string) {
		left := processesUnder(dir)
		return len(left) == 0, strings.Join(left, ", ")
	})
}

func TestMPIAllreduceOnTwoNodesOfTheProcessRuntime(t *testing.T) {
	h := startHead(t)
	c := h.client()
	createCluster(t, c, "mpi", 2, 120)
	src := buildMPIProgram(t)

	// As a user would: 2 nodes x 2 processes, waited on.
	out, errOut, code := h.ctl("job", "submit", "--target", "mpi", "--node-count", "2", "--process-count-per-node", "2",
		"--source", src, "--wait", "--", "./allreduce")
	if code != 0 {
		t.Fatalf("job submit --wait: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	wantSumOnEveryRank(t, "amlctl --wait", out)
	runs, err := c.ListRuns(ctx(t), api.RunFilter{})
	if err != nil || len(runs) != 1 {
		t.Fatalf("list runs: %v %d", err, len(runs))
	}
	r := runs[0]
	completedOnce(t, r)
	// mpirun on node 0 forwards every rank's output: node 0's log has all.
	log := nodeLog(t, c, r.ID, 1, 0)
	wantSumOnEveryRank(t, "node 0's log", log)
	for _, want := range []string{"rank 0 of 4 started on node rank 0", "rank 3 of 4 started on node rank 1"} {
		if !strings.Contains(log, want) {
			t.Errorf("node 0's log lacks %q (each rank gets its own node's environment):\n%s", want, log)
		}
	}

	// --distribution none: every node runs the command itself, with the
	// hostfile and the environment.
	sh := `echo "node $NODE_RANK of $AML_NODE_COUNT world $WORLD_SIZE master $MASTER_ADDR:$MASTER_PORT"; cat "$AML_HOSTFILE"`
	ids := submitAll(t, c, api.RunSpec{Target: "mpi", Command: []string{"sh", "-c", sh}, NodeCount: 2, ProcessCountPerNode: 3,
		Distribution: api.DistributionNone})
	nr := waitTerminal(t, c, 2*time.Minute, ids)[ids[0]]
	completedOnce(t, nr)
	al := nr.Attempts[0].Allocations
	hostfile := fmt.Sprintf("%s slots=3\n%s slots=3\n", al[0].NodeID, al[1].NodeID)
	for node := range 2 {
		got := nodeLog(t, c, nr.ID, 1, node)
		if want := fmt.Sprintf("node %d of 2 world 6 master 127.0.0.1:29500\n", node); !strings.Contains(got, want) || !strings.Contains(got, hostfile) {
			t.Errorf("node %d of a distribution none run printed %q; want %q and the hostfile %q", node, got, want, hostfile)
		}
	}
}

func TestMPIRankFailureFailsTheRunNamingItsNode(t *testing.T) {
	h := startHead(t)
	c := h.client()
	createCluster(t, c, "mpi-fail", 2, 120)
	src := uploadDir(t, c, buildMPIProgram(t))

	ids := submitAll(t, c, mpiRun("mpi-fail", src, map[string]string{"FAIL_RANK": "2"}))
	r := waitTerminal(t, c, 2*time.Minute, ids)[ids[0]]
	if r.State != api.RunFailed || r.ExitCode == nil || *r.ExitCode != 3 {
		t.Fatalf("run %s: state %s exit %v (%s); want Failed with exit code 3", r.ID, r.State, r.ExitCode, r.Reason)
	}
	// Rank 2 runs on node rank 1 (ranks fill each node's 2 slots in order).
	failed := r.Attempts[0].Allocations[1].NodeID
	if want := fmt.Sprintf("MPI rank 2 on node %s exited with code 3", failed); !strings.Contains(r.Reason, want) {
		t.Errorf("reason %q, want it to name the failed node and code: %q", r.Reason, want)
	}
	if len(r.Attempts) != 1 || r.Retries != 0 {
		t.Errorf("%d attempts, %d retries; want one attempt (max_retries 0)", len(r.Attempts), r.Retries)
	}
	// The other ranks were stopped, and both nodes are idle again.
	waitNoProcessesUnder(t, filepath.Join(h.dataDir, "nodes"))
	waitFor(t, 30*time.Second, "both nodes idle", func() (bool, string) {
		ns, err := c.ListNodes(context.Background(), "mpi-fail")
		if err != nil {
			return false, err.Error()
		}
		idle := 0
		var states []string
		for _, n := range ns {
			states = append(states, n.ID+" "+n.State)
			if n.State == api.NodeIdle && len(n.Runs) == 0 {
				idle++
			}
		}
		return idle == 2 && len(ns) == 2, strings.Join(states, ", ")
	})
}

func TestMPINodeLostRequeuesTheWholeGang(t *testing.T) {
	h := startHead(t, "--heartbeat-ttl", "3s")
	c := h.client()
	createCluster(t, c, "mpi-lost", 3, 120)
	src := uploadDir(t, c, buildMPIProgram(t))

	ids := submitAll(t, c, mpiRun("mpi-lost", src, map[string]string{"HOLD_FIRST_ATTEMPT": "60"}))
	var first *api.Run
	waitFor(t, 90*time.Second, "every rank of attempt 1 to be past the allreduce", func() (bool, string) {
		r, _, err := c.GetRun(context.Background(), ids[0], api.Wait{})
		if err != nil || len(r.Attempts) == 0 {
			return false, fmt.Sprint(err)
		}
		first = r
		log := nodeLog(t, c, r.ID, 1, 0)
		return strings.Count(log, ": sum 6\n") == 4, r.State + ": " + log
	})
	lost := first.Attempts[0].Allocations[1].NodeID
	b, err := os.ReadFile(filepath.Join(h.dataDir, "nodes", lost, "pid"))
	if err != nil {
		t.Fatalf("agent pid file: %v", err)
	}
	var pid int
	fmt.Sscanf(strings.TrimSpace(string(b)), "%d", &pid)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill agent %d: %v", pid, err)
	}

	r := waitTerminal(t, c, 3*time.Minute, ids)[ids[0]]
	completedOnce(t, r)
	if len(r.Attempts) < 2 || r.Preemptions < 1 || r.Retries != 0 {
		t.Fatalf("%d attempts, preemptions %d, retries %d; want a requeue counted as a preemption", len(r.Attempts), r.Preemptions, r.Retries)
	}
	if a1 := r.Attempts[0]; !strings.Contains(a1.Reason, lost) {
		t.Errorf("attempt 1 ended with %q; want it to name the lost node %s", a1.Reason, lost)
	}
	last := r.Attempts[len(r.Attempts)-1]
	for _, al := range last.Allocations {
		if al.NodeID == lost {
			t.Errorf("the last attempt ran on the lost node %s", lost)
		}
	}
	if len(last.Allocations) != 2 || last.Allocations[0].NodeID == last.Allocations[1].NodeID {
		t.Errorf("the last attempt holds %+v; want two distinct nodes", last.Allocations)
	}
	wantSumOnEveryRank(t, "the last attempt's log", nodeLog(t, c, r.ID, last.Number, 0))
	// Nothing of the first attempt is left running, on any node.
	waitNoProcessesUnder(t, filepath.Join(h.dataDir, "nodes"))
}
