package nodes

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// TestMain lets the test binary act as a fake `amld agent`: the local
// provider starts os.Args[0] with "agent" as its first argument.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "agent" {
		os.Exit(fakeAgent(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// fakeAgent checks its flags like the real CLI, then waits for SIGTERM
// (which it ignores when FAKE_AGENT_IGNORE_TERM is set).
func fakeAgent(args []string) int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	for _, f := range []string{"--head", "--node-id", "--target", "--join-token-file", "--work-dir", "--cpus", "--memory-mb", "--gpus"} {
		if flagValue(append([]string{"amld", "agent"}, args...), f) == "" {
			fmt.Fprintln(os.Stderr, "missing", f)
			return 2
		}
	}
	tok, err := os.ReadFile(flagValue(args, "--join-token-file"))
	if err != nil || len(bytes.TrimSpace(tok)) == 0 {
		fmt.Fprintln(os.Stderr, "no join token:", err)
		return 2
	}
	fmt.Println("fake agent up")
	for range sigs {
		if os.Getenv("FAKE_AGENT_IGNORE_TERM") == "" {
			return 0
		}
	}
	return 0
}

func newTestLocal(t *testing.T, edit func(*LocalConfig)) *Local {
	t.Helper()
	cfg := LocalConfig{Binary: os.Args[0], DataDir: t.TempDir(), HeadAddrs: []string{"127.0.0.1:1"}, StopTimeout: 5 * time.Second}
	if edit != nil {
		edit(&cfg)
	}
	l, err := NewLocal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return l
}

func spec(id string) NodeSpec {
	return NodeSpec{
		NodeID:    id,
		Target:    "cpu-cluster",
		Size:      api.VMSize{Name: "cpu-2", CPUs: 2, MemoryGB: 4},
		JoinToken: "join-secret",
	}
}

func TestLocalCreateListDelete(t *testing.T) {
	l := newTestLocal(t, nil)
	ctx := context.Background()
	pid, err := l.Create(ctx, spec("n-1"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(l.cfg.DataDir, "n-1")
	if fi, err := os.Stat(filepath.Join(dir, "join.token")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("join.token: %v, mode %v; want 0600", err, fi.Mode())
	}
	insts, err := l.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []Instance{{NodeID: "n-1", ProviderID: pid, Target: "cpu-cluster"}}
	if !slices.Equal(insts, want) {
		t.Fatalf("List = %+v, want %+v", insts, want)
	}
	args, _ := agentArgs(readPidFile(filepath.Join(dir, "pid")), "n-1")
	if got := strings.Join(args[1:], " "); !strings.Contains(got, "--cpus 2 --memory-mb 4096 --gpus 0") ||
		!strings.Contains(got, "--work-dir "+filepath.Join(dir, "work")) || strings.Contains(got, "join-secret") {
		t.Fatalf("agent command line %q", got)
	}
	if again, err := l.Create(ctx, spec("n-1")); err != nil || again != pid {
		t.Fatalf("second Create = %q, %v; want the running agent %q", again, err, pid)
	}

	start := time.Now()
	if err := l.Delete(ctx, "n-1", pid); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Delete of an agent that obeys SIGTERM took %s", took)
	}
	if insts, err := l.List(ctx); err != nil || len(insts) != 0 {
		t.Fatalf("List after Delete = %+v, %v; want nothing", insts, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("node dir still there: %v", err)
	}
	if err := l.Delete(ctx, "n-1", pid); err != nil {
		t.Fatalf("Delete of a gone node = %v, want nil", err)
	}
}

func TestLocalDeleteKillsAnAgentThatIgnoresSIGTERM(t *testing.T) {
	t.Setenv("FAKE_AGENT_IGNORE_TERM", "1")
	l := newTestLocal(t, func(c *LocalConfig) { c.StopTimeout = 300 * time.Millisecond })
	pid, err := l.Create(context.Background(), spec("n-2"))
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the fake agent has installed its handler (it prints once
	// it has), or SIGTERM would kill it before it can ignore it.
	waitForLog(t, filepath.Join(l.cfg.DataDir, "n-2", "agent.log"), "fake agent up")
	if err := l.Delete(context.Background(), "n-2", pid); err != nil {
		t.Fatal(err)
	}
	if insts, _ := l.List(context.Background()); len(insts) != 0 {
		t.Fatalf("List after Delete = %+v", insts)
	}
}

func TestLocalCloseStopsNodesWhenAsked(t *testing.T) {
	l := newTestLocal(t, func(c *LocalConfig) { c.StopNodesOnClose = true })
	for _, id := range []string{"n-a", "n-b"} {
		if _, err := l.Create(context.Background(), spec(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if insts, _ := l.List(context.Background()); len(insts) != 0 {
		t.Fatalf("List after Close = %+v, want no node", insts)
	}
	if _, err := l.Create(context.Background(), spec("n-c")); err == nil {
		t.Fatal("Create after Close succeeded")
	}
}

func TestLocalListIgnoresPidsThatAreNotAgents(t *testing.T) {
	l := newTestLocal(t, nil)
	dir := filepath.Join(l.cfg.DataDir, "n-x")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pid"), fmt.Appendf(nil, "%d\n", os.Getpid()), 0o600); err != nil {
		t.Fatal(err)
	}
	if insts, err := l.List(context.Background()); err != nil || len(insts) != 0 {
		t.Fatalf("List = %+v, %v; want the test process not taken for an agent", insts, err)
	}
	if err := l.Delete(context.Background(), "n-x", ""); err != nil {
		t.Fatal(err)
	}
}

// waitForLog waits for a line from a child process, which only its log
// file can tell.
func waitForLog(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(want)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never said %q", path, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
