package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/internal/waits"
	"github.com/amld/amld/mpi"
)

// ErrNodeRemoved is returned by Run when the head removed the node (a 404
// from a heartbeat or a registration, or an assignments answer with
// Shutdown). The agent stopped its attempts; the daemon should exit
// successfully and not be restarted.
var ErrNodeRemoved = errors.New("agent: the node was removed from the cluster")

// Agent is one node's agent. Make it with New and call Run once.
type Agent struct {
	cfg      Config
	log      *slog.Logger
	join     *api.Client // authenticates with the join token
	hc       *http.Client
	ownHC    bool // hc was made here: Run closes its idle connections
	runtimes map[string]Runtime
	recs     records

	authMu sync.Mutex // serializes registrations
	mu     sync.Mutex // guards sess
	sess   session

	started     atomic.Bool
	wg          sync.WaitGroup // every goroutine of Run
	removed     chan struct{}  // closed when the node was removed
	removedOnce sync.Once

	// attempts is owned by the goroutine that watches assignments.
	attempts map[api.AttemptKey]*attempt
	// swept is set once the runtimes removed what no attempt claims (owned
	// by the goroutine that watches assignments).
	swept bool

	// sshd serves the MPI daemons of the runs placed here; sshPort is its
	// port. Both are set by Run before registration.
	sshd    *mpi.Server
	sshPort int

	// staticRsh is the static rsh client for run containers, made once.
	staticRshOnce sync.Once
	staticRsh     string
	staticRshErr  error
}

// New checks cfg, fills in its defaults and returns an agent.
func New(cfg Config) (*Agent, error) {
	def := DefaultConfig()
	if cfg.Version == "" {
		cfg.Version = def.Version
	}
	setDefault(&cfg.KillGrace, def.KillGrace)
	setDefault(&cfg.LogFlushInterval, def.LogFlushInterval)
	setDefault(&cfg.AssignmentsWait, def.AssignmentsWait)
	setDefault(&cfg.RequestTimeout, def.RequestTimeout)
	setDefault(&cfg.RetryMin, def.RetryMin)
	setDefault(&cfg.RetryMax, def.RetryMax)
	setDefault(&cfg.CheckpointInterval, def.CheckpointInterval)
	if len(cfg.Runtimes) == 0 {
		cfg.Runtimes = []Runtime{NewProcessRuntime()}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Capacity.IsZero() {
		cfg.Capacity = DetectCapacity()
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	abs, err := filepath.Abs(cfg.WorkDir)
	if err != nil {
		return nil, fmt.Errorf("agent config: WorkDir: %w", err)
	}
	cfg.WorkDir = abs
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hc, ownHC := cfg.HTTPClient, false
	if hc == nil {
		hc, ownHC = &http.Client{Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     90 * time.Second,
		}}, true
	}
	join, err := api.NewClient(api.Config{Addresses: cfg.HeadAddrs, Token: cfg.JoinToken, HTTPClient: hc})
	if err != nil {
		return nil, fmt.Errorf("agent config: HeadAddrs: %w", err)
	}
	a := &Agent{
		cfg:      cfg,
		ownHC:    ownHC,
		hc:       hc,
		log:      log,
		join:     join,
		runtimes: map[string]Runtime{},
		recs:     records{dir: filepath.Join(cfg.WorkDir, "attempts")},
		removed:  make(chan struct{}),
		attempts: map[api.AttemptKey]*attempt{},
	}
	for _, rt := range cfg.Runtimes {
		a.runtimes[rt.Name()] = rt
	}
	return a, nil
}

func setDefault(v *time.Duration, def time.Duration) {
	if *v == 0 {
		*v = def
	}
}

// NodeID returns the node's ID once registered (or the configured one).
func (a *Agent) NodeID() string {
	if id := a.session().nodeID; id != "" {
		return id
	}
	return a.cfg.NodeID
}

// Run registers the node and runs what the head assigns until ctx ends or
// the node is removed. On ctx's end it kills the running attempts (SIGTERM
// to each process group, KillGrace, SIGKILL), reports nothing further and
// returns nil; when the node was removed it does the same and returns
// ErrNodeRemoved. Other errors come from setting up WorkDir.
func (a *Agent) Run(ctx context.Context) error {
	if !a.started.CompareAndSwap(false, true) {
		return errors.New("agent: Run called twice")
	}
	for _, d := range []string{"", "attempts", "runs", "checkpoints"} {
		if err := os.MkdirAll(filepath.Join(a.cfg.WorkDir, d), 0o700); err != nil {
			return fmt.Errorf("agent: work dir: %w", err)
		}
	}
	unlock, err := lockDir(a.cfg.WorkDir)
	if err != nil {
		return err
	}
	defer unlock()
	a.removeStaleTemp() // the lock is held: no other agent uses them
	startup, errs := a.recs.load()
	for _, err := range errs {
		a.log.Warn("skipping an unreadable attempt record", "err", err)
	}

	if a.ownHC {
		defer a.hc.CloseIdleConnections()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	waitSSH, err := a.startSSH(ctx)
	if err != nil {
		return err
	}
	defer func() { cancel(); waitSSH() }() // the server stops with ctx
	if err := a.login(ctx); err != nil {
		if errors.Is(err, ErrNodeRemoved) {
			return a.removedExit()
		}
		return nil // ctx ended
	}
	a.wg.Add(2)
	go a.heartbeat(ctx)
	go a.watch(ctx, startup)
	select {
	case <-ctx.Done():
		a.log.Info("agent stopping: killing running attempts")
	case <-a.removed:
	}
	cancel()
	a.wg.Wait()
	select {
	case <-a.removed:
		return a.removedExit()
	default:
		return nil
	}
}

// removedExit forgets the node's credential and returns ErrNodeRemoved.
func (a *Agent) removedExit() error {
	if err := os.Remove(a.nodeFilePath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		a.log.Warn("could not remove the node credential", "err", err)
	}
	a.log.Warn("the head removed this node; agent stopped")
	return ErrNodeRemoved
}

// markRemoved tells Run the node is gone.
func (a *Agent) markRemoved() {
	a.removedOnce.Do(func() { close(a.removed) })
}

// heartbeat tells the head the node is alive, at the interval it gave;
// failed heartbeats are retried sooner, with backoff.
func (a *Agent) heartbeat(ctx context.Context) {
	defer a.wg.Done()
	bo := a.backoff()
	wait := a.session().interval
	for waits.Sleep(ctx, wait) {
		s := a.session()
		wait = s.interval
		hctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
		err := s.client.Heartbeat(hctx, s.nodeID)
		cancel()
		switch {
		case err == nil:
			bo.reset()
		case ctx.Err() != nil:
			return
		case api.StatusOf(err) == http.StatusUnauthorized:
			a.log.Warn("the head refused the node token; registering again", "call", "heartbeat")
			if err := a.reregister(ctx, s.gen); errors.Is(err, ErrNodeRemoved) {
				a.markRemoved()
				return
			}
			wait = 0
		case api.StatusOf(err) == http.StatusNotFound:
			a.markRemoved()
			return
		default:
			wait = min(bo.next(), s.interval)
			a.log.Warn("heartbeat failed", "err", err, "retry_in", wait)
		}
	}
}

// watch follows the node's assignments with the blocking query and makes
// the node's attempts match them.
func (a *Agent) watch(ctx context.Context, startup map[api.AttemptKey]record) {
	defer a.wg.Done()
	var index uint64
	bo := a.backoff()
	for ctx.Err() == nil {
		var resp *api.AssignmentsResponse
		err := a.call(ctx, "assignments", a.cfg.AssignmentsWait+a.cfg.RequestTimeout, func(ctx context.Context, c *api.Client) error {
			r, err := c.Assignments(ctx, a.NodeID(), api.Wait{Index: index, Wait: a.cfg.AssignmentsWait})
			resp = r
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d := bo.next()
			a.log.Warn("assignments query refused; retrying", "err", err, "retry_in", d)
			waits.Sleep(ctx, d)
			continue
		}
		bo.reset()
		if resp.Shutdown {
			a.markRemoved()
			return
		}
		a.reconcile(ctx, resp.Assignments, startup)
		if resp.Index == index {
			// No change since the last answer: after a full wait that is
			// normal, but a head that answers at once must not make this spin.
			// (The index is only compared for equality: a head may answer
			// with a fingerprint of the list rather than a counter.)
			waits.Sleep(ctx, a.cfg.RetryMin)
		}
		index = resp.Index
	}
}

// reconcile starts new attempts, stops those the head stopped or dropped,
// and reports lost those an earlier agent process started.
func (a *Agent) reconcile(ctx context.Context, list []api.Assignment, startup map[api.AttemptKey]record) {
	live := make(map[api.AttemptKey]bool, len(list))
	for _, asg := range list {
		k := asg.Key()
		if live[k] {
			continue
		}
		live[k] = true
		if at := a.attempts[k]; at != nil {
			at.peers.set(asg.PeerStates)
			if asg.Stop {
				at.requestStop(stopReason(asg.StopReason), a.stopGrace(asg))
			}
			continue
		}
		at := a.newAttempt(ctx, asg)
		at.peers.set(asg.PeerStates)
		a.attempts[k] = at
		rec, had := startup[k]
		delete(startup, k)
		switch {
		case !safeName(k.RunID):
			at.goRun(func() {
				at.finish(exitedWith(ExitPrepareFailed, fmt.Sprintf("run ID %q is not a safe file name", k.RunID)), "", nil)
			})
		case had && rec.Done:
			at.resending = true
			at.goRun(func() { at.resend(rec.Final) })
		case had:
			if asg.Stop {
				at.requestStop(stopReason(asg.StopReason), a.stopGrace(asg))
			}
			at.goRun(func() { at.resume(rec) })
		case asg.Stop:
			at.goRun(func() {
				at.finish(exitedWith(exitStoppedBeforeStart, stopReason(asg.StopReason)+" before it started"), "", nil)
			})
		default:
			at.goRun(at.run)
		}
	}
	for k, at := range a.attempts {
		if live[k] {
			continue
		}
		select {
		case <-at.done:
			delete(a.attempts, k)
			if err := a.recs.remove(k); err != nil {
				a.log.Warn("could not remove an attempt record", "err", err)
			}
		default:
			// The head ended the attempt (the run may already run elsewhere):
			// it is killed at once.
			at.requestStop("stopped: no longer assigned to this node", 0)
		}
	}
	// Records of attempts the head no longer has: their processes died with
	// the earlier agent, and nobody waits for a report.
	for k := range startup {
		delete(startup, k)
		_ = a.recs.remove(k)
		if safeName(k.RunID) {
			_ = removeAll(a.attemptDir(k))
			a.removeCheckpointDir(k)
		}
	}
	if !a.swept {
		a.swept = true
		a.sweep(ctx)
	}
}

// sweep has the runtimes whose commands outlive the agent remove those no
// attempt of this agent claims (left by an earlier agent process for
// attempts the head no longer has). It runs once, after the first
// reconcile, when every attempt an earlier process started was claimed.
func (a *Agent) sweep(ctx context.Context) {
	keep := func(k api.AttemptKey) bool {
		at := a.attempts[k]
		return at != nil && !at.resending
	}
	for _, rt := range a.cfg.Runtimes {
		ad, ok := rt.(Adopter)
		if !ok {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		if err := ad.Sweep(sctx, a.NodeID(), keep); err != nil && ctx.Err() == nil {
			a.log.Warn("could not remove left-over commands", "runtime", rt.Name(), "err", err)
		}
		cancel()
	}
}

// stopGrace is the SIGTERM-to-SIGKILL grace the head gave a stop, or the
// agent's KillGrace.
func (a *Agent) stopGrace(asg api.Assignment) time.Duration {
	if asg.GraceSeconds > 0 {
		return time.Duration(asg.GraceSeconds) * time.Second
	}
	return a.cfg.KillGrace
}

// stopReason words the head's stop reason ("canceled") as the attempt's.
func stopReason(r string) string {
	if r == "" {
		return "stopped"
	}
	return "stopped: " + r
}

// exitedWith is an exited report with an exit code.
func exitedWith(code int, reason string) api.AttemptStatus {
	return api.AttemptStatus{State: api.AttemptExited, ExitCode: &code, Reason: reason}
}

// attemptDir is k's work dir: WorkDir/runs/<run>/<attempt>/<node>.
func (a *Agent) attemptDir(k api.AttemptKey) string {
	return filepath.Join(a.cfg.WorkDir, "runs", k.RunID, strconv.Itoa(k.Attempt), strconv.Itoa(k.NodeIndex))
}

// lockDir takes an exclusive lock on dir, so two agents never share it.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "agent.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("agent: lock work dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("agent: work dir %s is used by another agent: %w", dir, err)
	}
	return func() { f.Close() }, nil
}
