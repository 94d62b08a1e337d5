package nodes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/amld/amld/mpi"
)

// LocalConfig configures the local provider.
type LocalConfig struct {
	// Binary is the path of the amld binary the agents run. Required.
	Binary string
	// DataDir holds the nodes: DataDir/<nodeID>/ with join.token, pid,
	// agent.log and the agent's work dir. Required.
	DataDir string
	// HeadAddrs are the heads' addresses, used when a NodeSpec has none.
	HeadAddrs []string
	// Logger receives the provider's logs; nil discards them.
	Logger *slog.Logger
	// ExtraArgs are added to every agent's command line.
	ExtraArgs []string
	// StopNodesOnClose makes Close delete every node (amld dev). Otherwise
	// agents outlive the server, so that a restarted head finds them.
	StopNodesOnClose bool
	// StopTimeout is how long Delete waits for an agent to exit after
	// SIGTERM before it kills the agent's process group (default 15s).
	StopTimeout time.Duration
	// Runtimes are the runtimes the agents have (what Runtimes reports):
	// "docker" besides "process" when a Docker Engine answers on this
	// machine. Empty means the process runtime alone.
	Runtimes []string
}

// Local is the `local` provider: each node is an `amld agent` process on
// this machine, in its own process group (so a terminal's Ctrl-C does not
// reach it) and without a parent-death signal (so agents survive a kill -9
// of the server). The agents this provider started are reaped by one
// goroutine, which Close stops.
type Local struct {
	cfg LocalConfig
	log *slog.Logger

	mu       sync.Mutex
	children map[string]int // pids of the agents this provider started, by node ID
	closed   bool

	stop chan struct{}
	wg   sync.WaitGroup
}

var _ Provider = (*Local)(nil)

// NewLocal checks cfg and returns the provider, with its reaper running.
func NewLocal(cfg LocalConfig) (*Local, error) {
	if cfg.Binary == "" {
		return nil, errors.New("local provider: Binary is required")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("local provider: DataDir is required")
	}
	if cfg.StopTimeout < 0 {
		return nil, fmt.Errorf("local provider: StopTimeout %s must not be negative", cfg.StopTimeout)
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = 15 * time.Second
	}
	bin := cfg.Binary
	if !strings.Contains(bin, "/") {
		p, err := exec.LookPath(bin)
		if err != nil {
			return nil, fmt.Errorf("local provider: Binary: %w", err)
		}
		bin = p
	}
	var err error
	if cfg.Binary, err = filepath.Abs(bin); err != nil {
		return nil, fmt.Errorf("local provider: Binary: %w", err)
	}
	if cfg.DataDir, err = filepath.Abs(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("local provider: DataDir: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("local provider: DataDir: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Local{cfg: cfg, log: log, children: map[string]int{}, stop: make(chan struct{})}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGCHLD)
	l.wg.Add(1)
	go l.reap(sigs)
	return l, nil
}

// Name implements Provider.
func (l *Local) Name() string { return "local" }

// Runtimes says which runtimes the agents of this provider's nodes have.
func (l *Local) Runtimes() []string {
	if len(l.cfg.Runtimes) == 0 {
		return []string{"process"}
	}
	return append([]string(nil), l.cfg.Runtimes...)
}

// Create implements Provider: it starts `amld agent` for spec and returns
// "pid:<pid>". A node whose agent already runs is not started twice.
func (l *Local) Create(ctx context.Context, spec NodeSpec) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if !safeNodeID(spec.NodeID) {
		return "", fmt.Errorf("local provider: node ID %q is not a safe file name", spec.NodeID)
	}
	heads := spec.HeadAddrs
	if len(heads) == 0 {
		heads = l.cfg.HeadAddrs
	}
	if len(heads) == 0 {
		return "", errors.New("local provider: no head address for the agent")
	}
	if spec.JoinToken == "" {
		return "", errors.New("local provider: no join token for the agent")
	}
	if pid, ok := l.running(spec.NodeID); ok {
		return providerID(pid), nil
	}
	dir := filepath.Join(l.cfg.DataDir, spec.NodeID)
	work, data, err := l.workDirs(spec)
	if err != nil {
		return "", err
	}
	for _, d := range []string{dir, work, data} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return "", fmt.Errorf("local provider: %w", err)
		}
	}
	tokenFile := filepath.Join(dir, "join.token")
	if err := os.WriteFile(tokenFile, []byte(spec.JoinToken+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("local provider: write join token: %w", err)
	}
	if err := os.Chmod(tokenFile, 0o600); err != nil {
		return "", fmt.Errorf("local provider: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return "", fmt.Errorf("local provider: agent log: %w", err)
	}
	defer logf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return "", fmt.Errorf("local provider: %w", err)
	}
	defer devnull.Close()
	var caArgs []string
	if len(spec.CACertPEM) > 0 {
		caFile := filepath.Join(dir, "ca.crt")
		if err := os.WriteFile(caFile, spec.CACertPEM, 0o600); err != nil {
			return "", fmt.Errorf("local provider: write CA file: %w", err)
		}
		caArgs = []string{"--ca-file", caFile}
	}
	res := spec.Size.Resources()
	argv := []string{l.cfg.Binary, "agent",
		"--head", strings.Join(heads, ","),
		"--node-id", spec.NodeID,
		"--target", spec.Target,
		"--join-token-file", tokenFile,
		"--work-dir", work,
		"--cpus", strconv.Itoa(res.CPUs),
		"--memory-mb", strconv.FormatInt(res.MemoryMB, 10),
		"--gpus", strconv.Itoa(res.GPUs),
	}
	argv = append(argv, caArgs...)
	argv = append(argv, l.cfg.ExtraArgs...)

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return "", errors.New("local provider: closed")
	}
	p, err := os.StartProcess(l.cfg.Binary, argv, &os.ProcAttr{
		Dir:   dir,
		Env:   append(os.Environ(), "AML_DATA_DIR="+data),
		Files: []*os.File{devnull, logf, logf},
		// Setpgid: a terminal's Ctrl-C must not reach the agents. No
		// Pdeathsig: agents outlive the server.
		Sys: &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		return "", fmt.Errorf("local provider: start agent: %w", err)
	}
	pid := p.Pid
	_ = p.Release() // the reaper waits by pid
	l.children[spec.NodeID] = pid
	if err := os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return "", fmt.Errorf("local provider: write pid file: %w", err)
	}
	l.log.Info("started agent", "node", spec.NodeID, "pid", pid, "log", filepath.Join(dir, "agent.log"))
	return providerID(pid), nil
}

// Delete implements Provider: SIGTERM to the agent, which kills its
// attempts; after StopTimeout (or when ctx ends) SIGKILL to its process
// group; then DataDir/<nodeID> is removed.
func (l *Local) Delete(ctx context.Context, nodeID, providerID string) error {
	if !safeNodeID(nodeID) {
		return fmt.Errorf("local provider: node ID %q is not a safe file name", nodeID)
	}
	pid := l.pidOf(nodeID, providerID)
	if pid > 0 && isAgent(pid, nodeID) {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		if !waitGone(ctx, nodeID, pid, l.cfg.StopTimeout) {
			l.log.Warn("agent did not stop in time; killing it", "node", nodeID, "pid", pid)
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_ = syscall.Kill(pid, syscall.SIGKILL)
			waitGone(context.Background(), nodeID, pid, 5*time.Second)
		}
		l.log.Info("stopped agent", "node", nodeID, "pid", pid)
	}
	// The temp dirs of MPI attempts a killed agent left (they live outside
	// the node dir: Open MPI needs short paths).
	tmps, _ := filepath.Glob(filepath.Join(os.TempDir(), mpi.TempPrefix(filepath.Join(l.cfg.DataDir, nodeID, "work"))+"*"))
	for _, d := range tmps {
		_ = os.RemoveAll(d)
	}
	if err := os.RemoveAll(filepath.Join(l.cfg.DataDir, nodeID)); err != nil {
		return fmt.Errorf("local provider: remove node dir: %w", err)
	}
	return nil
}

// List implements Provider: the nodes under DataDir whose agent runs.
func (l *Local) List(ctx context.Context) ([]Instance, error) {
	ents, err := os.ReadDir(l.cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("local provider: %w", err)
	}
	var out []Instance
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !e.IsDir() || !safeNodeID(e.Name()) {
			continue
		}
		pid := readPidFile(filepath.Join(l.cfg.DataDir, e.Name(), "pid"))
		if pid <= 0 {
			continue
		}
		args, ok := agentArgs(pid, e.Name())
		if !ok {
			continue
		}
		out = append(out, Instance{NodeID: e.Name(), ProviderID: providerID(pid), Target: flagValue(args, "--target")})
	}
	return out, nil
}

// Close stops the reaper; with StopNodesOnClose it first deletes every
// node this provider started or finds in DataDir.
func (l *Local) Close(ctx context.Context) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	ids := map[string]string{}
	for id, pid := range l.children {
		ids[id] = providerID(pid)
	}
	l.mu.Unlock()
	var errs []error
	if l.cfg.StopNodesOnClose {
		insts, err := l.List(ctx)
		if err != nil {
			errs = append(errs, err)
		}
		for _, in := range insts {
			ids[in.NodeID] = in.ProviderID
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for id, pid := range ids {
			wg.Go(func() {
				if err := l.Delete(ctx, id, pid); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	close(l.stop)
	l.wg.Wait()
	return errors.Join(errs...)
}

// reap waits for the agents this provider started, on SIGCHLD and once a
// second, until Close.
func (l *Local) reap(sigs chan os.Signal) {
	defer l.wg.Done()
	defer signal.Stop(sigs)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-sigs:
		case <-t.C:
		}
		l.mu.Lock()
		for id, pid := range l.children {
			var ws syscall.WaitStatus
			got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
			if got == pid || errors.Is(err, syscall.ECHILD) {
				delete(l.children, id)
				l.log.Info("agent exited", "node", id, "pid", pid, "status", exitStatus(ws))
			}
		}
		l.mu.Unlock()
	}
}

// running returns the pid of nodeID's agent if it runs.
func (l *Local) running(nodeID string) (int, bool) {
	pid := readPidFile(filepath.Join(l.cfg.DataDir, nodeID, "pid"))
	if pid > 0 && isAgent(pid, nodeID) {
		return pid, true
	}
	return 0, false
}

// pidOf finds nodeID's agent pid: its pid file, else the provider ID.
func (l *Local) pidOf(nodeID, provID string) int {
	if pid := readPidFile(filepath.Join(l.cfg.DataDir, nodeID, "pid")); pid > 0 {
		return pid
	}
	pid, _ := strconv.Atoi(strings.TrimPrefix(provID, "pid:"))
	return pid
}

// waitGone waits up to d (or ctx's end) for pid to exit (a zombie counts
// as gone: the reaper collects it). It reports whether pid is gone.
func waitGone(ctx context.Context, nodeID string, pid int, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for isAgent(pid, nodeID) {
		select {
		case <-tick.C:
		case <-deadline.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
	return true
}

func providerID(pid int) string { return "pid:" + strconv.Itoa(pid) }

func readPidFile(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

// isAgent reports whether pid is a live (not zombie) amld agent of nodeID.
func isAgent(pid int, nodeID string) bool {
	_, ok := agentArgs(pid, nodeID)
	return ok
}

// agentArgs returns pid's argv when pid is a live (not zombie) process
// running `<binary> agent ... --node-id nodeID ...`.
func agentArgs(pid int, nodeID string) ([]string, bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, false
	}
	// The state follows the command name, which is in parentheses.
	if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X' {
		return nil, false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, false
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	if len(args) < 2 || args[1] != "agent" || flagValue(args, "--node-id") != nodeID {
		return nil, false
	}
	return args, true
}

// flagValue finds `--name value` or `--name=value` in args.
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

func exitStatus(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return "killed by " + ws.Signal().String()
	}
	return "exit code " + strconv.Itoa(ws.ExitStatus())
}

// safeNodeID reports whether id can name a directory under DataDir.
func safeNodeID(id string) bool {
	if id == "" || len(id) > 200 || id == "." || id == ".." || !fs.ValidPath(id) || strings.ContainsAny(id, `/\`) {
		return false
	}
	return true
}
