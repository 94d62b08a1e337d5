package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/amld/amld/cmd/amld/internal/pki"
	"github.com/amld/amld/cmd/amld/internal/server"
)

// clusterFlags are `amld server`'s flags for clusters of heads, TLS and
// Raft tuning.
type clusterFlags struct {
	bootstrapExpect int
	join            string
	keyFile         string
	insecureDev     bool
	tlsSANs         string

	heartbeatTimeout  time.Duration
	electionTimeout   time.Duration
	leaseTimeout      time.Duration
	snapshotThreshold uint64
	snapshotInterval  time.Duration
	trailingLogs      uint64
}

func (f *clusterFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.IntVar(&f.bootstrapExpect, "bootstrap-expect", 1, "heads that form a new cluster: 1 bootstraps alone (unless --join); N>1 waits for N heads to see each other through --join; 0 waits to be joined (amlctl server join)")
	fl.StringVar(&f.join, "join", "", "other heads' API addresses (host:port), comma-separated, to find the cluster through")
	fl.StringVar(&f.keyFile, "cluster-key-file", "", "the cluster key, the same file on every head (amld keygen makes one; default DATA_DIR/cluster.key, made by a head bootstrapping alone)")
	fl.BoolVar(&f.insecureDev, "insecure-dev", false, "plain HTTP and plain Raft TCP, no certificates: for development on one machine only")
	fl.StringVar(&f.tlsSANs, "tls-san", "", "extra host names or IPs for this head's certificate, comma-separated")
	fl.DurationVar(&f.heartbeatTimeout, "raft-heartbeat-timeout", 0, "Raft heartbeat timeout (default 300ms)")
	fl.DurationVar(&f.electionTimeout, "raft-election-timeout", 0, "Raft election timeout (default 300ms)")
	fl.DurationVar(&f.leaseTimeout, "raft-lease-timeout", 0, "Raft leader lease timeout, at most the heartbeat timeout (default 300ms)")
	fl.Uint64Var(&f.snapshotThreshold, "raft-snapshot-threshold", 0, "log entries between snapshots (default 8192)")
	fl.DurationVar(&f.snapshotInterval, "raft-snapshot-interval", 0, "how often to check whether to snapshot (default 2m)")
	fl.Uint64Var(&f.trailingLogs, "raft-trailing-logs", 0, "log entries kept after a snapshot for slow followers (default 10240)")
}

// apply sets the flags in a head's configuration.
func (f *clusterFlags) apply(cfg *server.Config) error {
	cc := &cfg.Cluster
	cc.BootstrapExpect = f.bootstrapExpect
	cc.Join = splitList(f.join)
	cc.KeyFile = f.keyFile
	cc.InsecureDev = f.insecureDev
	cc.TLSHosts = splitList(f.tlsSANs)
	if err := cc.Validate(); err != nil {
		return usageError{fmt.Errorf("--%w", err)}
	}
	r := &cfg.Raft
	if f.heartbeatTimeout > 0 {
		r.HeartbeatTimeout = f.heartbeatTimeout
	}
	if f.electionTimeout > 0 {
		r.ElectionTimeout = f.electionTimeout
	}
	if f.leaseTimeout > 0 {
		r.LeaderLeaseTimeout = f.leaseTimeout
	}
	if f.snapshotThreshold > 0 {
		r.SnapshotThreshold = f.snapshotThreshold
	}
	if f.snapshotInterval > 0 {
		r.SnapshotInterval = f.snapshotInterval
	}
	if f.trailingLogs > 0 {
		r.TrailingLogs = f.trailingLogs
	}
	check := *r
	check.ID, check.DataDir, check.BindAddr = "x", "x", "127.0.0.1:1"
	if err := check.Validate(); err != nil {
		return usageError{err}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func keygenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "keygen",
		Short: "Print a new cluster key (for --cluster-key-file on every head)",
		Long: `Print a new random cluster key. Save it to a file (mode 0600) on every head
of the cluster and pass --cluster-key-file: heads that hold it trust each other
while they join, and it seals the CA key and the join token kept in Raft.`,
		Args: cobra.NoArgs,
		Run: func(c *cobra.Command, _ []string) {
			fmt.Fprintln(c.OutOrStdout(), pki.GenerateKey().String())
		},
	}
}
