package nodes

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/amld/amld/api"
)

// What amld keeps on an attached machine, under the SSH user's home:
//
//	~/.amld/MANAGED-BY             which amld cluster and host made it
//	~/.amld/bin/amld               the head's own binary
//	~/.amld/nodes/<node>/          join.token (0600), agent.log, pid, work/
//	~/.amld/keep/<instance>/       an instance's work dir, kept across stop/start
//
// Detach removes ~/.amld (and the systemd units it made): the machine is
// left as it was. Attach refuses a ~/.amld that amld did not make.

// inspectScript prints key=value facts about the machine.
const inspectScript = `
echo "os=$(uname -s)"
echo "arch=$(uname -m)"
echo "kernel=$(uname -r)"
if [ -r /etc/os-release ]; then . /etc/os-release; echo "distro=${PRETTY_NAME:-}"; fi
echo "cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc 2>/dev/null || echo 0)"
awk '/^MemTotal:/ {print "mem_kb=" $2}' /proc/meminfo 2>/dev/null
echo "uid=$(id -u)"
echo "home=$HOME"
df -Pk "$HOME" 2>/dev/null | awk 'NR==2 {print "disk_free_kb=" $4}'
if [ -d /run/systemd/system ]; then echo systemd=yes; else echo systemd=no; fi
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then echo sudo=yes; else echo sudo=no; fi
if command -v docker >/dev/null 2>&1; then
  v=$(timeout 10 docker version --format '{{.Server.Version}}' 2>&1 | head -n 1)
  echo "docker=$v"
else
  echo "docker=<none>"
fi
if command -v nvidia-smi >/dev/null 2>&1; then
  timeout 20 nvidia-smi --query-gpu=index,uuid,name,memory.total,driver_version --format=csv,noheader,nounits 2>&1 | sed 's/^/gpu=/'
else
  echo "nvidia_smi=<none>"
fi
if [ -e "$HOME/.amld" ]; then echo "managed_by=$(head -n 1 "$HOME/.amld/MANAGED-BY" 2>/dev/null || echo '<foreign>')"; fi
`

// Inspection is what InspectHost found: the facts, and one finding per
// check in words.
type Inspection struct {
	Facts    api.HostFacts
	Findings []api.Finding
	// ManagedBy is the first line of ~/.amld/MANAGED-BY when ~/.amld
	// exists ("<foreign>" when it has none).
	ManagedBy string
}

// Failed reports whether a finding refuses the attachment.
func (in *Inspection) Failed() bool {
	for _, f := range in.Findings {
		if f.Status == api.FindingFail {
			return true
		}
	}
	return false
}

// InspectHost checks the machine behind c: OS and architecture (they must
// run this head's amld binary), CPUs, memory, free disk in the home, Docker,
// GPUs (nvidia-smi), and how the agent will run (systemd or a supervised
// process). marker is this cluster's MANAGED-BY line: a ~/.amld made by
// anything else fails the check.
func InspectHost(ctx context.Context, c *ssh.Client, marker string) (*Inspection, error) {
	out, err := runScript(ctx, c, inspectScript)
	if err != nil {
		return nil, fmt.Errorf("inspect the machine: %w", err)
	}
	in := parseInspection(out)
	in.Findings = findings(in, runtime.GOOS, runtime.GOARCH, marker)
	return in, nil
}

// parseInspection reads inspectScript's output.
func parseInspection(out []byte) *Inspection {
	in := &Inspection{}
	f := &in.Facts
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "os":
			f.OS = strings.ToLower(v)
		case "arch":
			f.Arch = goArch(v)
		case "kernel":
			f.Kernel = v
		case "distro":
			f.Distro = v
		case "cpus":
			f.CPUs, _ = strconv.Atoi(v)
		case "mem_kb":
			kb, _ := strconv.ParseInt(v, 10, 64)
			f.MemoryMB = kb / 1024
		case "disk_free_kb":
			kb, _ := strconv.ParseInt(v, 10, 64)
			f.DiskFreeMB = kb / 1024
		case "uid":
			f.Root = v == "0"
		case "home":
			f.Home = v
		case "systemd":
			f.Systemd = v == "yes"
		case "sudo":
			f.Sudo = v == "yes"
		case "docker":
			if v != "<none>" {
				f.Docker = v
			}
		case "gpu":
			if g, ok := parseGPU(v); ok {
				f.GPUs = append(f.GPUs, g)
			} else {
				// A broken nvidia-smi is a finding, not an error.
				in.Findings = append(in.Findings, api.Finding{Check: "gpus", Status: api.FindingWarn, Detail: "nvidia-smi failed: " + trimOutput(v, 200)})
			}
		case "managed_by":
			in.ManagedBy = v
		}
	}
	return in
}

// parseGPU reads one nvidia-smi CSV line: index, uuid, name, memory MiB, driver.
func parseGPU(line string) (api.GPU, bool) {
	p := strings.Split(line, ",")
	if len(p) < 5 {
		return api.GPU{}, false
	}
	for i := range p {
		p[i] = strings.TrimSpace(p[i])
	}
	idx, err1 := strconv.Atoi(p[0])
	mem, err2 := strconv.ParseInt(p[3], 10, 64)
	if err1 != nil || err2 != nil || !strings.HasPrefix(p[1], "GPU-") {
		return api.GPU{}, false
	}
	return api.GPU{Index: idx, UUID: p[1], Model: p[2], MemoryMB: mem, Driver: p[4]}, true
}

// goArch maps uname -m to Go's GOARCH.
func goArch(m string) string {
	switch m {
	case "x86_64", "amd64":
		return "amd64"
	case "aarch64", "arm64":
		return "arm64"
	case "armv7l", "armv6l":
		return "arm"
	case "i386", "i686":
		return "386"
	}
	return m
}

// findings words the checks of in for a head whose binary is goos/goarch.
func findings(in *Inspection, goos, goarch, marker string) []api.Finding {
	f := in.Facts
	out := append([]api.Finding(nil), in.Findings...)
	add := func(check, status, format string, args ...any) {
		out = append(out, api.Finding{Check: check, Status: status, Detail: fmt.Sprintf(format, args...)})
	}
	osName := f.Distro
	if osName == "" {
		osName = f.OS
	}
	switch {
	case f.OS != goos:
		add("os", api.FindingFail, "%s (%s): the agent runs on %s only", osName, f.OS, goos)
	case f.Arch != goarch:
		add("os", api.FindingFail, "%s on %s: this head's amld binary is %s/%s; run a head built for %s, or attach a %s machine",
			osName, f.Arch, goos, goarch, f.Arch, goarch)
	default:
		add("os", api.FindingOK, "%s, %s/%s, kernel %s", osName, f.OS, f.Arch, f.Kernel)
	}
	if f.CPUs < 1 {
		add("cpu", api.FindingFail, "could not count the CPUs")
	} else {
		add("cpu", api.FindingOK, "%d CPUs", f.CPUs)
	}
	switch {
	case f.MemoryMB <= 0:
		add("memory", api.FindingFail, "could not read /proc/meminfo")
	case f.MemoryMB < 1024:
		add("memory", api.FindingWarn, "%.1f GiB: little room for runs", float64(f.MemoryMB)/1024)
	default:
		add("memory", api.FindingOK, "%.1f GiB", float64(f.MemoryMB)/1024)
	}
	if f.DiskFreeMB > 0 && f.DiskFreeMB < 1024 {
		add("disk", api.FindingWarn, "%d MiB free in %s: the agent binary and runs' work dirs need room", f.DiskFreeMB, f.Home)
	} else if f.DiskFreeMB > 0 {
		add("disk", api.FindingOK, "%.1f GiB free in %s", float64(f.DiskFreeMB)/1024, f.Home)
	}
	switch {
	case f.Docker == "":
		add("docker", api.FindingInfo, "not installed: runs use the process runtime (no images)")
	case strings.ContainsAny(f.Docker, " :") || !strings.ContainsAny(f.Docker, "0123456789"):
		add("docker", api.FindingWarn, "the docker CLI is there but the engine does not answer this user: %s", trimOutput(f.Docker, 200))
		in.Facts.Docker = ""
	default:
		add("docker", api.FindingOK, "engine %s", f.Docker)
	}
	if len(f.GPUs) == 0 {
		add("gpus", api.FindingInfo, "none found (no nvidia-smi, or it lists none)")
	} else {
		var names []string
		for _, g := range f.GPUs {
			names = append(names, fmt.Sprintf("%d: %s %d MiB (driver %s)", g.Index, g.Model, g.MemoryMB, g.Driver))
		}
		add("gpus", api.FindingOK, "%d: %s", len(f.GPUs), strings.Join(names, "; "))
	}
	if mode := AgentModeFor(f); mode == api.AgentSystemd {
		how := "as root"
		if !f.Root {
			how = "with sudo"
		}
		add("init", api.FindingOK, "systemd runs there: the agent gets a systemd unit (installed %s)", how)
	} else if f.Systemd {
		add("init", api.FindingInfo, "systemd runs there but this user may not install units (not root, no passwordless sudo): the agent runs as a supervised background process")
	} else {
		add("init", api.FindingInfo, "no systemd: the agent runs as a supervised background process with a pid file")
	}
	switch {
	case in.ManagedBy == "":
	case in.ManagedBy == marker:
		add("install", api.FindingInfo, "~/.amld is left from an earlier attachment of this machine to this cluster: reused")
	case in.ManagedBy == "<foreign>":
		add("install", api.FindingFail, "%s/.amld exists and was not made by amld: move it away, or attach as another user", f.Home)
	default:
		add("install", api.FindingFail, "%s/.amld is managed by another amld (%q): detach the machine there first", f.Home, in.ManagedBy)
	}
	return out
}

// AgentModeFor says how agents run on a machine with facts f: a systemd
// unit where systemd runs and the user may install units, else a
// supervised background process.
func AgentModeFor(f api.HostFacts) string {
	if f.Systemd && (f.Root || f.Sudo) {
		return api.AgentSystemd
	}
	return api.AgentProcess
}

// installScript makes ~/.amld with its marker; the binary comes next.
const installScript = `set -eu
umask 022
mkdir -p "$HOME/.amld/bin" "$HOME/.amld/nodes" "$HOME/.amld/keep"
chmod 700 "$HOME/.amld/nodes" "$HOME/.amld/keep"
printf '%s\n' "$1" > "$HOME/.amld/MANAGED-BY"
if command -v sha256sum >/dev/null 2>&1 && [ -x "$HOME/.amld/bin/amld" ]; then
  sha256sum "$HOME/.amld/bin/amld" | cut -d ' ' -f 1
fi
`

// copyBinaryCmd writes stdin to ~/.amld/bin/amld.
const copyBinaryCmd = `set -e; umask 022; cat > "$HOME/.amld/bin/amld.tmp"; chmod 755 "$HOME/.amld/bin/amld.tmp"; mv -f "$HOME/.amld/bin/amld.tmp" "$HOME/.amld/bin/amld"; "$HOME/.amld/bin/amld" version`

// InstallAgent makes ~/.amld on the machine (writing marker to
// MANAGED-BY) and copies binary there unless the same file is there
// already; then it runs `amld version` there. It returns what that printed.
func InstallAgent(ctx context.Context, c *ssh.Client, binary, marker string) (string, error) {
	sum, err := fileSHA256(binary)
	if err != nil {
		return "", fmt.Errorf("read the amld binary: %w", err)
	}
	out, err := runScript(ctx, c, installScript, marker)
	if err != nil {
		return "", fmt.Errorf("make ~/.amld: %w", err)
	}
	if strings.TrimSpace(string(out)) == sum {
		out, err := runRemote(ctx, c, `"$HOME/.amld/bin/amld" version`, nil)
		if err == nil {
			return strings.TrimSpace(string(out)), nil
		}
	}
	f, err := os.Open(binary)
	if err != nil {
		return "", fmt.Errorf("read the amld binary: %w", err)
	}
	defer f.Close()
	out, err = runRemote(ctx, c, copyBinaryCmd, f)
	if err != nil {
		return "", fmt.Errorf("install amld in ~/.amld/bin (the head's binary must run there: same OS, architecture and a compatible libc, or build it with CGO_ENABLED=0): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// fileSHA256 returns the hex SHA-256 of a file.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// uninstallScript stops every agent amld started and removes ~/.amld, if
// this cluster made it ($1 is its marker).
const uninstallScript = `set -u
base="$HOME/.amld"
[ -d "$base" ] || exit 0
if [ "$(head -n 1 "$base/MANAGED-BY" 2>/dev/null)" != "$1" ]; then
  echo "refusing to remove $base: it was not made by this amld cluster" >&2
  exit 1
fi
for d in "$base"/nodes/*/; do
  [ -d "$d" ] || continue
  stop_node "$(basename "$d")"
done
rm -rf "$base"
`

// UninstallAgent stops the agents amld started on the machine, removes
// their systemd units, and removes ~/.amld: the machine is left as it was
// before attach. It refuses a ~/.amld that marker's cluster did not make.
func UninstallAgent(ctx context.Context, c *ssh.Client, marker, mode string) error {
	if _, err := runScript(ctx, c, stopFunc+"mode="+shellQuote(mode)+"\n"+uninstallScript, marker); err != nil {
		return fmt.Errorf("uninstall the agent: %w", err)
	}
	return nil
}
