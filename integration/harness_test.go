package integration

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/mpi"
)

// binDir holds amld and amlctl.
var binDir string

func TestMain(m *testing.M) {
	binDir = os.Getenv("AMLD_BIN")
	if binDir == "" {
		dir, err := os.MkdirTemp("", "amld-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, c := range []string{"amld", "amlctl", "amld-rsh"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(dir, c), "../cmd/"+c)
			if c == "amld-rsh" {
				cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // static: it may run inside any image
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				fmt.Fprintf(os.Stderr, "build %s: %v\n%s", c, err, out)
				os.Exit(1)
			}
		}
		binDir = dir
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// head is one `amld server` process.
type head struct {
	t       testing.TB
	dataDir string
	port    int
	args    []string
	cmd     *exec.Cmd
	out     *syncBuffer
	done    chan struct{}
	token   string
}

// startHead starts `amld server` on a fresh data dir.
func startHead(t testing.TB, extra ...string) *head {
	t.Helper()
	h := &head{t: t, dataDir: t.TempDir(), port: freePort(t), args: extra}
	// The raft port is listen+1: make sure it is free too.
	for {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", h.port+1))
		if err == nil {
			l.Close()
			break
		}
		h.port = freePort(t)
	}
	h.start()
	t.Cleanup(h.stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(h.dataDir, "admin.token"))
		if err == nil && len(bytes.TrimSpace(b)) > 0 {
			h.token = strings.TrimSpace(string(b))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("head did not bootstrap:\n%s", h.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.waitReady()
	return h
}

func (h *head) url() string { return fmt.Sprintf("http://127.0.0.1:%d", h.port) }

// start runs the server process (again, after a kill).
func (h *head) start() {
	args := append([]string{"server", "--data-dir", h.dataDir, "--listen", fmt.Sprintf("127.0.0.1:%d", h.port), "--log-level", "debug", "--insecure-dev"}, h.args...)
	h.cmd = exec.Command(filepath.Join(binDir, "amld"), args...)
	if h.out == nil {
		h.out = &syncBuffer{}
	}
	h.cmd.Stdout, h.cmd.Stderr = h.out, h.out
	if err := h.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) {
		_ = c.Wait()
		close(done)
	}(h.cmd, h.done)
}

// waitReady waits until the head answers as leader.
func (h *head) waitReady() {
	h.t.Helper()
	c := h.client()
	waitFor(h.t, 30*time.Second, "head ready", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := c.ListTargets(ctx)
		return err == nil, fmt.Sprint(err)
	})
}

// kill9 kills the server process at once.
func (h *head) kill9() {
	_ = h.cmd.Process.Signal(syscall.SIGKILL)
	<-h.done
}

// stop sends SIGTERM and waits for a clean exit; local nodes are stopped too.
func (h *head) stop() {
	if h.cmd == nil || h.cmd.ProcessState != nil {
		return
	}
	select {
	case <-h.done:
	default:
		_ = h.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-h.done:
		case <-time.After(20 * time.Second):
			_ = h.cmd.Process.Kill()
			<-h.done
			h.t.Errorf("head did not stop within 20s of SIGTERM")
		}
	}
	// Local nodes outlive `amld server` by design; stop them here.
	stopLocalNodes(h.dataDir)
}

func stopLocalNodes(dataDir string) {
	pids, _ := filepath.Glob(filepath.Join(dataDir, "nodes", "*", "pid"))
	defer func() { // the temp dirs of attempts the killed agents ran
		for _, p := range pids {
			tmps, _ := filepath.Glob(filepath.Join(os.TempDir(), mpi.TempPrefix(filepath.Join(filepath.Dir(p), "work"))+"*"))
			for _, d := range tmps {
				_ = os.RemoveAll(d)
			}
		}
	}()
	for _, p := range pids {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d", &pid); err == nil && pid > 1 {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func (h *head) client() *api.Client {
	c, err := api.NewClient(api.Config{Addresses: []string{h.url()}, Token: h.token})
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// ctl runs amlctl against h and returns stdout, stderr and the exit code.
func (h *head) ctl(args ...string) (string, string, int) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "amlctl"), args...)
	cmd.Env = append(os.Environ(), "AMLCTL_ADDR="+h.url(), "AMLCTL_TOKEN="+h.token, "AMLCTL_CONFIG="+filepath.Join(h.dataDir, "no-config"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			h.t.Fatalf("amlctl %v: %v", args, err)
		}
	}
	return stdout.String(), stderr.String(), code
}

// waitFor polls cond until it holds or the deadline passes (integration
// tests only: real processes, real time).
func waitFor(t testing.TB, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	last := ""
	for {
		ok, s := cond()
		if ok {
			return
		}
		last = s
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last: %s", d, what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// syncBuffer is a goroutine-safe bytes.Buffer for process output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func intp(v int) *int { return &v }

// sampleEvery calls sample every d on a goroutine of its own until the
// returned stop is called; stop returns once the last sample is done, so
// what sample wrote may be read after it without a lock.
func sampleEvery(d time.Duration, sample func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(d):
			}
			sample()
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}
