package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// trainSource uploads examples/train as a source snapshot and returns its ID.
func trainSource(t testing.TB, c *api.Client) string {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	b, err := os.ReadFile("../examples/train/train.py")
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.WriteHeader(&tar.Header{Name: "train.py", Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	ref, err := c.UploadSource(context.Background(), buf.Bytes())
	if err != nil {
		t.Fatalf("upload source: %v", err)
	}
	return ref.ID
}

// trainRun is the example training job: epochs of about sleep seconds each,
// checkpointing after every epoch (unless noCheckpoint).
func trainRun(target, source string, epochs int, sleep float64, noCheckpoint bool) api.RunSpec {
	cmd := []string{"python3", "train.py", "--epochs", strconv.Itoa(epochs), "--sleep", fmt.Sprint(sleep), "--samples", "50"}
	if noCheckpoint {
		cmd = append(cmd, "--no-checkpoint")
	}
	return api.RunSpec{Target: target, Command: cmd, SourceID: source}
}

// ctlJSON runs amlctl with -o json and decodes its output into v.
func (h *head) ctlJSON(v any, args ...string) {
	h.t.Helper()
	out, errOut, code := h.ctl(append([]string{"-o", "json"}, args...)...)
	if code != 0 {
		h.t.Fatalf("amlctl %v: exit %d\n%s%s", args, code, out, errOut)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		h.t.Fatalf("amlctl %v: %v\n%s", args, err, out)
	}
}

// getRun reads a run, failing the test on error.
func getRun(t testing.TB, c *api.Client, id string) *api.Run {
	t.Helper()
	r, _, err := c.GetRun(context.Background(), id, api.Wait{})
	if err != nil {
		t.Fatalf("get run %s: %v", id, err)
	}
	return r
}

// waitAttemptRunning waits until attempt n of the run has started and
// returns the run.
func waitAttemptRunning(t testing.TB, c *api.Client, id string, n int, d time.Duration) *api.Run {
	t.Helper()
	var r *api.Run
	waitFor(t, d, fmt.Sprintf("attempt %d of %s to run", n, id), func() (bool, string) {
		var err error
		r, _, err = c.GetRun(context.Background(), id, api.Wait{})
		if err != nil {
			return false, err.Error()
		}
		if len(r.Attempts) < n {
			return false, fmt.Sprintf("%s (%s), %d attempts", r.State, r.Reason, len(r.Attempts))
		}
		a := r.Attempts[n-1]
		return !a.StartedAt.IsZero() && !a.Ended, fmt.Sprintf("%s (%s), attempt %d started %v ended %v", r.State, r.Reason, n, a.StartedAt, a.Ended)
	})
	return r
}

// attemptLog reads node 0's whole output of one attempt.
func attemptLog(t testing.TB, c *api.Client, id string, attempt int) string {
	t.Helper()
	var sb strings.Builder
	var off int64
	for {
		lc, err := c.Logs(context.Background(), id, api.LogQuery{Attempt: attempt, Offset: off})
		if err != nil {
			if api.IsNotFound(err) {
				return sb.String()
			}
			t.Fatalf("logs of %s attempt %d: %v", id, attempt, err)
		}
		sb.Write(lc.Data)
		off = lc.NextOffset
		if len(lc.Data) == 0 {
			return sb.String()
		}
	}
}

var (
	epochRE  = regexp.MustCompile(`(?m)^epoch (\d+)/\d+ `)
	resumeRE = regexp.MustCompile(`resuming from checkpoint at epoch (\d+)`)
)

// lastEpoch is the last "epoch N/M" a train.py log printed (0 if none).
func lastEpoch(log string) int {
	last := 0
	for _, m := range epochRE.FindAllStringSubmatch(log, -1) {
		n, _ := strconv.Atoi(m[1])
		last = max(last, n)
	}
	return last
}

// resumedAt is the epoch a train.py log says it resumed from, or -1.
func resumedAt(log string) int {
	m := resumeRE.FindStringSubmatch(log)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// agentPid is the pid of a local node's agent.
func agentPid(t testing.TB, h *head, nodeID string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.dataDir, "nodes", nodeID, "pid"))
	if err != nil {
		t.Fatalf("agent pid file of %s: %v", nodeID, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// killNode takes a local node away without notice: SIGKILL to its agent's
// process group (the commands it runs die with it).
func killNode(t testing.TB, h *head, nodeID string) {
	t.Helper()
	pid := agentPid(t, h, nodeID)
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
		t.Fatalf("kill agent %d: %v", pid, err)
	}
}

// processAlive reports whether pid runs (a zombie does not count).
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
}

// checkNoOverlap checks that the run's attempts ran one after the other,
// by the head's clock.
func checkNoOverlap(t testing.TB, r *api.Run) {
	t.Helper()
	for i := 1; i < len(r.Attempts); i++ {
		prev, cur := r.Attempts[i-1], r.Attempts[i]
		if !prev.Ended || prev.EndedAt.After(cur.PlacedAt) {
			t.Errorf("run %s: attempt %d (ended %v at %v) overlaps attempt %d placed at %v",
				r.ID, prev.Number, prev.Ended, prev.EndedAt, cur.Number, cur.PlacedAt)
		}
		for _, n := range prev.Nodes {
			if !n.Ended.IsZero() && !cur.StartedAt.IsZero() && n.Ended.After(cur.StartedAt) {
				t.Errorf("run %s: a node of attempt %d ended at %v, after attempt %d started at %v",
					r.ID, prev.Number, n.Ended, cur.Number, cur.StartedAt)
			}
		}
	}
}
