package nodes

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/amld/amld/api"
)

const sampleInspection = `os=Linux
arch=x86_64
kernel=6.1.0-18-amd64
distro=Debian GNU/Linux 12 (bookworm)
cpus=8
mem_kb=32780000
uid=1001
home=/home/u
disk_free_kb=52428800
systemd=yes
sudo=no
docker=Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?
gpu=0, GPU-8f0e6a1c-1111-2222-3333-444455556666, NVIDIA A100-SXM4-80GB, 81920, 535.104.05
gpu=1, GPU-9f0e6a1c-1111-2222-3333-444455556666, NVIDIA A100-SXM4-80GB, 81920, 535.104.05
`

func findingOf(fs []api.Finding, check string) api.Finding {
	for _, f := range fs {
		if f.Check == check {
			return f
		}
	}
	return api.Finding{}
}

func TestInspectionFindings(t *testing.T) {
	in := parseInspection([]byte(sampleInspection))
	in.Findings = findings(in, "linux", "amd64", "amld cluster c-1 host dsvm")
	f := in.Facts
	if f.OS != "linux" || f.Arch != "amd64" || f.CPUs != 8 || f.MemoryMB != 32011 || f.Root || f.Sudo || !f.Systemd || len(f.GPUs) != 2 {
		t.Fatalf("facts %+v", f)
	}
	if g := f.GPUs[1]; g.Index != 1 || g.Model != "NVIDIA A100-SXM4-80GB" || g.MemoryMB != 81920 || g.Driver != "535.104.05" {
		t.Fatalf("gpu %+v", g)
	}
	if in.Failed() {
		t.Fatalf("failed: %+v", in.Findings)
	}
	for check, status := range map[string]string{"os": "ok", "cpu": "ok", "memory": "ok", "disk": "ok", "docker": "warn", "gpus": "ok", "init": "info"} {
		if got := findingOf(in.Findings, check); got.Status != status {
			t.Errorf("%s: %+v, want %s", check, got, status)
		}
	}
	if f.Docker != "" {
		t.Errorf("an engine that does not answer counts as docker %q", f.Docker)
	}
	if AgentModeFor(f) != api.AgentProcess {
		t.Error("no root and no sudo: want a supervised process")
	}
	f.Sudo = true
	if AgentModeFor(f) != api.AgentSystemd {
		t.Error("systemd and sudo: want a unit")
	}
}

func TestInspectionRefusesWhatTheAgentCannotRunOn(t *testing.T) {
	for name, tc := range map[string]struct{ out, marker, check, detail string }{
		"arm machine":     {"os=Linux\narch=aarch64\ncpus=2\nmem_kb=4000000\n", "", "os", "this head's amld binary is linux/amd64"},
		"not linux":       {"os=Darwin\narch=x86_64\ncpus=2\nmem_kb=4000000\n", "", "os", "the agent runs on linux only"},
		"foreign ~/.amld": {"os=Linux\narch=x86_64\ncpus=2\nmem_kb=4000000\nhome=/h\nmanaged_by=<foreign>\n", "m", "install", "was not made by amld"},
		"other cluster":   {"os=Linux\narch=x86_64\ncpus=2\nmem_kb=4000000\nmanaged_by=amld cluster c-9 host x\n", "amld cluster c-1 host y", "install", "managed by another amld"},
	} {
		t.Run(name, func(t *testing.T) {
			in := parseInspection([]byte(tc.out))
			in.Findings = findings(in, "linux", "amd64", tc.marker)
			if !in.Failed() {
				t.Fatalf("not refused: %+v", in.Findings)
			}
			if f := findingOf(in.Findings, tc.check); f.Status != api.FindingFail || !strings.Contains(f.Detail, tc.detail) {
				t.Fatalf("%s: %+v", tc.check, f)
			}
		})
	}
	in := parseInspection([]byte("os=Linux\narch=x86_64\ncpus=2\nmem_kb=4000000\nmanaged_by=amld cluster c-1 host y\n"))
	in.Findings = findings(in, "linux", "amd64", "amld cluster c-1 host y")
	if in.Failed() {
		t.Fatalf("our own leftover refused: %+v", in.Findings)
	}
}

// TestInspectScriptOnThisMachine runs the attach checks' script with this
// machine's sh and checks that what it reports parses: on a machine with
// nvidia-smi (a GPU box), every GPU comes out with its UUID and memory.
func TestInspectScriptOnThisMachine(t *testing.T) {
	cmd := exec.Command("sh", "-s")
	cmd.Stdin = strings.NewReader(inspectScript)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("inspect script: %v", err)
	}
	in := parseInspection(out)
	in.Findings = findings(in, "linux", in.Facts.Arch, "m")
	for _, f := range in.Findings {
		t.Logf("%-5s %-7s %s", f.Status, f.Check, f.Detail)
	}
	f := in.Facts
	if f.OS != "linux" || f.CPUs < 1 || f.MemoryMB <= 0 || f.Home == "" {
		t.Fatalf("facts %+v", f)
	}
	if _, err := exec.LookPath("nvidia-smi"); err == nil {
		if len(f.GPUs) == 0 {
			t.Fatalf("nvidia-smi is here but no GPU was parsed from:\n%s", out)
		}
		for _, g := range f.GPUs {
			if !strings.HasPrefix(g.UUID, "GPU-") || g.MemoryMB <= 0 || g.Model == "" || g.Driver == "" {
				t.Fatalf("GPU %+v", g)
			}
		}
	}
}

// TestParseRealNvidiaSmiLine parses the line the check's nvidia-smi query
// printed on an H200 machine (driver 580), captured 2026-11-27.
func TestParseRealNvidiaSmiLine(t *testing.T) {
	const line = "0, GPU-715eefc2-5e87-e5ba-29e9-cc036c71fa1f, NVIDIA H200, 143771, 580.159.04"
	in := parseInspection([]byte("os=Linux\narch=x86_64\ncpus=16\nmem_kb=131000000\ngpu=" + line + "\n"))
	in.Findings = findings(in, "linux", "amd64", "")
	if len(in.Facts.GPUs) != 1 {
		t.Fatalf("gpus %+v", in.Facts.GPUs)
	}
	g := in.Facts.GPUs[0]
	if g.Index != 0 || g.UUID != "GPU-715eefc2-5e87-e5ba-29e9-cc036c71fa1f" || g.Model != "NVIDIA H200" || g.MemoryMB != 143771 || g.Driver != "580.159.04" {
		t.Fatalf("gpu %+v", g)
	}
	if f := findingOf(in.Findings, "gpus"); f.Status != api.FindingOK || !strings.Contains(f.Detail, "NVIDIA H200 143771 MiB") {
		t.Fatalf("finding %+v", f)
	}
}
