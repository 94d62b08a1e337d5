package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/amld/amld/api"
	"github.com/amld/amld/nodes/agent"
)

func agentCmd() *cobra.Command {
	var (
		heads, nodeID, target, tokenFile, workDir, address, logLevel string
		sshListen, rshClient, caFile, tlsServerName                  string
		cpus, gpus                                                   int
		memoryMB                                                     int64
		printInventory                                               bool
		nvmlLibrary                                                  string
		fakeGPUs                                                     int
		dk                                                           dockerAgentFlags
		checkpointInterval                                           time.Duration
	)
	c := &cobra.Command{
		Use:   "agent",
		Short: "Run a node's agent: join the heads and run the attempts placed here",
		Long: `Run the agent of one node. It registers with the heads using the join
token (read from a file, never from a flag's value), heartbeats, and runs
the attempts the scheduler places on this node. Runs with an image run in
containers when a Docker Engine answers (DOCKER_HOST, else the local socket);
runs without one run as processes. SIGTERM stops its runs and exits cleanly
(with --keep-containers, containers go on running and the restarted agent
adopts them).

GPUs are found through NVML (libnvidia-ml.so.1, part of the NVIDIA driver)
and reported at registration; without the library the node offers none and
the agent works on. --print-inventory shows what this machine offers as the
agent sees it (CPUs, memory, GPUs) and exits.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			if cpus < 0 || memoryMB < 0 || gpus < 0 || fakeGPUs < 0 {
				return usageError{fmt.Errorf("--cpus, --memory-mb, --gpus and --fake-gpus must not be negative")}
			}
			inv := gpuInventory(nvmlLibrary, fakeGPUs)
			if printInventory {
				found, note := agent.DiscoverGPUs(c.Context(), inv, nil)
				return inventory{
					Hostname: hostname(),
					Capacity: offered(cpus, memoryMB, gpus),
					GPUs:     found,
					GPUError: note,
				}.print(c.OutOrStdout())
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
			cfg.GPUs, cfg.GPUError = agent.DiscoverGPUs(c.Context(), inv, log)
			if address != "" {
				cfg.Address = address
			}
			if checkpointInterval > 0 {
				cfg.CheckpointInterval = checkpointInterval
			}
			cfg.SSHListen, cfg.RshClient = sshListen, rshClient
			cfg.Logger = log.With("node", nodeID)
			rts, closeRT, err := dk.runtimes(c.Context(), cfg.Logger)
			if err != nil {
				return err
			}
			defer closeRT()
			cfg.Runtimes = rts
			cfg.KeepContainers = dk.keep
			if caFile != "" {
				hc, err := agentHTTPClient(caFile, tlsServerName)
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
	fl.BoolVar(&printInventory, "print-inventory", false, "print what this machine offers (CPUs, memory, GPUs) as the agent sees it, and exit")
	fl.StringVar(&nvmlLibrary, "nvml-library", "", "path of the NVML library (default: libnvidia-ml.so.1 on the loader's path)")
	// --fake-gpus makes the agent report N mock GPUs (go-nvml's mock server
	// in a cgo build): for tests on machines without a GPU, never for real
	// nodes, so it is hidden.
	fl.IntVar(&fakeGPUs, "fake-gpus", 0, "report N mock GPUs instead of asking NVML (tests only)")
	_ = fl.MarkHidden("fake-gpus")
	dk.register(fl)
	fl.DurationVar(&checkpointInterval, "checkpoint-interval", api.DefaultCheckpointIntervalSeconds*time.Second,
		"how often a changed $AML_CHECKPOINT_DIR of a running attempt is uploaded to the head")
	fl.StringVar(&sshListen, "ssh-listen", "", "where the SSH server for MPI runs listens, host:port (default: the --address host, a free port)")
	fl.StringVar(&rshClient, "rsh-client", "", "the rsh client mpirun runs (default: amld-rsh beside amld)")
	fl.StringVar(&tlsServerName, "tls-server-name", "", "the name the heads' certificates are checked against, when the address dialed is not in them (the docker provider's gateway)")
	fl.StringVar(&caFile, "ca-file", "", "the cluster CA's certificate, to verify the heads against (heads then speak https)")
	return c
}

// offered is the capacity the agent offers: the flags, with what this
// machine has where a flag is 0 (GPUs: 0 means all found).
func offered(cpus int, memoryMB int64, gpus int) api.Resources {
	r := agent.DetectCapacity()
	if cpus > 0 {
		r.CPUs = cpus
	}
	if memoryMB > 0 {
		r.MemoryMB = memoryMB
	}
	r.GPUs = gpus
	return r
}

func defaultWorkDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/amld-agent"
	}
	return os.ExpandEnv("$HOME/.local/share/amld-agent")
}
