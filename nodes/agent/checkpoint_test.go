package agent

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// ckptFile is what the head's checkpoint of run holds in state.txt ("" if none).
func (h *fakeHead) ckptFile(t *testing.T, b []byte) string {
	t.Helper()
	if b == nil {
		return ""
	}
	return untar(t, b)["state.txt"]
}

func TestCheckpointIsRestoredThenUploadedWhenItChanges(t *testing.T) {
	h := newFakeHead(t)
	startAgent(t, h, "", func(c *Config) { c.CheckpointInterval = 100 * time.Millisecond })
	h.update(func() {
		h.checkpoints["r-30"] = makeTarGz(t, []tarEntry{{name: "state.txt", body: "5\n"}})
	})
	a := assignment("r-30", "sh", "-c", `cat "$AML_CHECKPOINT_DIR/state.txt"; sleep 0.5
echo 6 > "$AML_CHECKPOINT_DIR/s.tmp"; mv "$AML_CHECKPOINT_DIR/s.tmp" "$AML_CHECKPOINT_DIR/state.txt"; sleep 0.5
echo 7 > "$AML_CHECKPOINT_DIR/s.tmp"; mv "$AML_CHECKPOINT_DIR/s.tmp" "$AML_CHECKPOINT_DIR/state.txt"; sleep 1000`)
	a.Attempt = 2
	h.assign(a)
	// (An upload may catch s.tmp before its rename: wait for the dir as
	// it stays.)
	h.waitFor("checkpoint 7 uploaded", 10*time.Second, func() bool {
		b := h.checkpoints["r-30"]
		return b != nil && len(untar(t, b)) == 1 && h.ckptFile(t, b) == "7\n"
	})
	if got := h.logOf(a.Key()); got != "5\n" {
		t.Fatalf("the command read %q from its checkpoint dir, want the restored 5", got)
	}
	h.mu.Lock()
	uploads := len(h.ckptUploads)
	h.mu.Unlock()
	// Nothing changes any more: no further uploads, and the restored
	// content itself was never sent back.
	time.Sleep(500 * time.Millisecond)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.ckptUploads) != uploads || uploads > 4 {
		t.Fatalf("%d uploads, then %d: want one per change and none while unchanged", uploads, len(h.ckptUploads))
	}
}

func TestStoppedAttemptUploadsItsLastCheckpointBeforeItsEnd(t *testing.T) {
	h := newFakeHead(t)
	// The agent's own grace is short: the stop's grace must be the head's.
	startAgent(t, h, "", func(c *Config) { c.KillGrace = 100 * time.Millisecond })
	a := assignment("r-31", "sh", "-c", `trap 'sleep 1; echo final > "$AML_CHECKPOINT_DIR/state.txt"; exit 0' TERM
echo up; while :; do sleep 0.1; done`)
	h.assign(a)
	h.waitFor("running", 10*time.Second, func() bool { return strings.HasPrefix(string(h.logs[a.Key()]), "up") })
	a.Stop, a.StopReason, a.GraceSeconds = true, "preempted: node n-1 evicted", 10
	h.assign(a)
	st := h.final(a.Key(), 15*time.Second)
	if !st.Stopped || st.ExitCode == nil || *st.ExitCode != 0 || st.Reason != "stopped: preempted: node n-1 evicted" {
		t.Fatalf("exited report = %+v (code %v), want Stopped, exit 0 and the stop named", st, st.ExitCode)
	}
	h.mu.Lock()
	atExit := h.ckptAtExit[a.Key()]
	h.mu.Unlock()
	if got := h.ckptFile(t, atExit); got != "final\n" {
		t.Fatalf("the head had checkpoint %q when the end was reported, want the one written on SIGTERM", got)
	}
}

func TestOnlyNodeZeroUploadsAndACleanExitSkipsTheFinalUpload(t *testing.T) {
	h := newFakeHead(t)
	startAgent(t, h, "", func(c *Config) { c.CheckpointInterval = time.Hour })
	h.update(func() {
		h.checkpoints["r-32"] = makeTarGz(t, []tarEntry{{name: "state.txt", body: "1\n"}})
	})
	rank1 := assignment("r-32", "sh", "-c", `cat "$AML_CHECKPOINT_DIR/state.txt"; echo 2 > "$AML_CHECKPOINT_DIR/state.txt"; exit 3`)
	rank1.NodeIndex = 1
	rank0 := assignment("r-33", "sh", "-c", `echo 2 > "$AML_CHECKPOINT_DIR/state.txt"`)
	h.assign(rank1, rank0)
	st1 := h.final(rank1.Key(), 10*time.Second)
	h.final(rank0.Key(), 10*time.Second)
	if *st1.ExitCode != 3 || h.logOf(rank1.Key()) != "1\n" {
		t.Fatalf("rank 1: exit %d output %q, want 3 and the restored checkpoint", *st1.ExitCode, h.logOf(rank1.Key()))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.ckptUploads) != 0 || h.ckptFile(t, h.checkpoints["r-32"]) != "1\n" {
		t.Fatalf("uploads %v: want none (rank 1 never uploads; a clean exit needs no checkpoint)", h.ckptUploads)
	}
}

func TestRefusedCheckpointFencesTheAttempt(t *testing.T) {
	h := newFakeHead(t)
	startAgent(t, h, "", func(c *Config) { c.CheckpointInterval = 100 * time.Millisecond })
	pidFile := filepath.Join(t.TempDir(), "pid")
	// It prints nothing (no output to be refused) and ignores SIGTERM.
	a := assignment("r-34", "sh", "-c", `trap "" TERM; echo $$ > `+pidFile+`; echo x > "$AML_CHECKPOINT_DIR/state.txt"; while :; do sleep 0.1; done`)
	h.update(func() { h.fencedCkpt[a.Key()] = true }) // the head ended the attempt
	h.assign(a)
	h.waitFor("the refused checkpoint", 10*time.Second, func() bool { return h.refusedCkpt > 0 })
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	waitProcessGone(t, pid)
	time.Sleep(200 * time.Millisecond)
	if got := h.states(a.Key()); slices.Contains(got, api.AttemptExited) {
		t.Fatalf("a fenced attempt reported %v", got)
	}
}
