package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/amld/amld/api"
)

// caPEM reads the CA file named by --ca-file, AMLCTL_CA_FILE or the config
// file, in that order; nil when none is named.
func (a *app) caPEM() ([]byte, error) {
	path := a.caFile
	if path == "" {
		path = a.getenv(envCAFile)
	}
	if path == "" {
		cfgPath := a.configPath
		if cfgPath == "" {
			cfgPath = a.getenv(envConfig)
		}
		if cfgPath == "" {
			if dir, err := a.configDir(); err == nil {
				cfgPath = filepath.Join(dir, defaultConfigPath)
			}
		}
		if cfgPath != "" {
			if cfg, err := readConfig(cfgPath); err == nil {
				path = cfg.CAFile
			}
		}
	}
	if path == "" {
		return nil, nil
	}
	b, err := api.ReadCAFile(path)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	return b, nil
}

// serverCmd is `amlctl server`: the cluster's heads.
func (a *app) serverCmd() *cobra.Command {
	c := group("server", "Manage the cluster's heads (amld servers)")
	c.AddCommand(a.serverMembersCmd(), a.serverRemoveCmd(), a.serverJoinCmd())
	return c
}

func (a *app) serverMembersCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "members",
		Short: "List the heads: ID, address, voter, leader, last contact, applied index, log format",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ms, err := c.Members(cmd.Context())
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(ms)
			}
			tw := newTable(a.stdout)
			row(tw, "ID", "ADDRESS", "RAFT", "VOTER", "LEADER", "STATE", "LAST CONTACT", "APPLIED INDEX", "LOG FORMAT")
			for _, m := range ms {
				contact, applied, state := "-", "-", "unreachable"
				if m.Reachable {
					state = m.State
					applied = fmt.Sprint(m.AppliedIndex)
					if m.LastContactMS >= 0 {
						contact = (time.Duration(m.LastContactMS) * time.Millisecond).String()
					}
				}
				row(tw, m.ID, orDash(m.APIAddr), m.RaftAddr, m.Voter, m.Leader, state, contact, applied, m.LogVersion)
			}
			return tw.Flush()
		},
	}
}

func (a *app) serverRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a head from the cluster (stop it, and empty its data dir before it joins again)",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.RemoveMember(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "head %s removed\n", args[0])
			return nil
		},
	}
}

func (a *app) serverJoinCmd() *cobra.Command {
	var wait time.Duration
	c := &cobra.Command{
		Use:   "join ADDR",
		Short: "Take the head at ADDR (started with --bootstrap-expect 0 and the cluster key) into the cluster",
		Args:  exactArgs("ADDR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			r, err := c.JoinMember(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "head %s invited; waiting for it to join\n", r.ID)
			ctx, cancel := context.WithTimeout(cmd.Context(), wait)
			defer cancel()
			for {
				ms, err := c.Members(ctx)
				if err == nil {
					for _, m := range ms {
						if m.ID == r.ID && m.Voter && m.Reachable {
							fmt.Fprintf(a.stdout, "head %s joined as a voter\n", r.ID)
							return nil
						}
					}
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("head %s did not join within %s; see its log", r.ID, wait)
				case <-time.After(500 * time.Millisecond):
				}
			}
		},
	}
	c.Flags().DurationVar(&wait, "wait", time.Minute, "how long to wait for the head to join")
	return c
}

// operatorCmd is `amlctl operator`: backups.
func (a *app) operatorCmd() *cobra.Command {
	c := group("operator", "Operate the cluster: snapshots")
	snap := group("snapshot", "Save or restore the cluster's whole state")
	snap.AddCommand(&cobra.Command{
		Use:   "save FILE",
		Short: "Save a snapshot of the whole state (taken on the leader) to FILE",
		Args:  exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if err := c.SaveSnapshot(cmd.Context(), &buf); err != nil {
				return err
			}
			tmp := args[0] + ".tmp"
			if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
				return err
			}
			if err := os.Rename(tmp, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "saved %d bytes to %s\n", buf.Len(), args[0])
			return nil
		},
	}, &cobra.Command{
		Use:   "restore FILE",
		Short: "Replace the cluster's whole state with a snapshot FILE (every change since it was saved is lost)",
		Args:  exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			if len(b) == 0 {
				return errors.New(args[0] + " is empty")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.RestoreSnapshot(cmd.Context(), b); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "restored %s\n", args[0])
			return nil
		},
	})
	c.AddCommand(snap)
	return c
}
