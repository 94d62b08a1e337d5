package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// execScript is the absolute path of one of docs/exec-provider's scripts.
func execScript(t *testing.T, kind, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "docs", "exec-provider", kind, name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// killExecMachines kills the agents docs/exec-provider/local left in dir.
func killExecMachines(dir string) {
	pids, _ := filepath.Glob(filepath.Join(dir, "*", "pid"))
	for _, p := range pids {
		b, _ := os.ReadFile(p)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// TestExecProviderScalesThroughScripts: a cluster of the exec provider,
// backed by the local example scripts of docs/, scales 0 → 2 → 0; a create
// script that fails shows its stderr in provisioning_errors and the
// autoscaler backs off.
func TestExecProviderScalesThroughScripts(t *testing.T) {
	machines := t.TempDir()
	t.Setenv("AMLD_EXEC_LOCAL_DIR", machines) // the head's scripts inherit it
	t.Cleanup(func() { killExecMachines(machines) })
	h := startHead(t)
	c := h.client()

	if _, errOut, code := h.ctl("compute", "create", "cluster", "--name", "cloud", "--provider", "exec",
		"--vm-size", "cpu-1", "--max-nodes", "2", "--idle-seconds-before-scaledown", "1",
		"--create-command", execScript(t, "local", "create.sh"),
		"--delete-command", execScript(t, "local", "delete.sh"),
		"--list-command", execScript(t, "local", "list.sh")); code != 0 {
		t.Fatalf("create exec cluster: %s", errOut)
	}
	// A user may not: the scripts run on the head.
	_, bobTok := newUser(t, h, "bob")
	if _, errOut, code := h.ctlAs(bobTok, "compute", "create", "cluster", "--name", "mine", "--provider", "exec",
		"--vm-size", "cpu-1", "--max-nodes", "1", "--create-command", "/bin/true", "--delete-command", "/bin/true"); code == 0 || !strings.Contains(errOut, "only admins") {
		t.Fatalf("a user made an exec cluster: exit %d: %s", code, errOut)
	}

	// Two runs of a whole node each that must run at once: 0 → 2 nodes.
	dir := t.TempDir()
	a, b := barrierRun("cloud", dir, "a", "b"), barrierRun("cloud", dir, "b", "a")
	a.Resources, b.Resources = nil, nil
	ids := submitAll(t, c, a, b)
	runs := waitTerminal(t, c, 90*time.Second, ids)
	nodesUsed := map[string]bool{}
	for _, id := range ids {
		if r := runs[id]; r.State != api.RunCompleted {
			t.Fatalf("run %s: %s %s", id, r.State, r.Reason)
		}
		nodesUsed[runs[id].Attempts[0].Allocations[0].NodeID] = true
	}
	if len(nodesUsed) != 2 {
		t.Fatalf("the runs used %d nodes, want 2", len(nodesUsed))
	}
	// ... and back to 0: the delete script removed the machines.
	waitFor(t, 60*time.Second, "the exec cluster back to zero", func() (bool, string) {
		tg, err := c.GetTarget(context.Background(), "cloud")
		left, _ := filepath.Glob(filepath.Join(machines, "*"))
		if err != nil {
			return false, err.Error()
		}
		return tg.CurrentNodeCount == 0 && tg.NodeStateCounts == (api.NodeStateCounts{}) && len(left) == 0,
			fmt.Sprintf("current %d, counts %+v, machines %v", tg.CurrentNodeCount, tg.NodeStateCounts, left)
	})
	if strings.Contains(h.out.String(), strings.TrimSpace(readFile(t, filepath.Join(h.dataDir, "join.token")))) {
		t.Fatal("the join token shows in the head's log")
	}

	// A create script that fails: its stderr shows, and creates back off.
	calls := filepath.Join(t.TempDir(), "calls")
	failing := filepath.Join(t.TempDir(), "create-fails.sh")
	if err := os.WriteFile(failing, []byte("#!/bin/sh\necho call >> "+calls+"\necho 'ERROR: (QuotaExceeded) Operation could not be completed as it results in exceeding approved Total Regional Cores quota.' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := h.ctl("compute", "create", "cluster", "--name", "broken", "--provider", "exec",
		"--vm-size", "cpu-1", "--max-nodes", "1", "--create-command", failing,
		"--delete-command", execScript(t, "local", "delete.sh")); code != 0 {
		t.Fatalf("create broken cluster: %s", errOut)
	}
	ids = submitAll(t, c, api.RunSpec{Target: "broken", Command: []string{"true"}})
	var tg *api.Target
	waitFor(t, 30*time.Second, "the failure in provisioning_errors and a backoff", func() (bool, string) {
		var err error
		tg, err = c.GetTarget(context.Background(), "broken")
		if err != nil {
			return false, err.Error()
		}
		return len(tg.ProvisioningErrors) > 0 && strings.Contains(tg.ScaleReason, "backing off"),
			fmt.Sprintf("errors %v, reason %q", tg.ProvisioningErrors, tg.ScaleReason)
	})
	if e := tg.ProvisioningErrors[0]; e.Code != "CreateFailed" || !strings.Contains(e.Message, "exited 1: ERROR: (QuotaExceeded)") {
		t.Fatalf("provisioning error %+v", e)
	}
	out, _, _ := h.ctl("compute", "show", "broken")
	if !strings.Contains(out, "QuotaExceeded") || !strings.Contains(out, "backing off after") {
		t.Fatalf("compute show:\n%s", out)
	}
	// Every call of the script failed and was counted: none was made
	// without a recorded failure before the backoff allowed it.
	if n := strings.Count(readFile(t, calls), "call"); n > tg.ProviderFailures+1 {
		t.Fatalf("the create script ran %d times for %d recorded failures", n, tg.ProviderFailures)
	}
	if _, err := c.CancelRun(ctx(t), ids[0]); err != nil {
		t.Fatal(err)
	}
}
