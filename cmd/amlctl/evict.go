package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/amld/amld/api"
)

// computeSimulateEvictionCmd is `amlctl compute simulate-eviction TARGET --node NODE`.
func (a *app) computeSimulateEvictionCmd() *cobra.Command {
	var node string
	var grace int
	cmd := &cobra.Command{
		Use:   "simulate-eviction TARGET --node NODE",
		Short: "Evict a node of a lowpriority cluster, as a cloud takes back a spot VM",
		Long: `Evict one node of a lowpriority cluster the way a cloud takes back a spot
VM. The node becomes preempted and gets notice: the attempts on it get SIGTERM
and the grace period (the target's preemption_grace_seconds, else the head's
--preemption-grace, 30 s; --grace-seconds overrides it) to write a checkpoint
to $AML_CHECKPOINT_DIR and stop, then SIGKILL. Their runs go back to Queued at
their original place (a preemption, not a retry) and resume from the last
checkpoint on a healthy node; the machine is taken away and replaced.
Dedicated clusters' nodes are not evictable.`,
		Example: `  amlctl compute simulate-eviction spot --node n-3f2a9c
  amlctl compute simulate-eviction spot --node n-3f2a9c --grace-seconds 5`,
		Args: exactArgs("TARGET"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if node == "" {
				return usagef("--node is required: the node to evict (amlctl compute list-nodes %s shows them)", args[0])
			}
			req := api.EvictionRequest{NodeID: node}
			if cmd.Flags().Changed("grace-seconds") {
				if grace < 0 || grace > api.MaxPreemptionGraceSeconds {
					return usagef("--grace-seconds must be 0..%d, not %d", api.MaxPreemptionGraceSeconds, grace)
				}
				req.GraceSeconds = &grace
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ev, err := c.SimulateEviction(cmd.Context(), args[0], req)
			if err != nil {
				return fmt.Errorf("evict %s of %s: %w", node, args[0], err)
			}
			if a.jsonOut() {
				return a.printJSON(ev)
			}
			runs := "no run was on it"
			if len(ev.Runs) > 0 {
				runs = "requeuing " + strings.Join(ev.Runs, ", ")
			}
			fmt.Fprintf(a.stdout, "Evicting node %s of %s: %ds notice (taken by %s at the latest); %s.\n",
				ev.NodeID, ev.Target, ev.GraceSeconds, fmtTime(ev.Deadline), runs)
			return nil
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "the node to evict (required)")
	cmd.Flags().IntVar(&grace, "grace-seconds", 0, "notice before SIGKILL (default: the target's preemption_grace_seconds)")
	return cmd
}

// fmtCheckpoint describes a run's latest checkpoint for `job show`.
func fmtCheckpoint(r *api.Run) string {
	s := fmt.Sprintf("%d bytes from attempt %d at %s", r.CheckpointSize, r.CheckpointAttempt, fmtTime(r.CheckpointAt))
	if r.CheckpointID == "" {
		s += " (dropped when the run ended)"
	}
	return s
}
