package raftstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// defaultApplyTimeout bounds Apply and Barrier when ctx has no deadline.
const defaultApplyTimeout = 10 * time.Second

// Store is one server's replica of the state: Raft, its on-disk log and
// snapshots, and the FSM. All methods are safe for concurrent use.
type Store struct {
	logger    *slog.Logger
	fsm       *FSM
	raft      *raft.Raft
	transport *raft.NetworkTransport
	bolt      *raftboltdb.BoltStore
	dataDir   string
	id        string

	leaderCh  chan bool
	proposals chan *proposal // Apply to the proposer (propose.go)
	batching  atomic.Bool    // SetBatching
	stop      chan struct{}

	mu     sync.RWMutex // guards closed against wg.Add racing Close's wg.Wait
	closed bool
	wg     sync.WaitGroup // the leadership forwarder, the proposer and its commits, Barrier waiters

	closeOnce sync.Once
	closeErr  error
}

// logCacheEntries is how many of the newest log entries each server keeps
// in memory (raft.LogCache) as well as in bbolt. Replication
// sends at most 64 entries at a time (raft's MaxAppendEntries), so this
// covers a follower that keeps up; an entry is at most about a MiB
// (maxBatchBytes) unless one command is larger.
const logCacheEntries = 64

// Open starts a server from cfg: it opens (or creates) DataDir, listens on
// BindAddr, restores the latest snapshot, and, with cfg.Bootstrap and no
// existing state, bootstraps a single-voter cluster of itself. It returns
// without waiting for a leader; watch LeadershipCh or IsLeader.
func Open(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("raftstore: data dir: %w", err)
	}
	level := hclog.Warn
	if cfg.RaftDebug {
		level = hclog.Debug
	}
	hl := newHCLog(cfg.Logger, level)

	var closers []func() error
	fail := func(err error) (*Store, error) {
		for i := len(closers) - 1; i >= 0; i-- {
			if cerr := closers[i](); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
		return nil, err
	}

	bolt, err := raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(cfg.DataDir, "raft.db"),
		BoltOptions: &bbolt.Options{Timeout: 5 * time.Second},
	})
	if err != nil {
		return fail(fmt.Errorf("raftstore: open %s: %w", filepath.Join(cfg.DataDir, "raft.db"), err))
	}
	closers = append(closers, bolt.Close)

	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, cfg.SnapshotRetain, hl.Named("snapshots"))
	if err != nil {
		return fail(fmt.Errorf("raftstore: snapshot store: %w", err))
	}

	var advertise net.Addr
	if cfg.AdvertiseAddr != "" {
		if advertise, err = advertiseTCPAddr(cfg.AdvertiseAddr); err != nil {
			return fail(err)
		}
	}
	trans, err := newTransport(cfg, advertise, hl.Named("transport"))
	if err != nil {
		return fail(fmt.Errorf("raftstore: listen on %s: %w", cfg.BindAddr, err))
	}
	closers = append(closers, trans.Close)

	notify := make(chan bool, 1)
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.Logger = hl
	rc.NotifyCh = notify
	if err := raft.ValidateConfig(rc); err != nil {
		return fail(fmt.Errorf("raftstore: %w", err))
	}

	if cfg.Bootstrap {
		has, err := raft.HasExistingState(bolt, bolt, snaps)
		if err != nil {
			return fail(fmt.Errorf("raftstore: read raft state: %w", err))
		}
		if !has {
			conf := raft.Configuration{Servers: []raft.Server{{
				Suffrage: raft.Voter, ID: rc.LocalID, Address: trans.LocalAddr(),
			}}}
			if err := raft.BootstrapCluster(rc, bolt, bolt, snaps, trans, conf); err != nil {
				return fail(fmt.Errorf("raftstore: bootstrap: %w", err))
			}
		}
	}

	fsm := NewFSM(cfg.Logger)
	// Replication reads back the entries it sends (and the one before
	// them), and a follower's FSM the entries it applies: from memory for
	// the newest ones, not a bbolt transaction and a decode each.
	logs, err := raft.NewLogCache(logCacheEntries, bolt)
	if err != nil {
		return fail(fmt.Errorf("raftstore: log cache: %w", err))
	}
	r, err := raft.NewRaft(rc, fsm, logs, bolt, snaps, trans)
	if err != nil {
		return fail(fmt.Errorf("raftstore: start raft: %w", err))
	}
	s := &Store{
		logger:    cfg.Logger,
		fsm:       fsm,
		raft:      r,
		transport: trans,
		bolt:      bolt,
		dataDir:   cfg.DataDir,
		id:        cfg.ID,
		leaderCh:  make(chan bool, 8),
		proposals: make(chan *proposal),
		stop:      make(chan struct{}),
	}
	s.wg.Add(2)
	go s.forwardLeadership(notify)
	go s.propose()
	return s, nil
}

// forwardLeadership drains raft's notify channel (raft blocks on it) into
// LeadershipCh, dropping the oldest value when the reader falls behind so
// that the last value always reflects the current leadership.
func (s *Store) forwardLeadership(in <-chan bool) {
	defer s.wg.Done()
	defer close(s.leaderCh)
	for {
		select {
		case v := <-in:
			for delivered := false; !delivered; {
				select {
				case s.leaderCh <- v:
					delivered = true
				default:
					select {
					case <-s.leaderCh:
					default:
					}
				}
			}
		case <-s.stop:
			return
		}
	}
}

// Close shuts Raft down, closes the transport and the log store, and ends
// the goroutines the store owns (LeadershipCh is closed). It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		var errs []error
		if err := s.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("raftstore: raft shutdown: %w", err))
		}
		close(s.stop)
		s.wg.Wait()
		if err := s.transport.Close(); err != nil {
			errs = append(errs, fmt.Errorf("raftstore: close transport: %w", err))
		}
		if err := s.bolt.Close(); err != nil {
			errs = append(errs, fmt.Errorf("raftstore: close log store: %w", err))
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Apply commits a command through Raft and returns its log index once this
// server's FSM has applied it (so State reflects it). When the state
// refuses the command, the FSM's error (an *api.Error) comes back
// unchanged, with the index. Errors of the log come back wrapped:
// ErrNotLeader when this server is not (or stopped being) the leader; note
// that after a lost leadership the entry may still commit. ctx bounds the
// wait; without a deadline it lasts until raft answers (raft takes up to
// 10s to accept the entry, and fails it when leadership is lost or the
// store closes). A command whose wait ended early may still be applied.
//
// Commands proposed while an entry is on its way are committed together in
// the next entry (see propose.go), so several commands may share an index.
func (s *Store) Apply(ctx context.Context, t MsgType, req any) (uint64, error) {
	b, err := EncodeCommand(t, req)
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	p := &proposal{ctx: ctx, t: t, data: b, done: make(chan proposalResult, 1)}
	select {
	case s.proposals <- p:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-s.stop:
		return 0, ErrClosed
	}
	select {
	case r := <-p.done:
		return r.index, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Barrier waits until every entry committed before it has been applied to
// this server's FSM; a leader calls it before reading for a consistent
// answer and before starting its duties.
func (s *Store) Barrier(ctx context.Context) error {
	timeout, err := waitBudget(ctx)
	if err != nil {
		return err
	}
	if err := s.wait(ctx, s.raft.Barrier(timeout)); err != nil {
		return fmt.Errorf("raftstore: barrier: %w", err)
	}
	return nil
}

// waitBudget is how long raft may take to start a command.
func waitBudget(ctx context.Context) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	d, ok := ctx.Deadline()
	if !ok {
		return defaultApplyTimeout, nil
	}
	if left := time.Until(d); left > 0 {
		return left, nil
	}
	return 0, context.DeadlineExceeded
}

// wait waits for a raft future or ctx and classifies the error.
func (s *Store) wait(ctx context.Context, f raft.Future) error {
	var err error
	if ctx.Done() == nil {
		err = f.Error()
	} else {
		s.mu.RLock()
		if s.closed {
			s.mu.RUnlock()
			return ErrClosed
		}
		done := make(chan error, 1)
		s.wg.Add(1)
		s.mu.RUnlock()
		go func() {
			defer s.wg.Done()
			done <- f.Error()
		}()
		select {
		case err = <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return classify(err)
}

// classify wraps raft's errors of lost or missing leadership in
// ErrNotLeader.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	default:
		return err
	}
}

// IsLeader reports whether this server is the leader now.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// Leader returns the current leader's Raft address and server ID, both
// empty when there is none known.
func (s *Store) Leader() (raftAddr, id string) {
	addr, sid := s.raft.LeaderWithID()
	return string(addr), string(sid)
}

// LeadershipCh delivers true when this server becomes the leader and false
// when it stops being it. It is buffered; when the reader falls behind the
// oldest values are dropped, so the last value received always matches the
// current leadership. Close closes it.
func (s *Store) LeadershipCh() <-chan bool { return s.leaderCh }

// Raft returns the underlying Raft, for membership changes and stats.
func (s *Store) Raft() *raft.Raft { return s.raft }

// FSM returns the store's state machine.
func (s *Store) FSM() *FSM { return s.fsm }

// State returns the current read view (cheap).
func (s *Store) State() *State { return s.fsm.State() }

// WaitForIndex returns the state as soon as its index is past after, or
// when ctx is done; it returns the latest state either way.
func (s *Store) WaitForIndex(ctx context.Context, after uint64) *State {
	return s.fsm.WaitForIndex(ctx, after)
}
