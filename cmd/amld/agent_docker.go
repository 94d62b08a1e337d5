package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/amld/amld/nodes/agent"
)

// dockerAgentFlags are the agent's flags for its docker runtime.
type dockerAgentFlags struct {
	mode    string
	network string
	labels  []string
	keep    bool
}

func (f *dockerAgentFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.mode, "docker", "auto", "auto: run image runs in containers when a Docker Engine answers; off: never")
	fl.StringVar(&f.network, "docker-network", "host", "network of run containers: host, container:NAME, or a network name")
	fl.StringArrayVar(&f.labels, "docker-label", nil, "extra KEY=VALUE label for run containers (repeatable)")
	fl.BoolVar(&f.keep, "keep-containers", false, "on SIGTERM leave run containers running, for the restarted agent to adopt")
}

// runtimes returns the process runtime, and the docker runtime when an
// engine answers; close releases the engine connection.
func (f *dockerAgentFlags) runtimes(ctx context.Context, log *slog.Logger) ([]agent.Runtime, func(), error) {
	rts := []agent.Runtime{agent.NewProcessRuntime()}
	switch f.mode {
	case "off":
		return rts, func() {}, nil
	case "auto":
	default:
		return nil, nil, usageError{fmt.Errorf("--docker: %q is not allowed; allowed: auto, off", f.mode)}
	}
	labels, err := parseLabels("--docker-label", f.labels)
	if err != nil {
		return nil, nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	d, err := agent.NewDockerRuntime(pctx, agent.DockerConfig{NetworkMode: f.network, Labels: labels, Logger: log.With("runtime", "docker")})
	if err != nil {
		log.Info("no Docker Engine answers; runs with an image cannot run on this node", "err", err)
		return rts, func() {}, nil
	}
	log.Info("Docker Engine found; runs with an image run in containers")
	return append(rts, d), func() { d.Close() }, nil
}

// parseLabels reads KEY=VALUE flags.
func parseLabels(flag string, kvs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError{fmt.Errorf("%s: %q: want KEY=VALUE", flag, kv)}
		}
		out[k] = v
	}
	return out, nil
}
