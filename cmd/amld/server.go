package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/amld/amld/api"
	"github.com/amld/amld/cmd/amld/internal/server"
	"github.com/amld/amld/nodes"
)

// serverFlags are the flags shared by `amld server` and `amld dev`.
type serverFlags struct {
	dataDir      string
	listen       string
	advertise    string
	raftAddr     string
	id           string
	sizesFile    string
	logLevel     string
	heartbeatTTL time.Duration
	provTimeout  time.Duration
	// agentArgs are added to the command line of every local node's agent
	// (hidden; for tests, e.g. --fake-gpus).
	agentArgs []string
	docker    dockerServerFlags
	// preemptionGrace is --preemption-grace.
	preemptionGrace time.Duration
	enableDebug     bool
	queueDepth      int
	cluster         clusterFlags
}

func (f *serverFlags) register(c *cobra.Command, defaultDataDir string) {
	c.Flags().StringVar(&f.dataDir, "data-dir", defaultDataDir, "directory for the Raft log, snapshots, token files and local nodes")
	c.Flags().StringVar(&f.listen, "listen", "127.0.0.1:7070", "HTTP API address (host:port)")
	c.Flags().StringVar(&f.advertise, "advertise", "", "API address agents and clients should use (default: the listen address)")
	c.Flags().StringVar(&f.raftAddr, "raft", "", "Raft transport address (default: the listen port + 1)")
	c.Flags().StringVar(&f.id, "id", "", "this head's ID among its peers (default: the host name)")
	c.Flags().StringVar(&f.sizesFile, "sizes-file", "", "YAML file of extra vm_sizes: a list of {name, cpus, memory_gb, gpus, gpu_model}")
	c.Flags().StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	c.Flags().DurationVar(&f.heartbeatTTL, "heartbeat-ttl", 10*time.Second, "a node not heard from for this long is unusable and its runs are requeued")
	c.Flags().DurationVar(&f.provTimeout, "provisioning-timeout", 5*time.Minute, "a node whose agent has not registered after this long is unusable and replaced")
	c.Flags().StringArrayVar(&f.agentArgs, "local-agent-arg", nil, "an argument added to every local node's `amld agent` command line (repeatable; for tests)")
	_ = c.Flags().MarkHidden("local-agent-arg")
	f.docker.register(c.Flags())
	c.Flags().DurationVar(&f.preemptionGrace, "preemption-grace", api.DefaultPreemptionGraceSeconds*time.Second,
		"SIGTERM-to-SIGKILL grace of an attempt whose node is evicted or that is preempted, on targets without preemption_grace_seconds")
	c.Flags().BoolVar(&f.enableDebug, "enable-debug", false, "serve Go runtime profiles (pprof) to admins under /v1/debug/pprof/")
	c.Flags().IntVar(&f.queueDepth, "scheduler-queue-depth", server.DefaultSchedulerQueueDepth,
		"queued runs of each target a scheduling round considers between the full rounds (every second) that consider them all")
	f.cluster.register(c)
}

// config turns the flags into a head configuration with a local provider,
// and a docker provider when a Docker Engine answers.
func (f *serverFlags) config(stopNodesOnClose bool) (server.Config, *providerSet, error) {
	cfg := server.DefaultConfig()
	if f.dataDir == "" {
		return cfg, nil, usageError{fmt.Errorf("--data-dir is required")}
	}
	abs, err := filepath.Abs(f.dataDir)
	if err != nil {
		return cfg, nil, err
	}
	log, err := newLogger(f.logLevel)
	if err != nil {
		return cfg, nil, err
	}
	cfg.DataDir = abs
	cfg.Listen = f.listen
	cfg.Advertise = f.advertise
	cfg.RaftAddr = f.raftAddr
	if f.id != "" {
		cfg.ID = f.id
	}
	cfg.Logger = log
	if err := f.cluster.apply(&cfg); err != nil {
		return cfg, nil, err
	}
	cfg.HeartbeatTTL = f.heartbeatTTL
	cfg.Autoscale.ProvisioningTimeout = f.provTimeout
	cfg.PreemptionGrace = f.preemptionGrace
	cfg.EnableDebug = f.enableDebug
	cfg.SchedulerQueueDepth = f.queueDepth
	if f.sizesFile != "" {
		extra, err := server.LoadSizesFile(f.sizesFile)
		if err != nil {
			return cfg, nil, usageError{fmt.Errorf("--sizes-file: %w", err)}
		}
		if cfg.Sizes, err = server.NewSizes(extra); err != nil {
			return cfg, nil, usageError{fmt.Errorf("--sizes-file: %w", err)}
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return cfg, nil, fmt.Errorf("find the amld binary for local nodes: %w", err)
	}
	dk, engine, err := f.docker.provider(filepath.Join(abs, "docker-nodes"), stopNodesOnClose, log)
	if err != nil {
		return cfg, nil, err
	}
	lc := nodes.LocalConfig{
		Binary:           exe,
		DataDir:          filepath.Join(abs, "nodes"),
		Logger:           log.With("provider", "local"),
		StopNodesOnClose: stopNodesOnClose,
		ExtraArgs:        append(f.docker.localAgentArgs(engine), f.agentArgs...),
	}
	if engine {
		lc.Runtimes = []string{"process", "docker"}
	}
	local, err := nodes.NewLocal(lc)
	if err != nil {
		if dk != nil {
			dk.Close(context.Background())
		}
		return cfg, nil, err
	}
	cfg.Providers = map[string]nodes.Provider{local.Name(): local}
	cfg.DefaultProvider = local.Name()
	if dk != nil {
		cfg.Providers[dk.Name()] = dk
	}
	return cfg, &providerSet{local: local, docker: dk}, nil
}

func serverCmd() *cobra.Command {
	var f serverFlags
	c := &cobra.Command{
		Use:   "server",
		Short: "Run a head: the API, the Raft state, the scheduler and the autoscaler",
		Long: `Run a head. On an empty data dir it bootstraps a new cluster and prints
the admin token once (it is also kept, mode 0600, in DATA_DIR/admin.token).
SIGTERM or SIGINT shuts it down cleanly; nodes made by the local provider
keep running and are found again when the head restarts.

The API and Raft speak TLS with certificates of the cluster's CA, made at
bootstrap (clients verify against DATA_DIR/tls/ca.crt); --insecure-dev turns
TLS off. Three or five heads with the same --cluster-key-file form one
cluster: start each with --bootstrap-expect 3 --join <the others' API
addresses>. See docs/cluster.md.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, provs, err := f.config(false)
			if err != nil {
				return err
			}
			tuneGC(cfg.Logger)
			srv, err := server.New(cfg)
			if err != nil {
				return err
			}
			err = srv.Run(c.Context())
			provs.Close(context.Background())
			return err
		},
	}
	f.register(c, "")
	return c
}
