package agent

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// assignment is an attempt of run on node 0 running command.
func assignment(run string, command ...string) api.Assignment {
	return api.Assignment{
		RunID:   run,
		Attempt: 1,
		Run:     api.RunSpec{Command: command},
		Peers:   []string{"127.0.0.1:7071"},
	}
}

func TestRunShipsOutputInOrderAndUploadsOutputs(t *testing.T) {
	h := newFakeHead(t)
	ta := startAgent(t, h, "", nil)
	a := assignment("r-1", "sh", "-c", `i=1; while [ $i -le 20000 ]; do echo "line $i"; i=$((i+1)); done; echo '{"acc": 0.9}' > outputs/model.json`)
	h.assign(a)
	st := h.final(a.Key(), 20*time.Second)

	if st.ExitCode == nil || *st.ExitCode != 0 || st.Reason != "" {
		t.Fatalf("exited report = code %v reason %q, want 0 and no reason", st.ExitCode, st.Reason)
	}
	if got := h.states(a.Key()); !slices.Equal(got, []string{"running", "finalizing", "exited"}) {
		t.Fatalf("reported states %v, want running, finalizing, exited", got)
	}
	var want strings.Builder
	for i := 1; i <= 20000; i++ {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	if got := h.logOf(a.Key()); got != want.String() {
		t.Fatalf("shipped output (%d bytes) differs from the command's (%d bytes)", len(got), want.Len())
	}
	h.mu.Lock()
	gaps, nAppends := h.gaps, len(h.appends)
	h.mu.Unlock()
	if len(gaps) > 0 {
		t.Fatalf("appends with wrong offsets: %v", gaps)
	}
	if nAppends < 2 {
		t.Fatalf("%d appends for %d bytes: want chunks of at most 64 KiB", nAppends, want.Len())
	}
	h.mu.Lock()
	blob := h.blobs[st.OutputsID]
	h.mu.Unlock()
	files := untar(t, blob)
	if files["model.json"] != "{\"acc\": 0.9}\n" {
		t.Fatalf("outputs blob %q holds %v, want model.json", st.OutputsID, files)
	}
	if err := ta.stop(t); err != nil { // waits for the attempt's goroutine
		t.Fatal(err)
	}
	if _, err := os.Stat(ta.attemptDir(a.Key())); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("work dir still there after the final report: %v", err)
	}
}

func TestNonZeroExitCodeIsReported(t *testing.T) {
	h := newFakeHead(t)
	startAgent(t, h, "", nil)
	a := assignment("r-2", "sh", "-c", "echo out; echo oops >&2; exit 3")
	h.assign(a)
	st := h.final(a.Key(), 10*time.Second)
	if st.ExitCode == nil || *st.ExitCode != 3 || st.Reason != "exit code 3" {
		t.Fatalf("exited report = code %v reason %q, want 3 and \"exit code 3\"", st.ExitCode, st.Reason)
	}
	if got := h.logOf(a.Key()); got != "out\noops\n" {
		t.Fatalf("output %q, want stdout and stderr merged in order", got)
	}
	if st.OutputsID != "" {
		t.Fatalf("outputs %q uploaded for an empty outputs/", st.OutputsID)
	}
}

func TestStopKillsTheWholeProcessGroupAfterGrace(t *testing.T) {
	h := newFakeHead(t)
	ta := startAgent(t, h, "", nil)
	// The shell and its child ignore SIGTERM: only SIGKILL after the grace
	// period ends them.
	a := assignment("r-3", "sh", "-c", `trap "" TERM; sleep 1000 & echo $!; wait`)
	h.assign(a)
	h.waitFor("the child's pid", 10*time.Second, func() bool { return strings.HasSuffix(string(h.logs[a.Key()]), "\n") })
	child, err := strconv.Atoi(strings.TrimSpace(h.logOf(a.Key())))
	if err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	a.Stop, a.StopReason = true, "canceled"
	h.assign(a)
	st := h.final(a.Key(), 10*time.Second)
	took := time.Since(stopped)
	if st.Reason != "stopped: canceled" || st.ExitCode == nil || *st.ExitCode != 128+9 {
		t.Fatalf("exited report = code %v reason %q, want 137 and \"stopped: canceled\"", st.ExitCode, st.Reason)
	}
	if took < ta.cfg.KillGrace || took > ta.cfg.KillGrace+3*time.Second {
		t.Fatalf("stop took %s, want the grace %s and a little more", took, ta.cfg.KillGrace)
	}
	waitProcessGone(t, child)
}

func TestMaxRunDurationKillsAndReportsTimedOut(t *testing.T) {
	h := newFakeHead(t)
	startAgent(t, h, "", nil)
	a := assignment("r-4", "sleep", "1000")
	a.Run.MaxRunDurationSeconds = 1
	h.assign(a)
	st := h.final(a.Key(), 10*time.Second)
	if !st.TimedOut || st.Reason != "exceeded max_run_duration_seconds=1" {
		t.Fatalf("exited report = %+v, want TimedOut and the limit in the reason", st)
	}
}

func TestFencedAttemptIsKilledAndReportedNoMore(t *testing.T) {
	h := newFakeHead(t)
	ta := startAgent(t, h, "", nil)
	a := assignment("r-5", "sh", "-c", "echo $$; exec sleep 1000")
	// The head takes the output (the pid) and then refuses the running
	// report: the agent must kill the command and report nothing more.
	h.update(func() { h.fencedStatus[a.Key()] = true })
	h.assign(a)
	h.waitFor("the refused report", 10*time.Second, func() bool { return len(h.refused) > 0 })
	pid, err := strconv.Atoi(strings.TrimSpace(h.logOf(a.Key())))
	if err != nil {
		t.Fatal(err)
	}
	waitProcessGone(t, pid)
	if err := ta.stop(t); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.statuses) != 0 || len(h.refused) != 1 || h.refused[0].State != api.AttemptRunning {
		t.Fatalf("after the 409: taken %+v, refused %+v; want only the running report, refused", h.statuses, h.refused)
	}
}

func TestRefusedOutputFencesTheAttempt(t *testing.T) {
	h := newFakeHead(t)
	ta := startAgent(t, h, "", nil)
	pidFile := filepath.Join(t.TempDir(), "pid")
	a := assignment("r-5b", "sh", "-c", "echo $$ > "+pidFile+"; echo started; exec sleep 1000")
	h.update(func() { h.fencedLogs[a.Key()] = true })
	h.assign(a)
	h.waitFor("the refused output", 10*time.Second, func() bool { return len(h.refusedLogs) > 0 })
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	waitProcessGone(t, pid)
	if err := ta.stop(t); err != nil {
		t.Fatal(err)
	}
	if got := h.states(a.Key()); len(got) > 1 || len(got) == 1 && got[0] != "running" {
		t.Fatalf("reports taken after the 409: %v", got)
	}
}

func TestUnauthorizedCallRegistersAgain(t *testing.T) {
	h := newFakeHead(t)
	startAgent(t, h, "", nil)
	h.waitFor("registration", 5*time.Second, func() bool { return len(h.registrations) == 1 })
	h.revokeTokens()
	a := assignment("r-6", "true")
	h.assign(a)
	st := h.final(a.Key(), 10*time.Second)
	if st.ExitCode == nil || *st.ExitCode != 0 {
		t.Fatalf("exited report = %+v, want exit code 0", st)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.registrations) != 2 || h.registrations[1].NodeID != "n-1" {
		t.Fatalf("registrations %+v, want a second one as n-1", h.registrations)
	}
}

func TestStatusReportsAreRetriedAfterUnavailable(t *testing.T) {
	h := newFakeHead(t)
	startAgent(t, h, "", nil)
	h.update(func() { h.failStatus = 3 })
	a := assignment("r-7", "true")
	h.assign(a)
	h.final(a.Key(), 10*time.Second)
	if got := h.states(a.Key()); !slices.Equal(got, []string{"running", "finalizing", "exited"}) {
		t.Fatalf("reported states %v, want each once after retries", got)
	}
}

func TestRunSeesItsEnvironment(t *testing.T) {
	h := newFakeHead(t)
	ta := startAgent(t, h, "", nil)
	a := assignment("r-8", "sh", "-c", "pwd; env")
	a.Attempt = 2
	a.Run.NodeCount, a.Run.ProcessCountPerNode = 2, 3
	a.Run.Env = map[string]string{"FOO": "bar", "PYTHONUNBUFFERED": "0"}
	a.Peers = []string{"10.0.0.5:7071", "10.0.0.6:7071"}
	h.assign(a)
	st := h.final(a.Key(), 10*time.Second)
	if *st.ExitCode != 0 {
		t.Fatalf("exit code %d", *st.ExitCode)
	}
	out := h.logOf(a.Key())
	dir := ta.attemptDir(a.Key())
	if first, _, _ := strings.Cut(out, "\n"); first != dir {
		t.Errorf("cwd %q, want the work dir %q", first, dir)
	}
	want := map[string]string{
		"AML_RUN_ID": "r-8", "AML_ATTEMPT": "2", "AML_NODE_RANK": "0", "NODE_RANK": "0",
		"AML_NODE_COUNT": "2", "WORLD_SIZE": "6", "AML_OUTPUT_DIR": filepath.Join(dir, "outputs"),
		"AML_CHECKPOINT_DIR": filepath.Join(ta.cfg.WorkDir, "checkpoints", "r-8", "2", "0"),
		"MASTER_ADDR":        "10.0.0.5", "MASTER_PORT": "29500", "FOO": "bar", "PYTHONUNBUFFERED": "0",
		"PATH": os.Getenv("PATH"),
	}
	for k, v := range want {
		if !strings.Contains(out, "\n"+k+"="+v+"\n") {
			t.Errorf("env lacks %s=%s", k, v)
		}
	}
	// Checkpoints live at the head: the local dir goes with the attempt.
	if err := ta.stop(t); err != nil { // waits for the attempt's goroutine
		t.Fatal(err)
	}
	if _, err := os.Stat(want["AML_CHECKPOINT_DIR"]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("checkpoint dir left behind after the attempt: %v", err)
	}
}

func TestSourceSnapshotIsExtractedIntoTheWorkDir(t *testing.T) {
	h := newFakeHead(t)
	startAgent(t, h, "", nil)
	h.update(func() {
		h.blobs["src-1"] = makeTarGz(t, []tarEntry{
			{name: "train.sh", body: "#!/bin/sh\ncat data/x.txt\n", mode: 0o755},
			{name: "data/", dir: true},
			{name: "data/x.txt", body: "hello from source\n"},
		})
	})
	a := assignment("r-9", "./train.sh")
	a.Run.SourceID = "src-1"
	h.assign(a)
	st := h.final(a.Key(), 10*time.Second)
	if *st.ExitCode != 0 || h.logOf(a.Key()) != "hello from source\n" {
		t.Fatalf("exit %d output %q, want the script's output", *st.ExitCode, h.logOf(a.Key()))
	}
}

func TestSourceSnapshotEscapingTheWorkDirIsRejected(t *testing.T) {
	h := newFakeHead(t)
	ta := startAgent(t, h, "", nil)
	h.update(func() { h.blobs["src-2"] = makeTarGz(t, []tarEntry{{name: "../../../evil.txt", body: "x"}}) })
	a := assignment("r-10", "true")
	a.Run.SourceID = "src-2"
	h.assign(a)
	st := h.final(a.Key(), 10*time.Second)
	if st.ExitCode == nil || *st.ExitCode != ExitPrepareFailed || !strings.Contains(st.Reason, "escapes the work dir") {
		t.Fatalf("exited report = code %v reason %q, want 125 and the escape named", st.ExitCode, st.Reason)
	}
	if _, err := os.Stat(filepath.Join(ta.cfg.WorkDir, "evil.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the escaping entry was written: %v", err)
	}
}

func TestCommandNotFoundIsReportedAs127(t *testing.T) {
	h := newFakeHead(t)
	startAgent(t, h, "", nil)
	a := assignment("r-11", "no-such-command-amld")
	h.assign(a)
	st := h.final(a.Key(), 10*time.Second)
	if st.ExitCode == nil || *st.ExitCode != 127 || !strings.Contains(st.Reason, `"no-such-command-amld" not found`) {
		t.Fatalf("exited report = code %v reason %q, want 127 and a reason", st.ExitCode, st.Reason)
	}
}

func TestRestartedAgentReusesItsTokenAndReportsLostAttempts(t *testing.T) {
	h := newFakeHead(t)
	dir := t.TempDir()
	first := startAgent(t, h, dir, nil)
	a := assignment("r-12", "sleep", "1000")
	h.assign(a)
	h.waitFor("running", 10*time.Second, func() bool { return len(h.statuses) == 1 })
	if err := first.stop(t); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	if got := h.states(a.Key()); !slices.Equal(got, []string{"running"}) {
		t.Fatalf("states after the agent stopped: %v, want nothing past running", got)
	}
	startAgent(t, h, dir, nil)
	st := h.final(a.Key(), 10*time.Second)
	if !st.Lost || st.Reason != "agent restarted; the attempt's process was lost" {
		t.Fatalf("exited report = %+v, want Lost", st)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.registrations) != 1 {
		t.Fatalf("%d registrations, want the saved token reused", len(h.registrations))
	}
}

func TestRemovedNodeStopsTheAgent(t *testing.T) {
	h := newFakeHead(t)
	ta := startAgent(t, h, "", nil)
	h.waitFor("a heartbeat", 5*time.Second, func() bool { return h.heartbeats > 0 })
	h.update(func() { h.removed = true })
	select {
	case err := <-ta.errc:
		close(ta.errc)
		if !errors.Is(err, ErrNodeRemoved) {
			t.Fatalf("Run = %v, want ErrNodeRemoved", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("agent still runs after its node was removed")
	}
	if _, err := os.Stat(filepath.Join(ta.cfg.WorkDir, "node.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("node credential kept: %v", err)
	}
}

// waitProcessGone waits for a process the agent killed: it is not the test's
// child, so there is no event to wait on, only /proc to look at.
func waitProcessGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		if i := bytes.LastIndexByte(b, ')'); i > 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X') {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still alive", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type tarEntry struct {
	name, body, link string
	mode             int64
	dir, symlink     bool
	hard             bool
}

func makeTarGz(t *testing.T, ents []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range ents {
		hdr := &tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
		}
		switch {
		case e.dir:
			hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeDir, 0, 0o755
		case e.symlink:
			hdr.Typeflag, hdr.Size, hdr.Linkname = tar.TypeSymlink, 0, e.link
		case e.hard:
			hdr.Typeflag, hdr.Size, hdr.Linkname = tar.TypeLink, 0, e.link
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// untar returns the regular files of a gzip'd tar by name.
func untar(t *testing.T, b []byte) map[string]string {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	out := map[string]string{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			body, _ := io.ReadAll(tr)
			out[hdr.Name] = string(body)
		}
	}
}
