package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/docker/docker/client"
	"github.com/spf13/pflag"

	"github.com/amld/amld/nodes"
)

// dockerServerFlags are a head's flags for the docker provider and for the
// docker runtime of local nodes.
type dockerServerFlags struct {
	mode      string
	nodeImage string
	headAddr  string
	labels    []string
}

func (f *dockerServerFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.mode, "docker", "auto", "auto: offer the docker provider, and image runs on local nodes, when a Docker Engine answers; off: never")
	fl.StringVar(&f.nodeImage, "docker-node-image", "amld/node:latest", "image of the docker provider's nodes (make images builds it)")
	fl.StringVar(&f.headAddr, "docker-head-addr", "", "head URL the docker provider's nodes use (default: the head's address, with a loopback host replaced by the node network's gateway, forwarded to the head)")
	fl.StringArrayVar(&f.labels, "docker-label", nil, "extra KEY=VALUE label for every container and network made for this head (repeatable)")
}

// provider returns the docker provider, or nil when Docker is off or the
// provider cannot work (no engine, no node image); engine says whether an
// engine answers (local nodes then run images). Only a bad flag is an error.
func (f *dockerServerFlags) provider(dataDir string, stopNodesOnClose bool, log *slog.Logger) (dk *nodes.Docker, engine bool, err error) {
	switch f.mode {
	case "off":
		return nil, false, nil
	case "auto":
	default:
		return nil, false, usageError{fmt.Errorf("--docker: %q is not allowed; allowed: auto, off", f.mode)}
	}
	labels, err := parseLabels("--docker-label", f.labels)
	if err != nil {
		return nil, false, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dk, err = nodes.NewDocker(ctx, nodes.DockerConfig{
		Image:            f.nodeImage,
		DataDir:          dataDir,
		HeadAddr:         f.headAddr,
		Labels:           labels,
		StopNodesOnClose: stopNodesOnClose,
		Logger:           log.With("provider", "docker"),
	})
	if err != nil {
		engine = !client.IsErrConnectionFailed(err)
		log.Info("the docker provider is not available", "err", err, "engine_answers", engine)
		return nil, engine, nil
	}
	log.Info("docker provider available", "node_image", f.nodeImage, "instance", dk.Instance())
	return dk, true, nil
}

// localAgentArgs are the local agents' docker flags.
func (f *dockerServerFlags) localAgentArgs(engine bool) []string {
	if !engine {
		return []string{"--docker", "off"}
	}
	var args []string
	for _, l := range f.labels {
		args = append(args, "--docker-label", l)
	}
	return args
}

// providerSet holds the head's providers, to close them at exit.
type providerSet struct {
	local  *nodes.Local
	docker *nodes.Docker
}

// Close closes every provider.
func (p *providerSet) Close(ctx context.Context) error {
	var errs []error
	if p.docker != nil {
		errs = append(errs, p.docker.Close(ctx))
	}
	errs = append(errs, p.local.Close(ctx))
	return errors.Join(errs...)
}
