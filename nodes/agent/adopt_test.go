package agent

import (
	"context"
	"io"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// fakeDocker is an in-memory runtime named docker whose "containers"
// outlive the agent, as real ones do: it can adopt and sweep them.
type fakeDocker struct {
	mu      sync.Mutex
	ctrs    map[api.AttemptKey]*fakeCtr
	starts  int
	adopted int
	swept   []api.AttemptKey
	events  chan string // "adopt" and "sweep", as they happen
}

var (
	_ Runtime = (*fakeDocker)(nil)
	_ Adopter = (*fakeDocker)(nil)
)

// fakeCtr is one container: it prints out, then runs until exit or a signal.
type fakeCtr struct {
	out     string
	done    chan struct{}
	once    sync.Once
	code    int
	removed bool
	signals []syscall.Signal
}

func (c *fakeCtr) exit(code int) {
	c.once.Do(func() {
		c.code = code
		close(c.done)
	})
}

func newFakeDocker() *fakeDocker {
	return &fakeDocker{ctrs: map[api.AttemptKey]*fakeCtr{}, events: make(chan string, 16)}
}

// await waits for event ev of the runtime.
func (f *fakeDocker) await(t *testing.T, ev string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case got := <-f.events:
			if got == ev {
				return
			}
		case <-deadline:
			t.Fatalf("timed out waiting for the runtime's %s", ev)
		}
	}
}

func (f *fakeDocker) Name() string { return "docker" }

func (f *fakeDocker) Start(_ context.Context, spec Spec) (Handle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := &fakeCtr{out: "hello from " + spec.Image + "\n", done: make(chan struct{})}
	f.ctrs[spec.Key] = c
	f.starts++
	return newFakeHandle(f, c), nil
}

func (f *fakeDocker) Adopt(_ context.Context, _ string, k api.AttemptKey) (Handle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.ctrs[k]
	if c == nil || c.removed {
		return nil, nil
	}
	f.adopted++
	f.events <- "adopt"
	return newFakeHandle(f, c), nil
}

func (f *fakeDocker) Sweep(_ context.Context, _ string, keep func(api.AttemptKey) bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, c := range f.ctrs {
		if !c.removed && !keep(k) {
			c.removed = true
			c.exit(137)
			f.swept = append(f.swept, k)
		}
	}
	f.events <- "sweep"
	return nil
}

func (f *fakeDocker) get(k api.AttemptKey) *fakeCtr {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ctrs[k]
}

// fakeHandle watches a fakeCtr; Detach ends its output without ending it.
type fakeHandle struct {
	f        *fakeDocker
	c        *fakeCtr
	out      *io.PipeReader
	detached chan struct{}
	dOnce    sync.Once
}

func newFakeHandle(f *fakeDocker, c *fakeCtr) *fakeHandle {
	pr, pw := io.Pipe()
	h := &fakeHandle{f: f, c: c, out: pr, detached: make(chan struct{})}
	go func() {
		_, _ = io.WriteString(pw, c.out) // the whole log, from the start
		select {
		case <-c.done:
		case <-h.detached:
		}
		pw.Close()
	}()
	return h
}

func (h *fakeHandle) Output() io.ReadCloser { return h.out }
func (h *fakeHandle) Done() <-chan struct{} { return h.c.done }
func (h *fakeHandle) ExitCode() int         { return h.c.code }
func (h *fakeHandle) Detach()               { h.dOnce.Do(func() { close(h.detached) }) }

func (h *fakeHandle) Signal(sig syscall.Signal) error {
	h.f.mu.Lock()
	h.c.signals = append(h.c.signals, sig)
	h.f.mu.Unlock()
	h.c.exit(128 + int(sig))
	return nil
}

func (h *fakeHandle) Remove(context.Context) error {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	h.c.removed = true
	return nil
}

// imageAssignment is an attempt of run on node 0 with an image.
func imageAssignment(run string) api.Assignment {
	a := assignment(run, "serve")
	a.Run.Environment.Image = "img:1"
	a.Allocation.NodeID = "n-1"
	return a
}

func withFake(f *fakeDocker, keep bool) func(*Config) {
	return func(c *Config) {
		c.Runtimes = []Runtime{NewProcessRuntime(), f}
		c.KeepContainers = keep
	}
}

func TestRestartedAgentAdoptsItsKeptContainer(t *testing.T) {
	h := newFakeHead(t)
	dir := t.TempDir()
	f := newFakeDocker()
	first := startAgent(t, h, dir, withFake(f, true))
	a := imageAssignment("r-20")
	h.assign(a)
	h.waitFor("running and output", 10*time.Second, func() bool {
		return len(h.statuses) >= 1 && strings.Contains(string(h.logs[a.Key()]), "hello")
	})
	if err := first.stop(t); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	c := f.get(a.Key())
	select {
	case <-c.done:
		t.Fatalf("the agent stopped its container (signals %v); want it left running", c.signals)
	default:
	}

	startAgent(t, h, dir, withFake(f, true))
	f.await(t, "adopt")
	c.exit(0)
	st := h.final(a.Key(), 10*time.Second)
	if st.Lost || st.ExitCode == nil || *st.ExitCode != 0 {
		t.Fatalf("final report %+v, want exit code 0, not lost", st)
	}
	if f.starts != 1 {
		t.Errorf("%d containers started, want 1 (adopted, no second copy)", f.starts)
	}
	if got := h.logOf(a.Key()); got != "hello from img:1\n" {
		t.Errorf("log %q, want the container's output once", got)
	}
	f.mu.Lock()
	removed, adopted := c.removed, f.adopted
	f.mu.Unlock()
	if !removed || adopted != 1 {
		t.Errorf("container removed=%v, adopted %d times; want removed after its end, adopted once", removed, adopted)
	}
	if got := h.states(a.Key()); !slices.Equal(got, []string{"running", "finalizing", "exited"}) {
		t.Errorf("states %v, want running, finalizing, exited", got)
	}
}

func TestRestartedAgentSweepsContainersNoAttemptClaims(t *testing.T) {
	h := newFakeHead(t)
	dir := t.TempDir()
	f := newFakeDocker()
	stale := api.AttemptKey{RunID: "r-gone", Attempt: 1}
	f.ctrs[stale] = &fakeCtr{done: make(chan struct{})}
	startAgent(t, h, dir, withFake(f, true))
	f.await(t, "sweep")
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Contains(f.swept, stale) {
		t.Fatalf("swept %v, want the unclaimed %v", f.swept, stale)
	}
}

func TestStoppedAgentKillsContainersUnlessKept(t *testing.T) {
	h := newFakeHead(t)
	f := newFakeDocker()
	ta := startAgent(t, h, "", withFake(f, false))
	a := imageAssignment("r-21")
	h.assign(a)
	h.waitFor("running", 10*time.Second, func() bool { return len(h.statuses) >= 1 })
	if err := ta.stop(t); err != nil {
		t.Fatal(err)
	}
	c := f.get(a.Key())
	select {
	case <-c.done:
	default:
		t.Fatal("the container still runs after the agent stopped without KeepContainers")
	}
	if !c.removed {
		t.Error("the killed container was not removed")
	}
}
