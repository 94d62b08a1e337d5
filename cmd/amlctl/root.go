package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/amld/amld/api"
)

// Environment variables that stand in for the global flags.
const (
	envAddr   = "AMLCTL_ADDR"
	envToken  = "AMLCTL_TOKEN"
	envConfig = "AMLCTL_CONFIG"
	envCAFile = "AMLCTL_CA_FILE"
)

// defaultConfigPath is where `amld dev` writes the config, under the
// user's config directory (os.UserConfigDir: $XDG_CONFIG_HOME or ~/.config).
const defaultConfigPath = "amlctl/config"

// defaultConfigShown is defaultConfigPath as help texts show it.
const defaultConfigShown = "~/.config/" + defaultConfigPath

// Output formats of -o.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// defaultPollWait is how long one blocking query of a follow may wait.
const defaultPollWait = 30 * time.Second

// app is what every command shares: the global flags, where output goes and
// how amlctl reads its environment. Tests build one with fakes.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// configDir is os.UserConfigDir, or a fake in tests.
	configDir func() (string, error)
	// httpClient, when set, is used for API calls (tests).
	httpClient *http.Client
	// pollWait is the wait of one blocking query while following a run.
	pollWait time.Duration
	// minPoll paces polling when a head answers without waiting.
	minPoll time.Duration

	// Global flags.
	addr, token, configPath, output string
	caFile                          string
	consistent                      bool
}

// fileConfig is the config file `amld dev` writes (mode 0600).
type fileConfig struct {
	// Address is a head address, or several separated by commas.
	Address string `json:"address"`
	Token   string `json:"token"`
	// CAFile is the cluster CA's certificate file.
	CAFile string `json:"ca_file,omitempty"`
}

// usageError is a mistake in how amlctl was called; amlctl exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usagef makes a usageError.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitError ends amlctl with code; whatever there was to say is already said.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// run executes amlctl with args and returns its exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{
		stdout:    stdout,
		stderr:    stderr,
		getenv:    getenv,
		configDir: os.UserConfigDir,
		pollWait:  defaultPollWait,
		minPoll:   time.Second,
	}
	return a.execute(ctx, args)
}

// execute runs the command line args and maps its outcome to an exit code.
func (a *app) execute(ctx context.Context, args []string) int {
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	cmd, err := root.ExecuteContextC(ctx)
	return a.exitCode(cmd, err)
}

// exitCode prints err the way amlctl reports errors and returns the code to
// exit with: 0 for none, 2 for usage errors, 130 for an interrupt, else 1.
func (a *app) exitCode(cmd *cobra.Command, err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(a.stderr, "amlctl: %s\n", ue.msg)
		if cmd != nil {
			fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
		return 2
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(a.stderr, "amlctl: interrupted")
		return 130
	}
	msg := err.Error()
	if api.StatusOf(err) == http.StatusUnauthorized {
		msg += " (check --token, " + envToken + " or the config file)"
	}
	if strings.Contains(msg, "HTTP request to an HTTPS server") || strings.Contains(msg, "certificate signed by unknown authority") {
		msg += " (the heads speak TLS: give the cluster's CA certificate with --ca-file or " + envCAFile + ")"
	}
	fmt.Fprintf(a.stderr, "amlctl: %s\n", msg)
	return 1
}

// rootCmd builds the command tree.
func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "amlctl",
		Short: "Command line client of amld, the cluster scheduler for ML runs",
		Long: `amlctl manages amld's compute targets and runs.

It finds the head through --addr, ` + envAddr + ` or the config file
(` + defaultConfigShown + `, written by 'amld dev'), in that order, and
authenticates with --token, ` + envToken + ` or the config file.`,
		Args:              noSubcommand,
		RunE:              func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		PersistentPreRunE: a.checkGlobals,
		SilenceErrors:     true,
		SilenceUsage:      true,
	}
	root.CompletionOptions.HiddenDefaultCmd = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{msg: err.Error()} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.addr, "addr", "", "head address(es), comma-separated (env "+envAddr+")")
	pf.StringVar(&a.token, "token", "", "API token (env "+envToken+")")
	pf.StringVar(&a.configPath, "config", "", "config file (env "+envConfig+", default "+defaultConfigShown+")")
	pf.StringVarP(&a.output, "output", "o", outputTable, "output format: table or json")
	pf.StringVar(&a.caFile, "ca-file", "", "the cluster CA's certificate, to verify the heads against (env "+envCAFile+")")
	pf.BoolVar(&a.consistent, "consistent", false, "read through the leader, after every committed write (default: any head's state)")
	root.AddCommand(a.computeCmd(), a.jobCmd(), a.whoamiCmd(), a.userCmd(), a.serverCmd(), a.operatorCmd())
	return root
}

// group makes a command that only holds subcommands.
func group(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  noSubcommand,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
}

// noSubcommand rejects arguments to a command that only holds subcommands.
func noSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %q?)", s[0])
	}
	return &usageError{msg: msg}
}

// exactArgs requires the named positional arguments.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == len(names) {
			return nil
		}
		if len(names) == 0 {
			return usagef("%s takes no arguments; got %q", cmdName(cmd), args)
		}
		return usagef("%s takes %d argument(s): %s; got %d", cmdName(cmd), len(names), strings.Join(names, " "), len(args))
	}
}

// cmdName is the command's path without the program's name ("job show").
func cmdName(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}

// checkGlobals validates the global flags before any command runs.
func (a *app) checkGlobals(*cobra.Command, []string) error {
	switch a.output {
	case outputTable, outputJSON:
		return nil
	}
	return usagef("-o/--output must be json or table, not %q", a.output)
}

// settings resolves the head addresses and token: flags beat environment
// variables beat the config file.
func (a *app) settings() (addrs []string, token string, err error) {
	addr, token := a.addr, a.token
	if addr == "" {
		addr = a.getenv(envAddr)
	}
	if token == "" {
		token = a.getenv(envToken)
	}
	// The config file is read only for what flags and environment leave
	// unset; a missing one is an error only when --config named it.
	if addr == "" || token == "" {
		path, explicit := a.configPath, a.configPath != ""
		if path == "" {
			path = a.getenv(envConfig)
		}
		if path == "" {
			if dir, derr := a.configDir(); derr == nil {
				path = filepath.Join(dir, defaultConfigPath)
			}
		}
		if path != "" {
			cfg, cerr := readConfig(path)
			switch {
			case cerr == nil:
				if addr == "" {
					addr = cfg.Address
				}
				if token == "" {
					token = cfg.Token
				}
			case explicit || !errors.Is(cerr, os.ErrNotExist):
				return nil, "", cerr
			}
		}
	}
	for _, s := range strings.Split(addr, ",") {
		if s = strings.TrimSpace(s); s != "" {
			addrs = append(addrs, s)
		}
	}
	if len(addrs) == 0 {
		return nil, "", errors.New("no head address: give --addr or " + envAddr + ", or run 'amld dev', which writes " + defaultConfigShown)
	}
	return addrs, token, nil
}

// readConfig reads the JSON config file at path.
func readConfig(path string) (*fileConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var cfg fileConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &cfg, nil
}

// client returns an API client for the resolved settings.
func (a *app) client() (*api.Client, error) {
	addrs, token, err := a.settings()
	if err != nil {
		return nil, err
	}
	caPEM, err := a.caPEM()
	if err != nil {
		return nil, err
	}
	return api.NewClient(api.Config{Addresses: addrs, Token: token, HTTPClient: a.httpClient, CACertPEM: caPEM, Consistent: a.consistent})
}

// jsonOut reports whether -o json was asked for.
func (a *app) jsonOut() bool { return a.output == outputJSON }

// printJSON writes v as indented JSON to stdout.
func (a *app) printJSON(v any) error { return writeJSON(a.stdout, v) }

// writeJSON writes v to w as JSON indented by 2 spaces.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newTable returns a writer that aligns tab-separated columns; Flush it.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// row writes one tab-separated line to a table.
func row(w io.Writer, cols ...any) {
	for i, c := range cols {
		if i > 0 {
			fmt.Fprint(w, "\t")
		}
		fmt.Fprint(w, c)
	}
	fmt.Fprintln(w)
}

// fmtTime formats t for people: local time to the second, "-" when unset.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// orDash returns s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneOf checks that the value of flag is empty or one of allowed.
func oneOf(flag, value string, allowed ...string) error {
	if value == "" {
		return nil
	}
	for _, s := range allowed {
		if value == s {
			return nil
		}
	}
	return usagef("%s must be %s, not %q", flag, strings.Join(allowed, " or "), value)
}
