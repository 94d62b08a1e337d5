package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/amld/amld/api"
	"github.com/amld/amld/nodes/agent"
)

func agentCmd() *cobra.Command {
	var (
		heads, nodeID, target, tokenFile, workDir, address, logLevel, caFile string
		cpus, gpus                                                           int
		memoryMB                                                             int64
	)
	c := &cobra.Command{
		Use:   "agent",
		Short: "Run a node's agent: join the heads and run the attempts placed here",
		Long: `Run the agent of one node. It registers with the heads using the join
token (read from a file, never from a flag's value), heartbeats, and runs
the attempts the scheduler places on this node. SIGTERM stops its runs and
exits cleanly.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			if heads == "" {
				return usageError{fmt.Errorf("--head is required: the heads' API addresses, comma-separated")}
			}
			if tokenFile == "" {
				return usageError{fmt.Errorf("--join-token-file is required")}
			}
			tok, err := agent.ReadTokenFile(tokenFile)
			if err != nil {
				return usageError{fmt.Errorf("--join-token-file: %w", err)}
			}
			cfg := agent.DefaultConfig()
			cfg.HeadAddrs = strings.Split(heads, ",")
			cfg.JoinToken = tok
			cfg.NodeID = nodeID
			cfg.Target = target
			cfg.WorkDir = workDir
			cfg.Capacity = api.Resources{CPUs: cpus, MemoryMB: memoryMB, GPUs: gpus}
			if address != "" {
				cfg.Address = address
			}
			cfg.Logger = log.With("node", nodeID)
			if caFile != "" {
				hc, err := agentHTTPClient(caFile)
				if err != nil {
					return usageError{fmt.Errorf("--ca-file: %w", err)}
				}
				cfg.HTTPClient = hc
				for i, h := range cfg.HeadAddrs {
					if !strings.Contains(h, "://") {
						cfg.HeadAddrs[i] = "https://" + strings.TrimSpace(h)
					}
				}
			}
			a, err := agent.New(cfg)
			if err != nil {
				return usageError{err}
			}
			err = a.Run(c.Context())
			if errors.Is(err, agent.ErrNodeRemoved) {
				log.Info("node removed by the head; agent exiting")
				return nil
			}
			return err
		},
	}
	fl := c.Flags()
	fl.StringVar(&heads, "head", "", "heads' API addresses, comma-separated (http://host:port)")
	fl.StringVar(&nodeID, "node-id", "", "the node ID a provider gave this node (empty: join --target as a new node)")
	fl.StringVar(&target, "target", "", "the target to join")
	fl.StringVar(&tokenFile, "join-token-file", "", "file holding the cluster's join token")
	fl.StringVar(&workDir, "work-dir", defaultWorkDir(), "directory for attempts' work dirs and the node credential")
	fl.StringVar(&address, "address", "", "address other nodes reach this one at (default: the host name)")
	fl.IntVar(&cpus, "cpus", 0, "CPUs offered to runs (default: all)")
	fl.Int64Var(&memoryMB, "memory-mb", 0, "memory offered to runs in MiB (default: all)")
	fl.IntVar(&gpus, "gpus", 0, "GPUs offered to runs (default: all found)")
	fl.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&caFile, "ca-file", "", "the cluster CA's certificate, to verify the heads against (heads then speak https)")
	return c
}

func defaultWorkDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/amld-agent"
	}
	return os.ExpandEnv("$HOME/.local/share/amld-agent")
}
