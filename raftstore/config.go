package raftstore

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Config configures a Store. Zero durations and counts mean the defaults of
// DefaultConfig.
type Config struct {
	// ID is this server's Raft server ID. Required.
	ID string
	// DataDir holds raft.db (the Raft log and stable store) and snapshots/.
	// Required; created if missing.
	DataDir string
	// BindAddr is the host:port the Raft TCP transport listens on. Required.
	BindAddr string
	// AdvertiseAddr is the host:port other servers reach this one at;
	// empty means the address the transport bound (BindAddr with its port
	// resolved). It must not be an unspecified address (0.0.0.0).
	AdvertiseAddr string
	// Bootstrap makes a server with no Raft state yet bootstrap a
	// single-voter cluster of itself. It is ignored when state exists.
	Bootstrap bool
	// Logger receives raft's own log lines (at warn and above unless
	// RaftDebug) and the store's; nil discards them.
	Logger *slog.Logger
	// RaftDebug lets raft's debug and info lines through to Logger.
	RaftDebug bool
	// TLS, when set, makes the transport speak TLS: the config serves
	// accepted connections and dials peers, so it must carry this
	// server's certificate and verify the peer's (see package pki's
	// PeerTLS). Nil means plain TCP.
	TLS *tls.Config

	// HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout and
	// CommitTimeout are raft's timeouts (see raft.Config).
	// LeaderLeaseTimeout must not exceed HeartbeatTimeout, and
	// ElectionTimeout must not be below it.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration

	// SnapshotThreshold is how many entries past the last snapshot trigger
	// a new one (checked every SnapshotInterval); TrailingLogs is how many
	// entries are kept in the log after a snapshot, so slow followers can
	// catch up without a snapshot install.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	// SnapshotRetain is how many snapshots are kept on disk.
	SnapshotRetain int
}

// DefaultConfig returns the defaults: short timeouts for a fast
// single-server start and a failover under a second, a leader lease as
// long as the heartbeat timeout (it rode out a stalled machine best; see
// BENCHMARKS.md), snapshots every 8192 entries.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   300 * time.Millisecond,
		ElectionTimeout:    300 * time.Millisecond,
		LeaderLeaseTimeout: 300 * time.Millisecond,
		CommitTimeout:      50 * time.Millisecond,
		SnapshotThreshold:  8192,
		SnapshotInterval:   2 * time.Minute,
		TrailingLogs:       10240,
		SnapshotRetain:     2,
	}
}

// withDefaults fills the zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = d.HeartbeatTimeout
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = d.ElectionTimeout
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = min(d.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.CommitTimeout == 0 {
		c.CommitTimeout = d.CommitTimeout
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = d.SnapshotThreshold
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = d.SnapshotInterval
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = d.TrailingLogs
	}
	if c.SnapshotRetain == 0 {
		c.SnapshotRetain = d.SnapshotRetain
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first field out of its allowed range. Zero
// durations and counts are allowed (they mean the defaults).
func (c Config) Validate() error {
	if c.ID == "" {
		return fmt.Errorf("raftstore: ID is required")
	}
	if c.DataDir == "" {
		return fmt.Errorf("raftstore: DataDir is required")
	}
	if _, _, err := net.SplitHostPort(c.BindAddr); err != nil {
		return fmt.Errorf("raftstore: BindAddr %q must be host:port: %w", c.BindAddr, err)
	}
	if c.AdvertiseAddr != "" {
		if _, err := advertiseTCPAddr(c.AdvertiseAddr); err != nil {
			return err
		}
	}
	durations := []struct {
		name     string
		v        time.Duration
		min, max time.Duration
	}{
		{"HeartbeatTimeout", c.HeartbeatTimeout, 5 * time.Millisecond, time.Minute},
		{"ElectionTimeout", c.ElectionTimeout, 5 * time.Millisecond, time.Minute},
		{"LeaderLeaseTimeout", c.LeaderLeaseTimeout, 5 * time.Millisecond, time.Minute},
		{"CommitTimeout", c.CommitTimeout, time.Millisecond, 10 * time.Second},
		{"SnapshotInterval", c.SnapshotInterval, 5 * time.Millisecond, 24 * time.Hour},
	}
	for _, d := range durations {
		if d.v != 0 && (d.v < d.min || d.v > d.max) {
			return fmt.Errorf("raftstore: %s %v must be between %v and %v", d.name, d.v, d.min, d.max)
		}
	}
	if c.SnapshotRetain < 0 || c.SnapshotRetain > 100 {
		return fmt.Errorf("raftstore: SnapshotRetain %d must be between 1 and 100 (0: the default)", c.SnapshotRetain)
	}
	r := c.withDefaults()
	if r.LeaderLeaseTimeout > r.HeartbeatTimeout {
		return fmt.Errorf("raftstore: LeaderLeaseTimeout %v must not exceed HeartbeatTimeout %v", r.LeaderLeaseTimeout, r.HeartbeatTimeout)
	}
	if r.ElectionTimeout < r.HeartbeatTimeout {
		return fmt.Errorf("raftstore: ElectionTimeout %v must be at least HeartbeatTimeout %v", r.ElectionTimeout, r.HeartbeatTimeout)
	}
	return nil
}

// advertiseTCPAddr resolves an advertise address, refusing one that peers
// cannot dial.
func advertiseTCPAddr(s string) (*net.TCPAddr, error) {
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		return nil, fmt.Errorf("raftstore: AdvertiseAddr %q: %w", s, err)
	}
	if a.IP == nil || a.IP.IsUnspecified() || a.Port == 0 {
		return nil, fmt.Errorf("raftstore: AdvertiseAddr %q must name a reachable IP and a port", s)
	}
	return a, nil
}
