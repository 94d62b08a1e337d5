package main

import (
	"fmt"
	"io"
	"maps"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/amld/amld/api"
)

// jobCmd is `amlctl job`: runs.
func (a *app) jobCmd() *cobra.Command {
	c := group("job", "Submit, follow and manage runs")
	c.AddCommand(a.jobSubmitCmd(), a.jobListCmd(), a.jobShowCmd(), a.jobLogsCmd(), a.jobCancelCmd(), a.jobDownloadCmd())
	return c
}

// runFlags are the flags of `job submit`.
type runFlags struct {
	file, target, source, image, distribution, name string
	env                                             []string
	cpus, gpus                                      int
	memoryMB                                        int64
	nodeCount, procsPerNode, priority, maxRetries   int
	maxPreemptions, maxRunDuration                  int
	wait                                            bool
}

// register adds the flags to fs.
func (f *runFlags) register(fs *pflag.FlagSet) {
	fs.StringVarP(&f.file, "file", "f", "", "read the job from this YAML file (flags override it)")
	fs.StringVar(&f.target, "target", "", "compute target to run on (required)")
	fs.StringVar(&f.source, "source", "", "directory to snapshot and upload as the run's working directory (honours .amlignore)")
	fs.StringVar(&f.image, "image", "", "Docker image (default: the node's own environment)")
	fs.StringArrayVar(&f.env, "env", nil, "environment variable K=V (repeatable)")
	fs.IntVar(&f.cpus, "cpus", 0, "CPUs per node")
	fs.Int64Var(&f.memoryMB, "memory-mb", 0, "memory per node in MiB")
	fs.IntVar(&f.gpus, "gpus", 0, "GPUs per node")
	fs.IntVar(&f.nodeCount, "node-count", 0, "nodes to run on at once (default 1)")
	fs.IntVar(&f.procsPerNode, "process-count-per-node", 0, "processes per node (default 1)")
	fs.StringVar(&f.distribution, "distribution", "", "mpi (default for several nodes or processes) or none")
	fs.IntVar(&f.priority, "priority", 0, "higher runs first")
	fs.IntVar(&f.maxRetries, "max-retries", 0, "times a failed command is run again")
	fs.IntVar(&f.maxPreemptions, "max-preemptions", 0, "restarts allowed after lost or preempted nodes (default 10)")
	fs.IntVar(&f.maxRunDuration, "max-run-duration-seconds", 0, "kill an attempt running longer (0: no limit)")
	fs.StringVar(&f.name, "name", "", "display name")
	fs.BoolVar(&f.wait, "wait", false, "stream the output and exit with the run's exit code")
}

// apply overrides spec (and source) with the flags given on the command line.
func (f *runFlags) apply(fs *pflag.FlagSet, spec *api.RunSpec, source *string) error {
	set := fs.Changed
	if set("target") {
		spec.Target = f.target
	}
	if set("source") {
		*source = f.source
	}
	if set("image") {
		spec.Environment.Image = f.image
	}
	if len(f.env) > 0 {
		env := maps.Clone(spec.Env)
		if env == nil {
			env = map[string]string{}
		}
		for _, kv := range f.env {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return usagef("--env must be K=V, not %q", kv)
			}
			env[k] = v
		}
		spec.Env = env
	}
	if set("cpus") || set("memory-mb") || set("gpus") {
		r := api.Resources{}
		if spec.Resources != nil {
			r = *spec.Resources
		}
		if set("cpus") {
			r.CPUs = f.cpus
		}
		if set("memory-mb") {
			r.MemoryMB = f.memoryMB
		}
		if set("gpus") {
			r.GPUs = f.gpus
		}
		spec.Resources = &r
	}
	if set("node-count") {
		spec.NodeCount = f.nodeCount
	}
	if set("process-count-per-node") {
		spec.ProcessCountPerNode = f.procsPerNode
	}
	if set("distribution") {
		spec.Distribution = f.distribution
	}
	if set("priority") {
		spec.Priority = f.priority
	}
	if set("max-retries") {
		spec.MaxRetries = f.maxRetries
	}
	if set("max-preemptions") {
		v := f.maxPreemptions
		spec.MaxPreemptions = &v
	}
	if set("max-run-duration-seconds") {
		spec.MaxRunDurationSeconds = f.maxRunDuration
	}
	if set("name") {
		spec.DisplayName = f.name
	}
	return nil
}

// validateRunSpec checks what is cheap to check before asking the head.
// Messages name the flag and the YAML key.
func validateRunSpec(s *api.RunSpec) error {
	switch {
	case s.Target == "":
		return usagef("--target (target) is required")
	case len(s.Command) == 0:
		return usagef("no command: put it after --, as in 'amlctl job submit --target T -- python3 train.py', or give command in the YAML file")
	case s.NodeCount < 0:
		return usagef("--node-count (node_count) must be 1 or more, not %d", s.NodeCount)
	case s.ProcessCountPerNode < 0:
		return usagef("--process-count-per-node (process_count_per_node) must be 1 or more, not %d", s.ProcessCountPerNode)
	case s.MaxRetries < 0:
		return usagef("--max-retries (max_retries) must be 0 or more, not %d", s.MaxRetries)
	case s.MaxPreemptions != nil && *s.MaxPreemptions < 0:
		return usagef("--max-preemptions (max_preemptions) must be 0 or more, not %d", *s.MaxPreemptions)
	case s.MaxRunDurationSeconds < 0:
		return usagef("--max-run-duration-seconds (max_run_duration_seconds) must be 0 or more, not %d", s.MaxRunDurationSeconds)
	}
	if r := s.Resources; r != nil && (r.CPUs < 0 || r.MemoryMB < 0 || r.GPUs < 0) {
		return usagef("--cpus, --memory-mb and --gpus (resources) must be 0 or more")
	}
	for k := range s.Env {
		if k == "" || strings.Contains(k, "=") {
			return usagef("env: bad variable name %q", k)
		}
	}
	return oneOf("--distribution (distribution)", s.Distribution, api.DistributionMPI, api.DistributionNone)
}

// jobSubmitCmd is `amlctl job submit [flags] -- COMMAND...`.
func (a *app) jobSubmitCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "submit [flags] -- COMMAND [ARG...]",
		Short: "Submit a run",
		Long: `Submit a run of COMMAND on a compute target.

The command is run as is (argv), not through a shell. Flags end at the
first word of the command; '--' before it is clearer. With -f, the YAML
file gives the job (keys of the run spec, plus source, a directory relative
to the file); a command given there as a string is run with /bin/sh -c.
Flags given on the command line override the file.

Without --cpus, --memory-mb and --gpus a run gets whole nodes; with any of
them, it gets that much of each node and the head's defaults for the rest.

With --wait, amlctl streams the output, follows retries and requeues, and
exits with the run's exit code (Completed 0, Failed its code or 1,
Canceled 130). With -o json --wait, the output goes to stderr and the
final run to stdout.`,
		Example: `  amlctl job submit --target cpu-cluster --source ./train --wait -- python3 train.py --epochs 5
  amlctl job submit -f job.yml --wait`,
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, source, err := f.spec(cmd.Flags(), args)
			if err != nil {
				return err
			}
			return a.submit(cmd, spec, source, f.wait)
		},
	}
	cmd.Flags().SetInterspersed(false)
	f.register(cmd.Flags())
	return cmd
}

// spec builds the run spec from the file, the flags and the command words.
func (f *runFlags) spec(fs *pflag.FlagSet, args []string) (api.RunSpec, string, error) {
	var spec api.RunSpec
	var source string
	if f.file != "" {
		var err error
		if spec, source, err = loadJobFile(f.file); err != nil {
			return spec, "", err
		}
	}
	if err := f.apply(fs, &spec, &source); err != nil {
		return spec, "", err
	}
	if len(args) > 0 {
		spec.Command = append([]string(nil), args...)
	}
	return spec, source, validateRunSpec(&spec)
}

// submit uploads the source (if any), submits spec and, with wait, follows
// the run to its end.
func (a *app) submit(cmd *cobra.Command, spec api.RunSpec, source string, wait bool) error {
	ctx := cmd.Context()
	c, err := a.client()
	if err != nil {
		return err
	}
	if source != "" {
		tb, err := buildSource(source, api.MaxSourceBytes)
		if err != nil {
			return err
		}
		for _, s := range tb.Skipped {
			fmt.Fprintf(a.stderr, "amlctl: left out of the source snapshot: %s\n", s)
		}
		ref, err := c.UploadSource(ctx, tb.Data)
		if err != nil {
			return fmt.Errorf("upload source %s: %w", source, err)
		}
		spec.SourceID = ref.ID
	}
	r, err := c.SubmitRun(ctx, spec)
	if err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	if !wait {
		if a.jsonOut() {
			return a.printJSON(r)
		}
		fmt.Fprintf(a.stdout, "Submitted run %s to %s (%s).\n", r.ID, r.Target, stateLine(r))
		fmt.Fprintf(a.stdout, "Follow it with: amlctl job logs %s -f\n", r.ID)
		return nil
	}
	fmt.Fprintf(a.stderr, "Submitted run %s to %s.\n", r.ID, r.Target)
	return a.waitRun(ctx, c, r.ID)
}

// jobListCmd is `amlctl job list [--target T] [--state S]`.
func (a *app) jobListCmd() *cobra.Command {
	var filter api.RunFilter
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List runs, newest first",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if filter.State != "" {
				s, ok := canonicalRunState(filter.State)
				if !ok {
					return usagef("--state must be one of %s, not %q", strings.Join(runStates, ", "), filter.State)
				}
				filter.State = s
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			rs, err := c.ListRuns(cmd.Context(), filter)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(orEmpty(rs))
			}
			w := newTable(a.stdout)
			row(w, "ID", "NAME", "TARGET", "STATE", "ATTEMPTS", "SUBMITTED", "EXIT", "REASON")
			for _, r := range rs {
				row(w, r.ID, orDash(r.DisplayName), r.Target, r.State, len(r.Attempts), fmtTime(r.SubmittedAt),
					fmtExit(r.ExitCode), orDash(r.Reason))
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&filter.Target, "target", "", "only runs of this target")
	cmd.Flags().StringVar(&filter.State, "state", "", "only runs in this state ("+strings.Join(runStates, ", ")+")")
	return cmd
}

// runStates lists the run states users see.
var runStates = []string{api.RunQueued, api.RunPreparing, api.RunRunning, api.RunFinalizing,
	api.RunCompleted, api.RunFailed, api.RunCancelRequested, api.RunCanceled}

// canonicalRunState matches s to a run state, ignoring case.
func canonicalRunState(s string) (string, bool) {
	for _, st := range runStates {
		if strings.EqualFold(s, st) {
			return st, true
		}
	}
	return "", false
}

// jobCancelCmd is `amlctl job cancel RUN`.
func (a *app) jobCancelCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel RUN",
		Short: "Cancel a run: a queued run at once, a running one through CancelRequested",
		Args:  exactArgs("RUN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			r, err := c.CancelRun(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("cancel %s: %w", args[0], err)
			}
			if a.jsonOut() {
				return a.printJSON(r)
			}
			fmt.Fprintf(a.stdout, "Run %s: %s.\n", r.ID, r.State)
			return nil
		},
	}
}

// jobShowCmd is `amlctl job show RUN`.
func (a *app) jobShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show RUN",
		Short: "Show a run: state, reason, command, resources and attempts",
		Args:  exactArgs("RUN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			r, _, err := c.GetRun(cmd.Context(), args[0], api.Wait{})
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(r)
			}
			return printRun(a.stdout, r)
		},
	}
}

// printRun writes a run for people.
func printRun(out io.Writer, r *api.Run) error {
	w := newTable(out)
	kv := func(k string, v any) { row(w, k+":", v) }
	kv("id", r.ID)
	if r.DisplayName != "" {
		kv("name", r.DisplayName)
	}
	kv("target", r.Target)
	kv("state", r.State)
	kv("reason", orDash(r.Reason))
	kv("command", shellJoin(r.Command))
	kv("image", orDash(r.Environment.Image))
	kv("resources", r.Request)
	kv("nodes", fmt.Sprintf("%d x %d process(es)", max(r.NodeCount, 1), max(r.ProcessCountPerNode, 1)))
	kv("priority", r.Priority)
	kv("retries", fmt.Sprintf("%d of %d", r.Retries, r.MaxRetries))
	kv("preemptions", fmt.Sprintf("%d of %d", r.Preemptions, r.MaxPreemptionsOrDefault()))
	kv("submitted", fmtTime(r.SubmittedAt))
	kv("started", fmtTime(r.StartedAt))
	kv("ended", fmtTime(r.EndedAt))
	kv("exit_code", fmtExit(r.ExitCode))
	if r.CheckpointAttempt > 0 {
		kv("checkpoint", fmtCheckpoint(r))
	}
	if r.Owner != "" {
		kv("owner", r.Owner)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if len(r.Attempts) == 0 {
		return nil
	}
	fmt.Fprintln(out, "attempts:")
	w = newTable(out)
	row(w, "  #", "NODES", "STARTED", "ENDED", "EXIT", "REASON")
	for _, at := range r.Attempts {
		ids := make([]string, len(at.Allocations))
		for i, al := range at.Allocations {
			ids[i] = al.NodeID
		}
		row(w, fmt.Sprintf("  %d", at.Number), orDash(strings.Join(ids, ",")), fmtTime(at.StartedAt),
			fmtTime(at.EndedAt), fmtExit(at.ExitCode), orDash(at.Reason))
	}
	return w.Flush()
}

// fmtExit formats an exit code, "-" when there is none.
func fmtExit(code *int) string {
	if code == nil {
		return "-"
	}
	return fmt.Sprint(*code)
}

// shellJoin formats argv the way a shell would read it back.
func shellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, s := range argv {
		if s != "" && strings.IndexFunc(s, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
		}) < 0 {
			q[i] = s
			continue
		}
		q[i] = "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
