package raftstore

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// testConfig is a single-server config with short timeouts.
func testConfig(t testing.TB, dir, addr string) Config {
	c := DefaultConfig()
	c.ID = "s1"
	c.DataDir = dir
	c.BindAddr = addr
	c.Bootstrap = true
	c.HeartbeatTimeout = 50 * time.Millisecond
	c.ElectionTimeout = 50 * time.Millisecond
	c.LeaderLeaseTimeout = 50 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	return c
}

// openLeader opens a store and waits until it leads.
func openLeader(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	select {
	case v := <-s.LeadershipCh():
		if !v {
			t.Fatal("first leadership notice is false")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no leadership after 10s")
	}
	if !s.IsLeader() {
		t.Fatal("notified but not leader")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func ctx5s(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestStoreRecoversAfterRestart(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	cfg := testConfig(t, dir, addr)
	cfg.TrailingLogs = 1 // after a snapshot, the log alone could not rebuild the state
	ctx := ctx5s(t)

	s := openLeader(t, cfg)
	if raftAddr, id := s.Leader(); raftAddr != addr || id != "s1" {
		t.Fatalf("leader %s %s", raftAddr, id)
	}
	target := &api.Target{TargetSpec: api.TargetSpec{Name: "cpu", Type: api.KindCluster, MaxNodes: 2}, CreatedAt: t0}
	if _, err := s.Apply(ctx, MsgTargetCreate, &TargetCreateRequest{Target: target}); err != nil {
		t.Fatal(err)
	}
	idx, err := s.Apply(ctx, MsgRunSubmit, &RunSubmitRequest{Run: &api.Run{ID: "r-1", RunSpec: api.RunSpec{Target: "cpu"}, Request: half}})
	if err != nil {
		t.Fatal(err)
	}
	if st := s.State(); st.Index() != idx || st.Run("r-1") == nil || st.Run("r-1").QueueSeq != queueSeq(idx, 0) {
		t.Fatalf("state after apply: index %d (want %d), run %+v", st.Index(), idx, st.Run("r-1"))
	}
	// A refused command comes back as the FSM's *api.Error, unchanged.
	_, err = s.Apply(ctx, MsgTargetCreate, &TargetCreateRequest{Target: target})
	var apiErr *api.Error
	if !errors.As(err, &apiErr) || apiErr.Code != api.CodeConflict || err != error(apiErr) {
		t.Fatalf("duplicate target: %v (%T)", err, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	last := true
	for v := range s.LeadershipCh() { // closed by Close
		last = v
	}
	if last {
		t.Fatal("the last leadership notice before Close was not false")
	}

	// From the log.
	s = openLeader(t, cfg)
	st := s.State()
	if r := st.Run("r-1"); r == nil || r.QueueSeq != queueSeq(idx, 0) || st.Target("cpu") == nil {
		t.Fatalf("after restart: run %+v", r)
	}
	if err := s.Raft().Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	idx2, err := s.Apply(ctx, MsgRunSubmit, &RunSubmitRequest{Run: &api.Run{ID: "r-2", RunSpec: api.RunSpec{Target: "cpu"}, Request: half}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Raft().Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	want := dump(t, s.State())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	snaps, _ := os.ReadDir(filepath.Join(dir, "snapshots"))
	if len(snaps) == 0 {
		t.Fatal("no snapshot on disk")
	}

	// From the snapshot (the log was compacted behind it).
	s = openLeader(t, cfg)
	if got := dump(t, s.State()); stripHeader(got) != stripHeader(want) {
		t.Fatalf("after restart from a snapshot:\n got %s\nwant %s", got, want)
	}
	if r := s.State().Run("r-2"); r == nil || r.QueueSeq != queueSeq(idx2, 0) {
		t.Fatalf("r-2 after restart: %+v", r)
	}
	if _, err := s.Apply(ctx, MsgRunCancel, &RunCancelRequest{RunID: "r-2", Time: t0}); err != nil {
		t.Fatalf("apply after restore: %v", err)
	}
}

func TestWaitForIndex(t *testing.T) {
	s := openLeader(t, testConfig(t, t.TempDir(), freeAddr(t)))
	ctx := ctx5s(t)
	idx, err := s.Apply(ctx, MsgTargetCreate, &TargetCreateRequest{Target: &api.Target{TargetSpec: api.TargetSpec{Name: "cpu", Type: api.KindCluster, MaxNodes: 1}}})
	if err != nil {
		t.Fatal(err)
	}

	// Already past: at once.
	if st := s.WaitForIndex(ctx, idx-1); st.Index() < idx {
		t.Fatalf("index %d", st.Index())
	}

	// Times out with the current state.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	st := s.WaitForIndex(short, idx)
	if st.Index() != idx || time.Since(start) < 40*time.Millisecond {
		t.Fatalf("timed out wait returned index %d after %v", st.Index(), time.Since(start))
	}

	// Wakes on the next apply.
	got := make(chan *State, 1)
	go func() { got <- s.WaitForIndex(ctx, idx) }()
	idx2, err := s.Apply(ctx, MsgRunSubmit, &RunSubmitRequest{Run: &api.Run{ID: "r-1", RunSpec: api.RunSpec{Target: "cpu"}}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case st := <-got:
		if st.Index() < idx2 || st.Run("r-1") == nil {
			t.Fatalf("woke with index %d, want %d", st.Index(), idx2)
		}
	case <-ctx.Done():
		t.Fatal("WaitForIndex did not wake on apply")
	}
}

func TestApplyOnAFollowerIsNotLeader(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), freeAddr(t))
	cfg.Bootstrap = false // no cluster: never a leader
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.IsLeader() {
		t.Fatal("leader without a cluster")
	}
	_, err = s.Apply(ctx5s(t), MsgRunCancel, &RunCancelRequest{RunID: "r"})
	if !errors.Is(err, ErrNotLeader) {
		t.Fatalf("apply on a follower: %v", err)
	}
	if err := s.Barrier(ctx5s(t)); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("barrier on a follower: %v", err)
	}
	if _, err := s.Apply(ctx5s(t), MsgRunCancel, &RunSubmitRequest{}); err == nil {
		t.Fatal("a mismatched request was proposed")
	}
}

func TestOpenRefusesBadConfig(t *testing.T) {
	if _, err := Open(Config{}); err == nil {
		t.Fatal("opened with an empty config")
	}
	// The port is taken: Open fails and leaves the data dir usable.
	dir, addr := t.TempDir(), freeAddr(t)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(testConfig(t, dir, addr)); err == nil {
		t.Fatal("opened on a taken port")
	}
	l.Close()
	openLeader(t, testConfig(t, dir, addr))
}
