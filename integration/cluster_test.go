package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// pyRun is a short Python job printing n lines, one every step seconds.
func pyRun(target string, n int, step float64) api.RunSpec {
	code := fmt.Sprintf("import time\nfor i in range(%d):\n    print('line', i, flush=True)\n    time.sleep(%g)\n", n, step)
	return api.RunSpec{Target: target, Command: []string{"python3", "-c", code}}
}

func createCluster(t *testing.T, c *api.Client, name string, maxNodes, idle int) {
	t.Helper()
	_, err := c.CreateTarget(ctx(t), api.TargetSpec{
		Name: name, VMSize: "cpu-2", MaxNodes: maxNodes, IdleSecondsBeforeScaledown: intp(idle),
	})
	if err != nil {
		t.Fatalf("create cluster %s: %v", name, err)
	}
}

func submitAll(t testing.TB, c *api.Client, specs ...api.RunSpec) []string {
	t.Helper()
	var ids []string
	for _, s := range specs {
		r, err := c.SubmitRun(ctx(t), s)
		if err != nil {
			t.Fatalf("submit: %v", err)
		}
		ids = append(ids, r.ID)
	}
	return ids
}

// waitTerminal waits for every run to finish and returns them.
func waitTerminal(t testing.TB, c *api.Client, d time.Duration, ids []string) map[string]*api.Run {
	t.Helper()
	out := map[string]*api.Run{}
	waitFor(t, d, "runs to finish", func() (bool, string) {
		pending := 0
		last := ""
		for _, id := range ids {
			r, _, err := c.GetRun(context.Background(), id, api.Wait{})
			if err != nil {
				return false, err.Error()
			}
			out[id] = r
			if !api.RunTerminal(r.State) {
				pending++
				last = fmt.Sprintf("%s %s: %s", r.ID, r.State, r.Reason)
			}
		}
		return pending == 0, fmt.Sprintf("%d pending, e.g. %s", pending, last)
	})
	return out
}

// fullLog reads one node's whole output of one attempt.
func fullLog(t *testing.T, c *api.Client, id string, attempt int) string {
	t.Helper()
	var sb strings.Builder
	var off int64
	for {
		lc, err := c.Logs(ctx(t), id, api.LogQuery{Attempt: attempt, Offset: off})
		if err != nil {
			t.Fatalf("logs of %s: %v", id, err)
		}
		sb.Write(lc.Data)
		off = lc.NextOffset
		if len(lc.Data) == 0 {
			return sb.String()
		}
	}
}

// completedOnce checks a run completed with exactly one successful attempt.
func completedOnce(t testing.TB, r *api.Run) {
	t.Helper()
	if r.State != api.RunCompleted {
		t.Errorf("run %s: state %s (%s), want Completed", r.ID, r.State, r.Reason)
		return
	}
	ok := 0
	for _, a := range r.Attempts {
		if a.ExitCode != nil && *a.ExitCode == 0 {
			ok++
		}
		if !a.Ended {
			t.Errorf("run %s attempt %d not ended", r.ID, a.Number)
		}
	}
	if ok != 1 {
		t.Errorf("run %s: %d successful attempts, want exactly 1", r.ID, ok)
	}
}

func TestClusterScalesFromZeroToMaxAndBack(t *testing.T) {
	h := startHead(t)
	c := h.client()
	createCluster(t, c, "burst", 3, 3)

	var specs []api.RunSpec
	for range 20 {
		specs = append(specs, pyRun("burst", 2, 0.3))
	}
	ids := submitAll(t, c, specs...)

	maxNodes := 0
	stop := sampleEvery(50*time.Millisecond, func() {
		if ns, err := c.ListNodes(context.Background(), "burst"); err == nil {
			maxNodes = max(maxNodes, len(ns))
		}
	})
	runs := waitTerminal(t, c, 3*time.Minute, ids)
	stop()
	for _, r := range runs {
		completedOnce(t, r)
	}
	if maxNodes != 3 {
		t.Errorf("cluster grew to %d nodes, want max_nodes=3", maxNodes)
	}
	waitFor(t, 60*time.Second, "scale down to 0 nodes", func() (bool, string) {
		tg, err := c.GetTarget(context.Background(), "burst")
		if err != nil {
			return false, err.Error()
		}
		n := tg.NodeStateCounts
		total := n.Idle + n.Running + n.Preparing + n.Leaving + n.Unusable + n.Preempted
		return total == 0, fmt.Sprintf("%+v", n)
	})
	if got := fullLog(t, c, ids[0], 0); !strings.Contains(got, "line 1") {
		t.Errorf("log of %s = %q, want both lines", ids[0], got)
	}
}

func TestHeadKill9WhileRunsRunLosesNothing(t *testing.T) {
	h := startHead(t)
	c := h.client()
	createCluster(t, c, "sturdy", 2, 60)
	ids := submitAll(t, c, pyRun("sturdy", 8, 0.5), pyRun("sturdy", 8, 0.5), pyRun("sturdy", 8, 0.5), pyRun("sturdy", 8, 0.5))

	waitFor(t, 60*time.Second, "a run to be running", func() (bool, string) {
		r, _, err := c.GetRun(context.Background(), ids[0], api.Wait{})
		return err == nil && r.State == api.RunRunning, fmt.Sprint(err)
	})
	h.kill9()
	time.Sleep(time.Second)
	h.start()
	h.waitReady()

	runs := waitTerminal(t, c, 3*time.Minute, ids)
	for _, id := range ids {
		r := runs[id]
		completedOnce(t, r)
		log := fullLog(t, c, id, 0)
		for i := range 8 {
			if n := strings.Count(log, fmt.Sprintf("line %d\n", i)); n != 1 {
				t.Errorf("run %s: %q appears %d times in its log, want once; log:\n%s", id, fmt.Sprintf("line %d", i), n, log)
			}
		}
	}
}

func TestAgentKill9RequeuesItsRun(t *testing.T) {
	h := startHead(t, "--heartbeat-ttl", "3s")
	c := h.client()
	createCluster(t, c, "fragile", 2, 60)
	ids := submitAll(t, c, pyRun("fragile", 6, 0.5))

	var first *api.Run
	waitFor(t, 60*time.Second, "the run to be running", func() (bool, string) {
		r, _, err := c.GetRun(context.Background(), ids[0], api.Wait{})
		if err != nil {
			return false, err.Error()
		}
		first = r
		return r.State == api.RunRunning, r.State
	})
	lost := first.Attempts[0].Allocations[0].NodeID
	pidFile := filepath.Join(h.dataDir, "nodes", lost, "pid")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("agent pid file: %v", err)
	}
	var pid int
	fmt.Sscanf(strings.TrimSpace(string(b)), "%d", &pid)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill agent %d: %v", pid, err)
	}

	r, _ := requeuedAfterLoss(t, c, ids[0], lost)
	if r.Preemptions < 1 || r.Retries != 0 {
		t.Errorf("preemptions=%d retries=%d, want the loss counted as a preemption, not a retry", r.Preemptions, r.Retries)
	}
}

// requeuedAfterLoss waits for run id to finish and checks it completed
// once, after a requeued attempt that says its node was lost, on another
// node than lost; it returns the run and its last attempt.
func requeuedAfterLoss(t *testing.T, c *api.Client, id, lost string) (*api.Run, api.Attempt) {
	t.Helper()
	r := waitTerminal(t, c, 2*time.Minute, []string{id})[id]
	completedOnce(t, r)
	if len(r.Attempts) < 2 {
		t.Fatalf("run %s has %d attempts, want a requeued second one", r.ID, len(r.Attempts))
	}
	a1, last := r.Attempts[0], r.Attempts[len(r.Attempts)-1]
	if !strings.Contains(a1.Reason, "heartbeat") && !strings.Contains(a1.Reason, "gone") {
		t.Errorf("attempt 1 reason = %q, want it to say the node was lost", a1.Reason)
	}
	if last.Allocations[0].NodeID == lost {
		t.Errorf("the last attempt ran on the lost node %s", lost)
	}
	return r, last
}
