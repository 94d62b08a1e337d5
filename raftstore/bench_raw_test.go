package raftstore

import (
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// BenchmarkRawRaft is the yardstick the three-head goal was set against
// ("raw Raft here does about 13,000 applies/s with 64 appliers"): plain
// hashicorp/raft, three servers in this process over its TCP transport
// (no TLS), each with its log on raft-boltdb (fsync on) and an FSM that
// does nothing, default timeouts, 64 goroutines applying 512-byte
// commands. Nothing of amld is in it. The machine's speed drifts from hour
// to hour; run it beside the end-to-end benchmark and compare the ratio.
func BenchmarkRawRaft(b *testing.B) {
	const servers, appliers = 3, 64
	var rafts []*raft.Raft
	var cfgs []raft.Server
	var transports []*raft.NetworkTransport
	for i := range servers {
		t, err := raft.NewTCPTransport("127.0.0.1:0", nil, 3, 10*time.Second, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		transports = append(transports, t)
		cfgs = append(cfgs, raft.Server{ID: raft.ServerID(fmt.Sprint("r", i)), Address: t.LocalAddr()})
	}
	for i, t := range transports {
		dir := b.TempDir()
		store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
		if err != nil {
			b.Fatal(err)
		}
		snaps := raft.NewInmemSnapshotStore()
		c := raft.DefaultConfig()
		c.LocalID = cfgs[i].ID
		c.LogOutput = io.Discard
		r, err := raft.NewRaft(c, nopFSM{}, store, store, snaps, t)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			r.Shutdown().Error()
			store.Close()
		})
		rafts = append(rafts, r)
	}
	if err := rafts[0].BootstrapCluster(raft.Configuration{Servers: cfgs}).Error(); err != nil {
		b.Fatal(err)
	}
	var leader *raft.Raft
	for deadline := time.Now().Add(20 * time.Second); leader == nil; {
		if time.Now().After(deadline) {
			b.Fatal("no leader in 20 s")
		}
		for _, r := range rafts {
			if r.State() == raft.Leader {
				leader = r
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd := make([]byte, 512)
	applyInParallel(b, appliers, func() error { return leader.Apply(cmd, 10*time.Second).Error() })
}

// nopFSM applies nothing.
type nopFSM struct{}

func (nopFSM) Apply(*raft.Log) any                 { return nil }
func (nopFSM) Snapshot() (raft.FSMSnapshot, error) { return nopSnapshot{}, nil }
func (nopFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type nopSnapshot struct{}

func (nopSnapshot) Persist(s raft.SnapshotSink) error { return s.Close() }
func (nopSnapshot) Release()                          {}
