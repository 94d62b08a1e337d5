package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/amld/amld/api"
)

// computeCmd is `amlctl compute`: compute targets.
func (a *app) computeCmd() *cobra.Command {
	c := group("compute", "Manage compute targets (clusters, instances, attached machines)")
	c.AddCommand(a.computeCreateCmd(), a.computeListCmd(), a.computeShowCmd(), a.computeUpdateCmd(),
		a.computeListNodesCmd(), a.computeListSizesCmd(), a.computeDeleteCmd(), a.computeSimulateEvictionCmd())
	c.AddCommand(a.computeAttachCmd(), a.computeDetachCmd(), a.computeListHostsCmd(),
		a.computePowerCmd(api.PowerStart), a.computePowerCmd(api.PowerStop), a.computePowerCmd(api.PowerRestart))
	return c
}

// targetFlags are the flags of `compute create`.
type targetFlags struct {
	file                                           string
	name, vmSize, vmPriority, provider, preemption string
	description                                    string
	minNodes, maxNodes, idleSeconds                int
	preemptionGrace                                int
	// Instances and the exec provider.
	idleShutdown                              int
	createCommand, deleteCommand, listCommand string
	sshPublicAccess                           bool
	sshPublicKeyFile                          string
}

// register adds the flags to fs.
func (f *targetFlags) register(fs *pflag.FlagSet) {
	fs.StringVarP(&f.file, "file", "f", "", "read the target spec from this YAML file (flags override it)")
	fs.StringVar(&f.name, "name", "", "target name")
	fs.StringVar(&f.vmSize, "vm-size", "", "size of every node (see 'amlctl compute list-sizes')")
	fs.IntVar(&f.minNodes, "min-nodes", api.DefaultMinNodes, "nodes kept even when idle")
	fs.IntVar(&f.maxNodes, "max-nodes", 0, "most nodes the cluster scales to (required)")
	fs.IntVar(&f.idleSeconds, "idle-seconds-before-scaledown", api.DefaultIdleSecondsBeforeScaledown, "idle time before a node is removed")
	fs.StringVar(&f.vmPriority, "vm-priority", "", "dedicated (default) or lowpriority")
	fs.StringVar(&f.provider, "provider", "", "node provider (default local)")
	fs.StringVar(&f.preemption, "preemption", "", "priority preemption: none (default) or requeue")
	fs.StringVar(&f.description, "description", "", "free text")
	fs.IntVar(&f.preemptionGrace, "preemption-grace-seconds", 0, "SIGTERM-to-SIGKILL grace of a preempted attempt (default: the head's, 30)")
	fs.IntVar(&f.idleShutdown, "idle-seconds-before-shutdown", 0, "instances: stop after this long idle (0: never)")
	fs.StringVar(&f.createCommand, "create-command", "", "exec provider: script that makes a node's machine (absolute path on the heads)")
	fs.StringVar(&f.deleteCommand, "delete-command", "", "exec provider: script that removes a node's machine")
	fs.StringVar(&f.listCommand, "list-command", "", "exec provider: script that lists the machines (optional)")
	fs.BoolVar(&f.sshPublicAccess, "ssh-public-access", false, "instances of --provider ssh: let you log in to the machine with your public key while it runs")
	fs.StringVar(&f.sshPublicKeyFile, "ssh-public-key-file", "", "public key for --ssh-public-access (default ~/.ssh/id_ed25519.pub, id_ecdsa.pub or id_rsa.pub)")
}

// apply sets the fields of spec whose flags were given on the command line.
func (f *targetFlags) apply(fs *pflag.FlagSet, spec *api.TargetSpec) {
	set := fs.Changed
	if set("name") {
		spec.Name = f.name
	}
	if set("vm-size") {
		spec.VMSize = f.vmSize
	}
	if set("min-nodes") {
		spec.MinNodes = f.minNodes
	}
	if set("max-nodes") {
		spec.MaxNodes = f.maxNodes
	}
	if set("idle-seconds-before-scaledown") {
		v := f.idleSeconds
		spec.IdleSecondsBeforeScaledown = &v
	}
	if set("vm-priority") {
		spec.VMPriority = f.vmPriority
	}
	if set("provider") {
		spec.Provider = f.provider
	}
	if set("preemption") {
		spec.Preemption = f.preemption
	}
	if set("description") {
		spec.Description = f.description
	}
	if set("preemption-grace-seconds") {
		v := f.preemptionGrace
		spec.PreemptionGraceSeconds = &v
	}
	if set("idle-seconds-before-shutdown") {
		v := f.idleShutdown
		spec.IdleSecondsBeforeShutdown = &v
	}
	if set("create-command") {
		spec.CreateCommand = f.createCommand
	}
	if set("delete-command") {
		spec.DeleteCommand = f.deleteCommand
	}
	if set("list-command") {
		spec.ListCommand = f.listCommand
	}
}

// validateTargetSpec checks what is cheap to check before asking the head.
// Messages name the flag and the YAML key.
func validateTargetSpec(s *api.TargetSpec) error {
	if s.Type == api.KindInstance {
		return validateInstanceSpec(s)
	}
	switch {
	case s.Name == "":
		return usagef("--name (name) is required")
	case s.MaxNodes < 1:
		return usagef("--max-nodes (max_nodes) is required and must be at least 1")
	case s.MinNodes < 0:
		return usagef("--min-nodes (min_nodes) must be 0 or more, not %d", s.MinNodes)
	case s.MinNodes > s.MaxNodes:
		return usagef("--min-nodes (min_nodes) %d is more than --max-nodes (max_nodes) %d", s.MinNodes, s.MaxNodes)
	case s.IdleSecondsBeforeScaledown != nil && *s.IdleSecondsBeforeScaledown < 0:
		return usagef("--idle-seconds-before-scaledown must be 0 or more, not %d", *s.IdleSecondsBeforeScaledown)
	case s.PreemptionGraceSeconds != nil && (*s.PreemptionGraceSeconds < 0 || *s.PreemptionGraceSeconds > api.MaxPreemptionGraceSeconds):
		return usagef("--preemption-grace-seconds (preemption_grace_seconds) must be 0..%d, not %d", api.MaxPreemptionGraceSeconds, *s.PreemptionGraceSeconds)
	}
	if err := oneOf("--vm-priority (vm_priority)", s.VMPriority, api.VMPriorityDedicated, api.VMPriorityLowPriority); err != nil {
		return err
	}
	if err := oneOf("--preemption (preemption)", s.Preemption, api.PreemptionNone, api.PreemptionRequeue); err != nil {
		return err
	}
	return oneOf("the target type (type)", s.Type, api.KindCluster, api.KindInstance, api.KindRemote, api.KindLocal)
}

// computeCreateCmd is `amlctl compute create cluster --name ...` or `-f FILE`.
func (a *app) computeCreateCmd() *cobra.Command {
	var f targetFlags
	cmd := &cobra.Command{
		Use:   "create [TYPE] [flags]",
		Short: "Create a compute target (a cluster or an instance), from flags or a YAML file",
		Long: `Create a compute target. From flags: 'create cluster --name N --vm-size S
--max-nodes M ...' or 'create instance --name N --vm-size S' (one node for its
owner, who alone (with admins) sees it and its runs; it runs several runs side
by side while they fit; 'compute stop|start|restart' it; it keeps its data dir
across stop and start). A cluster of '--provider exec' runs the user's
--create-command and --delete-command scripts (admins only; see
docs/exec-provider.md); '--provider ssh' takes machines from the pool that
'compute attach host' fills. From YAML: 'create -f cluster.yml', whose keys are those of
the target spec (name, type, vm_size, min_nodes, max_nodes,
idle_seconds_before_scaledown, vm_priority, provider, preemption,
description); unknown keys are an error. Flags override the file. Unset
values take the head's defaults (min_nodes 0, idle_seconds_before_scaledown
120, vm_priority dedicated, provider local).`,
		Example: `  amlctl compute create cluster --name cpu-cluster --vm-size cpu-2 --min-nodes 0 --max-nodes 4
  amlctl compute create instance --name ci-alice --vm-size cpu-4 --idle-seconds-before-shutdown 3600
  amlctl compute create cluster --name cloud --provider exec --vm-size gpu-1 --max-nodes 8 \
      --create-command /etc/amld/create-node.sh --delete-command /etc/amld/delete-node.sh
  amlctl compute create -f cluster.yml`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("compute create takes at most one argument, the target type (cluster or instance)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var spec api.TargetSpec
			if f.file != "" {
				var err error
				if spec, err = loadTargetFile(f.file); err != nil {
					return err
				}
			}
			if len(args) == 1 {
				spec.Type = args[0]
			}
			if spec.Type == "" {
				return usagef("say what to create: 'amlctl compute create cluster --name ...' or 'amlctl compute create -f FILE'")
			}
			f.apply(cmd.Flags(), &spec)
			if err := f.publicKey(cmd.Flags(), &spec); err != nil {
				return err
			}
			if err := validateTargetSpec(&spec); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			t, err := c.CreateTarget(cmd.Context(), spec)
			if err != nil {
				return fmt.Errorf("create %s: %w", spec.Name, err)
			}
			if a.jsonOut() {
				return a.printJSON(t)
			}
			fmt.Fprintf(a.stdout, "Created %s %s (%s).\n", t.Type, t.Name, t.ProvisioningState)
			return nil
		},
	}
	f.register(cmd.Flags())
	return cmd
}

// computeListCmd is `amlctl compute list`.
func (a *app) computeListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List compute targets",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ts, err := c.ListTargets(cmd.Context())
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(orEmpty(ts))
			}
			w := newTable(a.stdout)
			row(w, "NAME", "TYPE", "VM SIZE", "PRIORITY", "NODES", "MIN", "MAX", "STATE", "ALLOCATION")
			for _, t := range ts {
				alloc := t.AllocationState
				if t.State != "" {
					alloc = t.State // instances and remote targets
				}
				row(w, t.Name, t.Type, orDash(t.VMSize), orDash(t.VMPriority),
					fmt.Sprintf("%d/%d", t.CurrentNodeCount, t.TargetNodeCount), t.MinNodes, t.MaxNodes,
					orDash(t.ProvisioningState), orDash(alloc))
			}
			return w.Flush()
		},
	}
}

// computeShowCmd is `amlctl compute show NAME`.
func (a *app) computeShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a compute target with its status",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			t, err := c.GetTarget(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(t)
			}
			return printTarget(a.stdout, t)
		},
	}
}

// printTarget writes a target's settings and status for people.
func printTarget(out io.Writer, t *api.Target) error {
	w := newTable(out)
	kv := func(k string, v any) { row(w, k+":", v) }
	kv("name", t.Name)
	kv("type", t.Type)
	kv("vm_size", orDash(t.VMSize))
	kv("vm_priority", orDash(t.VMPriority))
	kv("provider", orDash(t.Provider))
	kv("min_nodes", t.MinNodes)
	kv("max_nodes", t.MaxNodes)
	kv("idle_seconds_before_scaledown", t.IdleSeconds())
	kv("preemption", orDash(t.Preemption))
	if t.PreemptionGraceSeconds != nil {
		kv("preemption_grace_seconds", *t.PreemptionGraceSeconds)
	}
	if t.Description != "" {
		kv("description", t.Description)
	}
	if t.Owner != "" {
		kv("owner", t.Owner)
	}
	printFixedTarget(kv, t)
	kv("provisioning_state", orDash(t.ProvisioningState))
	kv("allocation_state", orDash(t.AllocationState))
	kv("current_node_count", t.CurrentNodeCount)
	kv("target_node_count", t.TargetNodeCount)
	n := t.NodeStateCounts
	kv("node_state_counts", fmt.Sprintf("idle=%d running=%d preparing=%d unusable=%d leaving=%d preempted=%d",
		n.Idle, n.Running, n.Preparing, n.Unusable, n.Leaving, n.Preempted))
	kv("scale_reason", orDash(t.ScaleReason))
	kv("created_at", fmtTime(t.CreatedAt))
	if len(t.ProvisioningErrors) == 0 {
		kv("provisioning_errors", "none")
	} else {
		kv("provisioning_errors", "")
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for _, e := range t.ProvisioningErrors {
		fmt.Fprintf(out, "  %s  %s: %s\n", fmtTime(e.Time), e.Code, e.Message)
	}
	return nil
}

// computeUpdateCmd is `amlctl compute update NAME --max-nodes N ...`.
func (a *app) computeUpdateCmd() *cobra.Command {
	var minNodes, maxNodes, idle, grace int
	var preemption, description string
	cmd := &cobra.Command{
		Use:   "update NAME",
		Short: "Change a target's scaling settings (taking effect on the next autoscaler round)",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := targetUpdate(cmd.Flags(), minNodes, maxNodes, idle, grace, preemption, description)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			t, err := c.UpdateTarget(cmd.Context(), args[0], u)
			if err != nil {
				return fmt.Errorf("update %s: %w", args[0], err)
			}
			if a.jsonOut() {
				return a.printJSON(t)
			}
			fmt.Fprintf(a.stdout, "Updated %s: min_nodes=%d max_nodes=%d idle_seconds_before_scaledown=%d (%s).\n",
				t.Name, t.MinNodes, t.MaxNodes, t.IdleSeconds(), t.ProvisioningState)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&minNodes, "min-nodes", 0, "nodes kept even when idle")
	fs.IntVar(&maxNodes, "max-nodes", 0, "most nodes the cluster scales to")
	fs.IntVar(&idle, "idle-seconds-before-scaledown", 0, "idle time before a node is removed")
	fs.StringVar(&preemption, "preemption", "", "priority preemption: none or requeue")
	fs.StringVar(&description, "description", "", "free text")
	fs.IntVar(&grace, "preemption-grace-seconds", 0, "SIGTERM-to-SIGKILL grace of a preempted attempt")
	return cmd
}

// targetUpdate builds the update from the flags given on the command line.
func targetUpdate(fs *pflag.FlagSet, minNodes, maxNodes, idle, grace int, preemption, description string) (api.TargetUpdate, error) {
	var u api.TargetUpdate
	if fs.Changed("min-nodes") {
		if minNodes < 0 {
			return u, usagef("--min-nodes must be 0 or more, not %d", minNodes)
		}
		u.MinNodes = &minNodes
	}
	if fs.Changed("max-nodes") {
		if maxNodes < 1 {
			return u, usagef("--max-nodes must be at least 1, not %d", maxNodes)
		}
		u.MaxNodes = &maxNodes
	}
	if u.MinNodes != nil && u.MaxNodes != nil && *u.MinNodes > *u.MaxNodes {
		return u, usagef("--min-nodes %d is more than --max-nodes %d", minNodes, maxNodes)
	}
	if fs.Changed("idle-seconds-before-scaledown") {
		if idle < 0 {
			return u, usagef("--idle-seconds-before-scaledown must be 0 or more, not %d", idle)
		}
		u.IdleSecondsBeforeScaledown = &idle
	}
	if fs.Changed("preemption") {
		if preemption != api.PreemptionNone && preemption != api.PreemptionRequeue {
			return u, usagef("--preemption must be none or requeue, not %q", preemption)
		}
		u.Preemption = &preemption
	}
	if fs.Changed("description") {
		u.Description = &description
	}
	if fs.Changed("preemption-grace-seconds") {
		if grace < 0 || grace > api.MaxPreemptionGraceSeconds {
			return u, usagef("--preemption-grace-seconds must be 0..%d, not %d", api.MaxPreemptionGraceSeconds, grace)
		}
		u.PreemptionGraceSeconds = &grace
	}
	if u == (api.TargetUpdate{}) {
		return u, usagef("nothing to update: give --max-nodes, --min-nodes, --idle-seconds-before-scaledown, --preemption, --preemption-grace-seconds or --description")
	}
	return u, nil
}

// computeListNodesCmd is `amlctl compute list-nodes NAME`.
func (a *app) computeListNodesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list-nodes NAME",
		Short: "List a target's nodes with the runs on them, and their GPUs",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ns, err := c.ListNodes(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(orEmpty(ns))
			}
			w := newTable(a.stdout)
			row(w, "ID", "STATE", "VM SIZE", "ADDRESS", "ALLOCATED", "CAPACITY", "RUNS", "SINCE", "REASON")
			for _, n := range ns {
				row(w, n.ID, n.State, orDash(n.VMSize), orDash(n.Address), n.Allocated, n.Capacity,
					orDash(strings.Join(n.Runs, ",")), fmtTime(n.StateChangedAt), orDash(n.Reason))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			return printNodeGPUs(a.stdout, ns)
		},
	}
}

// computeListSizesCmd is `amlctl compute list-sizes`.
func (a *app) computeListSizesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list-sizes",
		Short: "List the vm_size catalogue",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ss, err := c.ListVMSizes(cmd.Context())
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(orEmpty(ss))
			}
			w := newTable(a.stdout)
			row(w, "NAME", "CPUS", "MEMORY GB", "GPUS", "GPU MODEL")
			for _, s := range ss {
				row(w, s.Name, s.CPUs, fmt.Sprintf("%g", s.MemoryGB), s.GPUs, orDash(s.GPUModel))
			}
			return w.Flush()
		},
	}
}

// computeDeleteCmd is `amlctl compute delete NAME`.
func (a *app) computeDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a target: its nodes are removed, then the target",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteTarget(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("delete %s: %w", args[0], err)
			}
			if a.jsonOut() {
				return a.printJSON(map[string]any{"name": args[0], "deleted": true})
			}
			fmt.Fprintf(a.stdout, "Deleting %s: its nodes are removed, then the target.\n", args[0])
			return nil
		},
	}
}

// orEmpty makes a nil slice print as [] in JSON.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
