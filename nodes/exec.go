package nodes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ExecCommands are the scripts of one target of the exec provider:
// absolute paths of executables on the heads. List is optional.
type ExecCommands struct {
	Create, Delete, List string
}

// ExecSource tells the exec provider each target's scripts.
type ExecSource interface {
	// ExecCommands returns the target's scripts, or an error when the
	// target is gone or is not one of the exec provider.
	ExecCommands(target string) (ExecCommands, error)
	// ExecTargets lists the targets of the exec provider.
	ExecTargets() []string
	// NodeTarget returns the target of a node, or "" when it is unknown.
	NodeTarget(nodeID string) string
}

// ExecConfig configures the exec provider.
type ExecConfig struct {
	// Source gives the targets' scripts. Required.
	Source ExecSource
	// DataDir holds each node's join token file, DataDir/<node>/join.token
	// (0600), from create to delete. Required.
	DataDir string
	// AgentBinary is the amld binary, given to scripts as
	// AMLD_AGENT_BINARY (for scripts that start agents on this machine or
	// copy it elsewhere).
	AgentBinary string
	// Env is the scripts' base environment (default: the head's own).
	Env []string
	// Logger receives the provider's logs; nil discards them.
	Logger *slog.Logger
}

// Exec is the `exec` provider: the user's scripts make and remove machines,
// the way Slurm's ResumeProgram and SuspendProgram reach any cloud's CLI.
//
// The create script runs with the node's name and shape, the heads'
// addresses and the path of a file (0600) holding the join token in its
// environment; the token is never on a command line. It must start a
// machine that runs `amld agent --node-id $AMLD_NODE_NAME ...` and may print
// the machine's ID as the last line of its stdout. The delete script runs
// with AMLD_NODE_NAME and AMLD_PROVIDER_ID and must succeed when the machine
// is already gone. The list script, if any, prints one line per machine:
// the node name and, optionally, its ID. A script that fails has the end of
// its stderr in the error (and so in the target's provisioning_errors); the
// autoscaler backs off after such failures. See docs/exec-provider.md.
type Exec struct {
	cfg ExecConfig
	log *slog.Logger
}

var (
	_ Provider   = (*Exec)(nil)
	_ ListScoper = (*Exec)(nil)
)

// NewExec checks cfg and returns the provider.
func NewExec(cfg ExecConfig) (*Exec, error) {
	if cfg.Source == nil {
		return nil, errors.New("exec provider: Source is required")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("exec provider: DataDir is required")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("exec provider: DataDir: %w", err)
	}
	if cfg.Env == nil {
		cfg.Env = os.Environ()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Exec{cfg: cfg, log: log}, nil
}

// Name implements Provider.
func (p *Exec) Name() string { return "exec" }

// Lists implements ListScoper: only targets with a list script are listed.
func (p *Exec) Lists(target string) bool {
	c, err := p.cfg.Source.ExecCommands(target)
	return err == nil && c.List != ""
}

// Environment variables the scripts get.
const (
	EnvNodeName      = "AMLD_NODE_NAME"
	EnvTarget        = "AMLD_TARGET"
	EnvVMSize        = "AMLD_VM_SIZE"
	EnvVMPriority    = "AMLD_VM_PRIORITY"
	EnvCPUs          = "AMLD_CPUS"
	EnvMemoryMB      = "AMLD_MEMORY_MB"
	EnvGPUs          = "AMLD_GPUS"
	EnvHeadAddrs     = "AMLD_HEAD_ADDRS"
	EnvJoinTokenFile = "AMLD_JOIN_TOKEN_FILE"
	// EnvCAFile is the path of the cluster CA's certificate, set when the
	// heads speak TLS: the agent needs it as --ca-file.
	EnvCAFile      = "AMLD_CA_FILE"
	EnvAgentBinary = "AMLD_AGENT_BINARY"
	EnvProviderID  = "AMLD_PROVIDER_ID"
)

// Create implements Provider: it runs the target's create script and
// returns "exec:<target>/<machine ID>" (the node name when the script
// printed none).
func (p *Exec) Create(ctx context.Context, spec NodeSpec) (string, error) {
	if !safeNodeID(spec.NodeID) {
		return "", fmt.Errorf("exec provider: node ID %q is not a safe file name", spec.NodeID)
	}
	if spec.JoinToken == "" || len(spec.HeadAddrs) == 0 {
		return "", errors.New("exec provider: no join token or head address for the agent")
	}
	cmds, err := p.cfg.Source.ExecCommands(spec.Target)
	if err != nil {
		return "", fmt.Errorf("exec provider: %w", err)
	}
	dir := filepath.Join(p.cfg.DataDir, spec.NodeID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("exec provider: %w", err)
	}
	tokenFile := filepath.Join(dir, "join.token")
	if err := os.WriteFile(tokenFile, []byte(spec.JoinToken+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("exec provider: write the join token: %w", err)
	}
	if err := os.Chmod(tokenFile, 0o600); err != nil {
		return "", fmt.Errorf("exec provider: %w", err)
	}
	res := spec.Size.Resources()
	env := []string{
		EnvNodeName + "=" + spec.NodeID,
		EnvTarget + "=" + spec.Target,
		EnvVMSize + "=" + spec.Size.Name,
		EnvVMPriority + "=" + spec.Priority,
		EnvCPUs + "=" + strconv.Itoa(res.CPUs),
		EnvMemoryMB + "=" + strconv.FormatInt(res.MemoryMB, 10),
		EnvGPUs + "=" + strconv.Itoa(res.GPUs),
		EnvHeadAddrs + "=" + strings.Join(spec.HeadAddrs, ","),
		EnvJoinTokenFile + "=" + tokenFile,
		EnvAgentBinary + "=" + p.cfg.AgentBinary,
	}
	if len(spec.CACertPEM) > 0 {
		// The heads speak TLS: the script hands the agent the cluster CA
		// (amld agent --ca-file "$AMLD_CA_FILE").
		caFile := filepath.Join(dir, "ca.crt")
		if err := os.WriteFile(caFile, spec.CACertPEM, 0o644); err != nil {
			return "", fmt.Errorf("exec provider: write the cluster CA: %w", err)
		}
		env = append(env, EnvCAFile+"="+caFile)
	}
	out, err := p.run(ctx, "create", cmds.Create, dir, env, spec.JoinToken)
	if err != nil {
		return "", err
	}
	id := machineID(out)
	if id == "" {
		id = spec.NodeID
	}
	p.log.Info("create script made a machine", "node", spec.NodeID, "target", spec.Target, "machine", id)
	return "exec:" + spec.Target + "/" + id, nil
}

// Delete implements Provider: it runs the target's delete script, then
// removes the node's token file.
func (p *Exec) Delete(ctx context.Context, nodeID, providerID string) error {
	if !safeNodeID(nodeID) {
		return fmt.Errorf("exec provider: node ID %q is not a safe file name", nodeID)
	}
	target, id := parseExecID(providerID)
	if target == "" {
		target = p.cfg.Source.NodeTarget(nodeID)
	}
	if target == "" {
		return fmt.Errorf("exec provider: cannot delete node %s: its target is unknown (provider ID %q)", nodeID, providerID)
	}
	cmds, err := p.cfg.Source.ExecCommands(target)
	if err != nil {
		return fmt.Errorf("exec provider: delete node %s: %w", nodeID, err)
	}
	dir := filepath.Join(p.cfg.DataDir, nodeID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("exec provider: %w", err)
	}
	env := []string{EnvNodeName + "=" + nodeID, EnvTarget + "=" + target, EnvProviderID + "=" + id}
	if _, err := p.run(ctx, "delete", cmds.Delete, dir, env, ""); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("exec provider: %w", err)
	}
	return nil
}

// List implements Provider: the machines the list scripts of the targets
// that have one print.
func (p *Exec) List(ctx context.Context) ([]Instance, error) {
	var out []Instance
	for _, target := range p.cfg.Source.ExecTargets() {
		cmds, err := p.cfg.Source.ExecCommands(target)
		if err != nil || cmds.List == "" {
			continue
		}
		b, err := p.run(ctx, "list", cmds.List, p.cfg.DataDir, []string{EnvTarget + "=" + target}, "")
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || !safeNodeID(f[0]) {
				continue
			}
			id := f[0]
			if len(f) > 1 {
				id = f[1]
			}
			out = append(out, Instance{NodeID: f[0], ProviderID: "exec:" + target + "/" + id, Target: target})
		}
	}
	return out, nil
}

// parseExecID splits "exec:<target>/<id>".
func parseExecID(providerID string) (target, id string) {
	rest, ok := strings.CutPrefix(providerID, "exec:")
	if !ok {
		return "", ""
	}
	target, id, _ = strings.Cut(rest, "/")
	return target, id
}

// machineID is the last line of a create script's stdout, if it is a
// plausible ID (printable, no spaces, at most 200 bytes).
func machineID(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	id := strings.TrimSpace(lines[len(lines)-1])
	if id == "" || len(id) > 200 || strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return ""
	}
	return id
}

// maxScriptOutput caps what is read of a script's stdout and of its stderr.
const maxScriptOutput = 64 << 10

// run runs script (no arguments) in dir with the base environment plus
// env, and returns its stdout. Its stdout and stderr go to files, so a
// machine it leaves running in the background cannot hold it up. When ctx
// ends its process group is killed. A failure carries the end of its
// stderr, with secret (the join token) blanked out.
func (p *Exec) run(ctx context.Context, what, script, dir string, env []string, secret string) ([]byte, error) {
	if script == "" {
		return nil, fmt.Errorf("exec provider: no %s command", what)
	}
	stdout, err := os.CreateTemp(dir, "."+what+"-out-*")
	if err != nil {
		return nil, fmt.Errorf("exec provider: %w", err)
	}
	defer os.Remove(stdout.Name())
	defer stdout.Close()
	stderr, err := os.CreateTemp(dir, "."+what+"-err-*")
	if err != nil {
		return nil, fmt.Errorf("exec provider: %w", err)
	}
	defer os.Remove(stderr.Name())
	defer stderr.Close()

	cmd := exec.CommandContext(ctx, script)
	cmd.Dir = dir
	cmd.Env = append(append([]string(nil), p.cfg.Env...), env...)
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	runErr := cmd.Run()
	out := readHead(stdout)
	if runErr == nil {
		p.log.Debug("exec script done", "what", what, "script", script, "took", time.Since(start))
		return out, nil
	}
	msg := string(readHead(stderr))
	if secret != "" {
		msg = strings.ReplaceAll(msg, secret, "[join token]")
	}
	msg = trimOutput(msg, 1000)
	how := runErr.Error()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		how = "was stopped: " + ctx.Err().Error()
	case errors.As(runErr, &ee) && ee.Exited():
		how = "exited " + strconv.Itoa(ee.ExitCode())
	}
	if msg == "" {
		msg = "(no stderr)"
	}
	return out, fmt.Errorf("%s command %s %s: %s", what, script, how, msg)
}

// readHead reads the first maxScriptOutput bytes of f from its start.
func readHead(f *os.File) []byte {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(f, maxScriptOutput))
	return b
}
