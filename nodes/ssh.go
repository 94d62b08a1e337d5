package nodes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// HostSource gives the ssh provider the attached machines with their
// credentials (the head decrypts them from its replicated state).
type HostSource interface {
	// SSHHost returns the named host, or an error wrapping ErrHostGone when
	// it is no longer attached (or is being detached with force).
	SSHHost(ctx context.Context, name string) (*SSHHost, error)
	// SSHHosts returns every host whose machine List must look at.
	SSHHosts(ctx context.Context) ([]*SSHHost, error)
}

// SSHConfig configures the ssh provider.
type SSHConfig struct {
	// Hosts are the attached machines. Required.
	Hosts HostSource
	// Binary is the amld binary installed on the machines (the head's
	// own). Required.
	Binary string
	// DialTimeout bounds connecting and the SSH handshake (default 15s).
	DialTimeout time.Duration
	// Logger receives the provider's logs (never a secret); nil discards.
	Logger *slog.Logger
}

// SSH is the `ssh` provider: a node is an `amld agent` started over SSH on
// an attached machine, the one NodeSpec.Host names (the head picks it: a
// remote target's own machine, or a free host of the pool). The agent runs
// as a systemd unit where systemd runs and the user may install units, else
// as a supervised background process with a pid file; see InstallAgent for
// what it keeps on the machine.
type SSH struct {
	cfg SSHConfig
	log *slog.Logger
}

var (
	_ Provider   = (*SSH)(nil)
	_ Purger     = (*SSH)(nil)
	_ ListScoper = (*SSH)(nil)
)

// NewSSH checks cfg and returns the provider.
func NewSSH(cfg SSHConfig) (*SSH, error) {
	if cfg.Hosts == nil {
		return nil, errors.New("ssh provider: Hosts is required")
	}
	if cfg.Binary == "" {
		return nil, errors.New("ssh provider: Binary is required")
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 15 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SSH{cfg: cfg, log: log}, nil
}

// Name implements Provider.
func (p *SSH) Name() string { return "ssh" }

// Lists implements ListScoper: List sees every attached machine.
func (p *SSH) Lists(string) bool { return true }

// sshProviderID is the provider ID of a node on host.
func sshProviderID(host string) string { return "ssh:" + host }

// Create implements Provider: it connects to spec.Host, installs the amld
// binary if it is missing or differs, writes the join token (0600, sent on
// stdin, never on a command line) and starts the agent. It returns
// "ssh:<host>".
func (p *SSH) Create(ctx context.Context, spec NodeSpec) (string, error) {
	if spec.Host == "" {
		return "", fmt.Errorf("ssh provider: node %s has no host (the head picks one from the pool)", spec.NodeID)
	}
	if !safeNodeID(spec.NodeID) || (spec.KeepName != "" && !safeNodeID(spec.KeepName)) {
		return "", fmt.Errorf("ssh provider: node %q or keep name %q is not a safe file name", spec.NodeID, spec.KeepName)
	}
	if spec.JoinToken == "" || len(spec.HeadAddrs) == 0 {
		return "", errors.New("ssh provider: no join token or head address for the agent")
	}
	h, err := p.cfg.Hosts.SSHHost(ctx, spec.Host)
	if err != nil {
		return "", fmt.Errorf("ssh provider: %w", err)
	}
	c, err := DialSSH(ctx, h, p.cfg.DialTimeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if _, err := InstallAgent(ctx, c, p.cfg.Binary, h.Marker); err != nil {
		return "", err
	}
	writeToken := `umask 077; mkdir -p "$HOME/.amld/nodes/$1" && printf '%s\n' "$2" > "$HOME/.amld/nodes/$1/target" && cat > "$HOME/.amld/nodes/$1/join.token"`
	cmd := "sh -c " + shellQuote(writeToken) + " sh " + shellQuote(spec.NodeID) + " " + shellQuote(spec.Target)
	if _, err := runRemote(ctx, c, cmd, strings.NewReader(spec.JoinToken+"\n")); err != nil {
		return "", fmt.Errorf("write the join token on %s: %w", h.Name, err)
	}
	if len(spec.CACertPEM) > 0 {
		// The heads speak TLS: the agent checks them against the cluster CA.
		writeCA := `umask 022; cat > "$HOME/.amld/nodes/$1/ca.crt"`
		cmd := "sh -c " + shellQuote(writeCA) + " sh " + shellQuote(spec.NodeID)
		if _, err := runRemote(ctx, c, cmd, bytes.NewReader(spec.CACertPEM)); err != nil {
			return "", fmt.Errorf("write the cluster CA on %s: %w", h.Name, err)
		}
	}
	if spec.AuthorizedKey != "" {
		line, err := authorizedLine(spec.AuthorizedKey, spec.NodeID)
		if err != nil {
			return "", fmt.Errorf("ssh provider: %w", err)
		}
		if _, err := runScript(ctx, c, grantScript, line, accessTag(spec.NodeID)); err != nil {
			return "", fmt.Errorf("let the instance's owner log in to %s: %w", h.Name, err)
		}
	}
	res := spec.Size.Resources()
	args := []string{h.AgentMode, spec.NodeID, spec.KeepName,
		"--head", strings.Join(spec.HeadAddrs, ","),
		"--target", spec.Target,
		"--cpus", strconv.Itoa(res.CPUs),
		"--memory-mb", strconv.FormatInt(res.MemoryMB, 10),
		"--gpus", strconv.Itoa(res.GPUs),
	}
	out, err := runScript(ctx, c, startScript, args...)
	if err != nil {
		return "", fmt.Errorf("start the agent on %s: %w", h.Name, err)
	}
	p.log.Info("started agent", "node", spec.NodeID, "host", h.Name, "how", strings.TrimSpace(string(out)))
	return sshProviderID(h.Name), nil
}

// Delete implements Provider: it stops the node's agent on its host (its
// systemd unit, or SIGTERM to its process group and SIGKILL after 20s) and
// removes the node's directory. A host that is gone is not an error.
func (p *SSH) Delete(ctx context.Context, nodeID, providerID string) error {
	host, ok := strings.CutPrefix(providerID, "ssh:")
	if !ok || host == "" {
		return fmt.Errorf("ssh provider: node %s has no host in its provider ID %q", nodeID, providerID)
	}
	if !safeNodeID(nodeID) {
		return fmt.Errorf("ssh provider: node ID %q is not a safe file name", nodeID)
	}
	c, h, err := p.dialHost(ctx, host)
	if c == nil {
		return err // nil when the host was detached: nothing left to do there
	}
	defer c.Close()
	if _, err := runScript(ctx, c, stopFunc+`mode="$1"; stop_node "$2"`, h.AgentMode, nodeID); err != nil {
		return fmt.Errorf("stop the agent of %s on %s: %w", nodeID, h.Name, err)
	}
	p.log.Info("stopped agent", "node", nodeID, "host", h.Name)
	return nil
}

// List implements Provider: the nodes whose agent runs on each attached
// machine. A machine that cannot be reached makes List fail (the leader
// then concludes nothing; heartbeats still find lost nodes).
func (p *SSH) List(ctx context.Context) ([]Instance, error) {
	hosts, err := p.cfg.Hosts.SSHHosts(ctx)
	if err != nil {
		return nil, fmt.Errorf("ssh provider: %w", err)
	}
	var out []Instance
	var errs []error
	for _, h := range hosts {
		insts, err := p.listHost(ctx, h)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, insts...)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("ssh provider: %w", errors.Join(errs...))
	}
	return out, nil
}

func (p *SSH) listHost(ctx context.Context, h *SSHHost) ([]Instance, error) {
	c, err := DialSSH(ctx, h, p.cfg.DialTimeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	b, err := runScript(ctx, c, listScript)
	if err != nil {
		return nil, fmt.Errorf("list the agents on %s: %w", h.Name, err)
	}
	var out []Instance
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !safeNodeID(f[0]) {
			continue
		}
		in := Instance{NodeID: f[0], ProviderID: sshProviderID(h.Name)}
		if len(f) > 1 {
			in.Target = f[1]
		}
		out = append(out, in)
	}
	return out, nil
}

// dialHost logs in to the attached machine host. A machine detached
// meanwhile gives a nil client and a nil error; any other failure a nil
// client and the error.
func (p *SSH) dialHost(ctx context.Context, host string) (*ssh.Client, *SSHHost, error) {
	h, err := p.cfg.Hosts.SSHHost(ctx, host)
	if errors.Is(err, ErrHostGone) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("ssh provider: %w", err)
	}
	c, err := DialSSH(ctx, h, p.cfg.DialTimeout)
	if err != nil {
		return nil, nil, err
	}
	return c, h, nil
}

// Purge implements Purger: it removes an instance's kept work dir from its
// host.
func (p *SSH) Purge(ctx context.Context, keepName, host string) error {
	if !safeNodeID(keepName) {
		return fmt.Errorf("ssh provider: keep name %q is not a safe file name", keepName)
	}
	c, h, err := p.dialHost(ctx, host)
	if c == nil {
		return err // nil when the host was detached: nothing left to do there
	}
	defer c.Close()
	if _, err := runRemote(ctx, c, `rm -rf "$HOME/.amld/keep/"`+shellQuote(keepName), nil); err != nil {
		return fmt.Errorf("remove the kept work dir of %s on %s: %w", keepName, h.Name, err)
	}
	return nil
}

// stopFunc defines stop_node NODE, which stops a node's agent (its systemd
// unit when $mode is systemd; its supervised process group in any case) and
// removes its directory.
const stopFunc = groupFunc + `
stop_node() {
  node="$1"; dir="$HOME/.amld/nodes/$node"
  if [ "$mode" = systemd ]; then
    unit="amld-agent-$node.service"; units="${AMLD_SYSTEMD_DIR:-/etc/systemd/system}"
    if [ "$(id -u)" = 0 ]; then S=""; else S="sudo -n"; fi
    if [ -f "$units/$unit" ]; then
      $S systemctl disable --now "$unit" >/dev/null 2>&1 || true
      $S rm -f "$units/$unit"
      $S systemctl daemon-reload >/dev/null 2>&1 || true
    fi
  fi
  if [ -f "$dir/pid" ]; then
    pg=$(cat "$dir/pid")
    if [ -n "$pg" ] && group_alive "$pg"; then
      kill -TERM "-$pg" 2>/dev/null || true
      i=0
      while group_alive "$pg" && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
      kill -KILL "-$pg" 2>/dev/null || true
    fi
  fi
  keys="$HOME/.ssh/authorized_keys"
  if [ -f "$keys" ] && grep -qF " amld-access:$node" "$keys"; then
    grep -vF " amld-access:$node" "$keys" > "$keys.amld" || true
    cat "$keys.amld" > "$keys"
    rm -f "$keys.amld"
  fi
  rm -rf "$dir"
}
`

// groupFunc defines group_alive PGID: whether a process group has a live
// member. A zombie does not count: the agent's supervisor is a child of
// init once the SSH session ends, and an init that reaps late (a
// container's) would otherwise keep the group "alive" after it exited.
const groupFunc = `
group_alive() {
  _g="$1"
  for _s in /proc/[0-9]*/stat; do
    read -r _l 2>/dev/null < "$_s" || continue
    _l=${_l##*) }
    set -- $_l
    [ "$1" != Z ] && [ "$3" = "$_g" ] && return 0
  done
  return 1
}
`

// startScript starts a node's agent: $1 the mode (systemd or process), $2
// the node ID, $3 the keep name (an instance's kept work dir, or empty),
// then the agent's other flags.
const startScript = groupFunc + `set -eu
mode="$1"; node="$2"; keep="$3"; shift 3
base="$HOME/.amld"; dir="$base/nodes/$node"
if [ -n "$keep" ]; then work="$base/keep/$keep/work"; data="$base/keep/$keep/data"
else work="$dir/work"; data="$dir/data"; fi
umask 077
mkdir -p "$dir" "$work" "$data"
[ -s "$dir/join.token" ] || { echo "no join token in $dir" >&2; exit 1; }
set -- "$base/bin/amld" agent --node-id "$node" --join-token-file "$dir/join.token" --work-dir "$work" "$@"
if [ -s "$dir/ca.crt" ]; then set -- "$@" --ca-file "$dir/ca.crt"; fi
if [ "$mode" = systemd ]; then
  unit="amld-agent-$node.service"; units="${AMLD_SYSTEMD_DIR:-/etc/systemd/system}"
  if [ "$(id -u)" = 0 ]; then S=""; else S="sudo -n"; fi
  exec_start=""
  for a in "$@"; do exec_start="$exec_start \"$a\""; done
  cat > "$dir/$unit" <<EOF
[Unit]
Description=amld agent of node $node
After=network-online.target
Wants=network-online.target

[Service]
User=$(id -un)
Environment="AML_DATA_DIR=$data"
WorkingDirectory=$dir
ExecStart=$exec_start
Restart=on-failure
RestartSec=2
KillMode=mixed
TimeoutStopSec=30

[Install]
WantedBy=multi-user.target
EOF
  $S install -m 0644 "$dir/$unit" "$units/$unit"
  $S systemctl daemon-reload
  $S systemctl enable --now "$unit" >/dev/null 2>&1
  echo "systemd unit $unit"
  exit 0
fi
command -v setsid >/dev/null 2>&1 || { echo "setsid (util-linux) is not installed" >&2; exit 1; }
if [ -s "$dir/pid" ] && group_alive "$(cat "$dir/pid")"; then echo "process group $(cat "$dir/pid") (already running)"; exit 0; fi
rm -f "$dir/pid"
cd "$dir"
AML_DATA_DIR="$data" setsid sh -c 'echo $$ > pid; while :; do "$@" && exit 0; sleep 2; done' amld-supervisor "$@" </dev/null >>"$dir/agent.log" 2>&1 &
i=0
while [ ! -s "$dir/pid" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
[ -s "$dir/pid" ] || { echo "the agent did not start; see $dir/agent.log" >&2; exit 1; }
echo "process group $(cat "$dir/pid")"
`

// grantScript adds $1, an authorized_keys line ending with the tag $2, to
// the user's authorized_keys unless it is there; stop_node removes it.
const grantScript = `set -eu
umask 077
mkdir -p "$HOME/.ssh"
touch "$HOME/.ssh/authorized_keys"
grep -qF " $2" "$HOME/.ssh/authorized_keys" || printf '%s\n' "$1" >> "$HOME/.ssh/authorized_keys"
`

// accessTag marks the authorized_keys line that lets an instance's owner
// log in while node runs.
func accessTag(node string) string { return "amld-access:" + node }

// authorizedLine is key (authorized_keys format, its comment dropped)
// tagged for node.
func authorizedLine(key, node string) (string, error) {
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(key))
	if err != nil {
		return "", fmt.Errorf("the instance's public key: %w", err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))) + " " + accessTag(node), nil
}

// listScript prints "NODE TARGET" for every node whose agent runs.
const listScript = groupFunc + `base="$HOME/.amld"
[ -d "$base/nodes" ] || exit 0
for d in "$base"/nodes/*/; do
  [ -d "$d" ] || continue
  node=$(basename "$d")
  target=$(cat "$d/target" 2>/dev/null || true)
  if [ -s "$d/pid" ] && group_alive "$(cat "$d/pid")"; then echo "$node $target"; continue; fi
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "amld-agent-$node.service" 2>/dev/null; then echo "$node $target"; fi
done
`
