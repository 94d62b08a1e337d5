package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// ctlAs runs amlctl against h with another user's token.
func (h *head) ctlAs(token string, args ...string) (string, string, int) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "amlctl"), args...)
	cmd.Env = append(os.Environ(), "AMLCTL_ADDR="+h.url(), "AMLCTL_TOKEN="+token, "AMLCTL_CONFIG="+filepath.Join(h.dataDir, "no-config"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code := 0
	if err := cmd.Run(); err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			h.t.Fatalf("amlctl %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return stdout.String(), stderr.String(), code
}

// newUser makes a user and returns its client and token.
func newUser(t *testing.T, h *head, name string) (*api.Client, string) {
	t.Helper()
	out, errOut, code := h.ctl("user", "create", name, "--role", "user")
	if code != 0 {
		t.Fatalf("user create %s: %s", name, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	tok := strings.TrimSpace(lines[len(lines)-1])
	return h.client().WithToken(tok), tok
}

// barrierRun is a small run that waits until the other run of its pair
// has started too: both complete only if they run at the same time.
func barrierRun(target, dir, me, other string) api.RunSpec {
	script := fmt.Sprintf(`touch %[1]s/%[2]s; i=0; while [ ! -e %[1]s/%[3]s ]; do sleep 0.1; i=$((i+1)); [ $i -lt 900 ] || exit 3; done; echo %[2]s met %[3]s`, dir, me, other)
	return api.RunSpec{Target: target, Command: []string{"sh", "-c", script}, Resources: &api.Resources{CPUs: 1, MemoryMB: 512}}
}

// TestInstanceBelongsToItsOwner: bob can neither see nor use alice's
// instance or its runs; two small runs run side by side on it; stop and
// start keep its data dir, and queued runs wait while it is stopped.
func TestInstanceBelongsToItsOwner(t *testing.T) {
	h := startHead(t)
	alice, aliceTok := newUser(t, h, "alice")
	bob, bobTok := newUser(t, h, "bob")

	out, errOut, code := h.ctlAs(aliceTok, "compute", "create", "instance", "--name", "ci-alice", "--vm-size", "cpu-4")
	if code != 0 || !strings.Contains(out, "Created instance ci-alice") {
		t.Fatalf("create instance: exit %d: %s%s", code, out, errOut)
	}
	// Bob cannot see it, nor submit to it.
	out, _, _ = h.ctlAs(bobTok, "compute", "list")
	if strings.Contains(out, "ci-alice") {
		t.Fatalf("bob's compute list shows alice's instance:\n%s", out)
	}
	if _, errOut, code := h.ctlAs(bobTok, "compute", "show", "ci-alice"); code == 0 || !strings.Contains(errOut, `no target named "ci-alice"`) {
		t.Fatalf("bob's show: exit %d: %s", code, errOut)
	}
	if _, err := bob.SubmitRun(ctx(t), api.RunSpec{Target: "ci-alice", Command: []string{"true"}}); !api.IsNotFound(err) {
		t.Fatalf("bob's submit to alice's instance: %v", err)
	}
	if _, err := bob.PowerTarget(ctx(t), "ci-alice", api.PowerStop); !api.IsNotFound(err) {
		t.Fatalf("bob stops alice's instance: %v", err)
	}
	if out, _, _ := h.ctl("compute", "list"); !strings.Contains(out, "ci-alice") {
		t.Fatalf("the admin does not see the instance:\n%s", out)
	}

	// Two small runs run at once on it.
	dir := t.TempDir()
	ids := submitAll(t, alice, barrierRun("ci-alice", dir, "a", "b"), barrierRun("ci-alice", dir, "b", "a"))
	runs := waitTerminal(t, alice, 90*time.Second, ids)
	nodeOf := map[string]bool{}
	for _, id := range ids {
		r := runs[id]
		if r.State != api.RunCompleted || !r.Private || r.Owner != "alice" {
			t.Fatalf("run %s: %s %s (private %v, owner %s)", id, r.State, r.Reason, r.Private, r.Owner)
		}
		nodeOf[r.Attempts[0].Allocations[0].NodeID] = true
	}
	if len(nodeOf) != 1 {
		t.Fatalf("the runs ran on %d nodes", len(nodeOf))
	}
	// Bob sees none of alice's runs; the admin sees them.
	if rs, err := bob.ListRuns(ctx(t), api.RunFilter{}); err != nil || len(rs) != 0 {
		t.Fatalf("bob lists %d runs (%v)", len(rs), err)
	}
	if _, _, err := bob.GetRun(ctx(t), ids[0], api.Wait{}); !api.IsNotFound(err) {
		t.Fatalf("bob reads alice's run: %v", err)
	}
	if _, err := bob.Logs(ctx(t), ids[0], api.LogQuery{}); !api.IsNotFound(err) {
		t.Fatalf("bob reads alice's logs: %v", err)
	}
	if rs, err := h.client().ListRuns(ctx(t), api.RunFilter{Target: "ci-alice"}); err != nil || len(rs) != 2 {
		t.Fatalf("the admin lists %d runs (%v)", len(rs), err)
	}

	// Stop and start keep the data dir.
	ids = submitAll(t, alice, api.RunSpec{Target: "ci-alice", Command: []string{"sh", "-c", `echo kept-across-stop > "$AML_DATA_DIR/note"`}})
	if r := waitTerminal(t, alice, 60*time.Second, ids)[ids[0]]; r.State != api.RunCompleted {
		t.Fatalf("write run: %s %s", r.State, r.Reason)
	}
	if _, errOut, code := h.ctlAs(aliceTok, "compute", "stop", "ci-alice", "--wait"); code != 0 {
		t.Fatalf("stop: %s", errOut)
	}
	read, err := alice.SubmitRun(ctx(t), api.RunSpec{Target: "ci-alice", Command: []string{"sh", "-c", `cat "$AML_DATA_DIR/note"`}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the queued run to say the instance is stopped", func() (bool, string) {
		r, _, err := alice.GetRun(context.Background(), read.ID, api.Wait{})
		return err == nil && r.State == api.RunQueued && strings.Contains(r.Reason, "is stopped"), fmt.Sprint(r, err)
	})
	if _, errOut, code := h.ctlAs(aliceTok, "compute", "start", "ci-alice"); code != 0 {
		t.Fatalf("start: %s", errOut)
	}
	if r := waitTerminal(t, alice, 60*time.Second, []string{read.ID})[read.ID]; r.State != api.RunCompleted {
		t.Fatalf("read run: %s %s", r.State, r.Reason)
	}
	if log := fullLog(t, alice, read.ID, 1); !strings.Contains(log, "kept-across-stop") {
		t.Fatalf("after stop and start the data dir lost its file: %q", log)
	}

	// Deleting the instance removes its kept dir.
	if _, errOut, code := h.ctlAs(aliceTok, "compute", "delete", "ci-alice"); code != 0 {
		t.Fatalf("delete: %s", errOut)
	}
	waitFor(t, 60*time.Second, "the instance and its data dir gone", func() (bool, string) {
		_, err := alice.GetTarget(context.Background(), "ci-alice")
		_, serr := os.Stat(filepath.Join(h.dataDir, "nodes", "keep", "ci-alice"))
		return api.IsNotFound(err) && os.IsNotExist(serr), fmt.Sprint(err, serr)
	})
}
