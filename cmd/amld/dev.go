package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/amld/amld/api"
	"github.com/amld/amld/cmd/amld/internal/server"
)

// devCluster is the target `amld dev` makes.
var devCluster = api.TargetSpec{
	Name: "cpu-cluster", Type: api.KindCluster, VMSize: "cpu-2",
	MinNodes: 0, MaxNodes: 4, VMPriority: api.VMPriorityDedicated, Provider: "local",
	Description: "made by amld dev: local agent processes on this machine",
}

func devCmd() *cobra.Command {
	var f serverFlags
	c := &cobra.Command{
		Use:   "dev",
		Short: "Run a head and a local cluster on this machine, with no configuration",
		Long: `Run everything on one machine: a single-voter head, and a cluster named
cpu-cluster (vm_size cpu-2, 0 to 4 nodes) whose nodes are amld agent processes
here. It writes amlctl's config ($AMLCTL_CONFIG, else ~/.config/amlctl/config,
mode 0600) so that amlctl works from another terminal with no flags.
Without --data-dir the state lives in a temporary directory removed at exit.
SIGTERM or SIGINT stops the nodes and the head.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if f.dataDir == "" {
				dir, err := os.MkdirTemp("", "amld-dev-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				f.dataDir = dir
			}
			f.cluster.insecureDev = true
			cfg, provs, err := f.config(true)
			if err != nil {
				return err
			}
			tuneGC(cfg.Logger)
			srv, err := server.New(cfg)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(c.Context())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- srv.Run(ctx) }()
			if err := devSetup(ctx, srv); err != nil {
				cancel()
				<-done
				provs.Close(context.Background())
				return err
			}
			err = <-done
			provs.Close(context.Background())
			return err
		},
	}
	f.register(c, "")
	return c
}

// devSetup waits for the head, makes cpu-cluster and writes amlctl's config.
func devSetup(ctx context.Context, srv *server.Server) error {
	select {
	case <-srv.Ready():
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(30 * time.Second):
		return fmt.Errorf("the head did not become ready within 30s")
	}
	b, err := os.ReadFile(srv.AdminTokenPath())
	if err != nil {
		return fmt.Errorf("read the admin token: %w", err)
	}
	token := strings.TrimSpace(string(b))
	cl, err := api.NewClient(api.Config{Addresses: []string{srv.URL()}, Token: token})
	if err != nil {
		return err
	}
	if _, err := cl.GetTarget(ctx, devCluster.Name); api.IsNotFound(err) {
		if _, err := cl.CreateTarget(ctx, devCluster); err != nil {
			return fmt.Errorf("create %s: %w", devCluster.Name, err)
		}
	} else if err != nil {
		return err
	}
	path, err := writeCtlConfig(srv.URL(), token)
	if err != nil {
		return err
	}
	fmt.Printf("amld dev: API on %s, cluster %s (cpu-2, 0..4 nodes, local provider).\n", srv.URL(), devCluster.Name)
	fmt.Printf("amld dev: amlctl is configured in %s; try: amlctl compute list\n", path)
	return nil
}

// ctlConfig is amlctl's config file.
type ctlConfig struct {
	Address string `json:"address"`
	Token   string `json:"token"`
}

// writeCtlConfig writes amlctl's config, mode 0600.
func writeCtlConfig(addr, token string) (string, error) {
	path := os.Getenv("AMLCTL_CONFIG")
	if path == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("find the config dir for amlctl: %w", err)
		}
		path = filepath.Join(dir, "amlctl", "config")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	b, _ := json.MarshalIndent(ctlConfig{Address: addr, Token: token}, "", "  ")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}
