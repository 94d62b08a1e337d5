package raftstore

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"github.com/amld/amld/api"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
)

// Member is one server of the Raft configuration.
type Member struct {
	ID       string
	RaftAddr string
	Voter    bool
}

// Members returns the current Raft configuration.
func (s *Store) Members(ctx context.Context) ([]Member, error) {
	f := s.raft.GetConfiguration()
	if err := s.wait(ctx, f); err != nil {
		return nil, fmt.Errorf("raftstore: configuration: %w", err)
	}
	var out []Member
	for _, srv := range f.Configuration().Servers {
		out = append(out, Member{ID: string(srv.ID), RaftAddr: string(srv.Address), Voter: srv.Suffrage == raft.Voter})
	}
	return out, nil
}

// AddVoter adds a voting server (or changes its address) and waits until
// the new configuration is committed. Only the leader may.
func (s *Store) AddVoter(ctx context.Context, id, raftAddr string) error {
	timeout, err := waitBudget(ctx)
	if err != nil {
		return err
	}
	if err := s.wait(ctx, s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, timeout)); err != nil {
		return fmt.Errorf("raftstore: add voter %s: %w", id, err)
	}
	return nil
}

// RemoveServer removes a server from the configuration. Only the leader
// may; removing the leader itself makes it step down once committed.
func (s *Store) RemoveServer(ctx context.Context, id string) error {
	timeout, err := waitBudget(ctx)
	if err != nil {
		return err
	}
	if err := s.wait(ctx, s.raft.RemoveServer(raft.ServerID(id), 0, timeout)); err != nil {
		return fmt.Errorf("raftstore: remove server %s: %w", id, err)
	}
	return nil
}

// VerifyLeader checks with a quorum that this server still leads.
func (s *Store) VerifyLeader(ctx context.Context) error {
	if err := s.wait(ctx, s.raft.VerifyLeader()); err != nil {
		return fmt.Errorf("raftstore: verify leader: %w", err)
	}
	return nil
}

// Health is this server's view of Raft, for status pages.
type Health struct {
	State        string    // Leader, Follower, Candidate, Shutdown
	Term         uint64    // current term
	AppliedIndex uint64    // last entry applied to the FSM
	CommitIndex  uint64    // last entry known committed
	LastContact  time.Time // last time a leader was heard from (zero on a leader or never)
	Restores     int64     // snapshots installed into the FSM since start
}

// Health returns this server's Raft state.
func (s *Store) Health() Health {
	st := s.raft.Stats()
	num := func(k string) uint64 {
		n, _ := strconv.ParseUint(st[k], 10, 64)
		return n
	}
	h := Health{
		State:        s.raft.State().String(),
		Term:         num("term"),
		AppliedIndex: s.raft.AppliedIndex(),
		CommitIndex:  num("commit_index"),
		Restores:     s.fsm.restores.Load(),
	}
	if h.State != raft.Leader.String() {
		h.LastContact = s.raft.LastContact()
	}
	return h
}

// SaveSnapshot writes the current state to w in the snapshot format (the
// one Restore reads). Call Barrier first on a leader for the latest.
func (s *Store) SaveSnapshot(w io.Writer) error {
	return writeSnapshot(w, s.State())
}

// RestoreSnapshot replaces the whole cluster's state with a snapshot
// written by SaveSnapshot. Only the leader may (ErrNotLeader); a stream
// that is not a whole snapshot is refused with an *api.Error naming the
// body, and changes nothing. The stream is checked in
// full (spooled to a file in the data dir) before Raft sees it, since
// Raft cannot back out of a restore that fails half way; the restored
// state is stamped with the index of the restore, so blocking queries
// keep moving forward.
func (s *Store) RestoreSnapshot(ctx context.Context, r io.Reader) error {
	if !s.IsLeader() {
		return ErrNotLeader
	}
	tmp, err := os.CreateTemp(s.dataDir, "restore-*.snap")
	if err != nil {
		return fmt.Errorf("raftstore: restore: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	br := bufio.NewReaderSize(r, 256<<10)
	var h snapshotHeader
	line, err := br.ReadBytes('\n')
	if err != nil || json.Unmarshal(line, &h) != nil || h.Format != snapshotFormat || h.Version != snapshotVersion {
		return api.Invalid("body", "not an amld snapshot (want format %q version %d)", snapshotFormat, snapshotVersion)
	}
	h.Index = s.raft.LastIndex() + 1
	hb, _ := json.Marshal(h)
	if _, err := tmp.Write(append(hb, '\n')); err != nil {
		return fmt.Errorf("raftstore: restore: %w", err)
	}
	size, err := io.Copy(tmp, br)
	if err != nil {
		return fmt.Errorf("raftstore: restore: read upload: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, _, err := readSnapshot(tmp); err != nil {
		return api.Invalid("body", "%v", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	timeout, err := waitBudget(ctx)
	if err != nil {
		return err
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Size: size + int64(len(hb)) + 1}
	if err := s.raft.Restore(meta, tmp, timeout); err != nil {
		return fmt.Errorf("raftstore: restore: %w", err)
	}
	return nil
}

// RaftAddr is the address peers reach this server's transport at.
func (s *Store) RaftAddr() string { return string(s.transport.LocalAddr()) }

// ID is this server's Raft ID.
func (s *Store) ID() string { return s.id }
