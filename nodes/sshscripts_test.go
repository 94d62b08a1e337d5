package nodes

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runLocal runs one of the ssh provider's scripts with this machine's sh,
// as sshd would run it for the user: HOME is a temporary directory, and
// fakebin (fake systemctl, sudo) comes first on PATH.
func runLocal(t *testing.T, home, fakebin, script string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("sh", append([]string{"-s", "--"}, args...)...)
	cmd.Stdin = strings.NewReader(script)
	cmd.Env = []string{"HOME=" + home, "PATH=" + fakebin + ":" + os.Getenv("PATH"), "AMLD_SYSTEMD_DIR=" + filepath.Join(home, "units")}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func scriptHome(t *testing.T) (home, fakebin string) {
	t.Helper()
	home, fakebin = t.TempDir(), t.TempDir()
	for _, d := range []string{".amld/bin", "units"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The agent: records its environment and argv, then waits for SIGTERM.
	agent := "#!/bin/sh\necho \"$AML_DATA_DIR\" > \"$HOME/agent.env\"\necho \"$@\" > \"$HOME/agent.args\"\nexec sleep 300\n"
	if err := os.WriteFile(filepath.Join(home, ".amld/bin/amld"), []byte(agent), 0o755); err != nil {
		t.Fatal(err)
	}
	// systemctl and sudo: record their calls.
	fake := "#!/bin/sh\necho \"$(basename \"$0\") $*\" >> \"$HOME/calls\"\n[ \"$(basename \"$0\")\" = sudo ] && shift && exec \"$@\"\nexit 0\n"
	for _, n := range []string{"systemctl", "sudo"} {
		if err := os.WriteFile(filepath.Join(fakebin, n), []byte(fake), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return home, fakebin
}

func writeToken(t *testing.T, home, node string) {
	t.Helper()
	dir := filepath.Join(home, ".amld/nodes", node)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "join.token"), []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "target"), []byte("dsvm\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSupervisedAgentStartsListsAndStops(t *testing.T) {
	home, fakebin := scriptHome(t)
	writeToken(t, home, "n-1")
	out, err := runLocal(t, home, fakebin, startScript, "process", "n-1", "ci-alice", "--head", "http://h:7070", "--target", "dsvm")
	if err != nil || !strings.Contains(out, "process group") {
		t.Fatalf("start: %v\n%s", err, out)
	}
	var args string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(filepath.Join(home, "agent.args")); err == nil && len(b) > 0 {
			args = string(b)
			break
		}
	}
	if !strings.Contains(args, "agent --node-id n-1 --join-token-file "+home+"/.amld/nodes/n-1/join.token --work-dir "+home+"/.amld/keep/ci-alice/work --head http://h:7070") {
		t.Fatalf("agent args %q", args)
	}
	if env, _ := os.ReadFile(filepath.Join(home, "agent.env")); strings.TrimSpace(string(env)) != home+"/.amld/keep/ci-alice/data" {
		t.Fatalf("AML_DATA_DIR %q", env)
	}
	// Starting again does not start a second agent.
	if out, err := runLocal(t, home, fakebin, startScript, "process", "n-1", "ci-alice"); err != nil || !strings.Contains(out, "already running") {
		t.Fatalf("second start: %v %s", err, out)
	}
	if out, err := runLocal(t, home, fakebin, listScript); err != nil || strings.TrimSpace(out) != "n-1 dsvm" {
		t.Fatalf("list: %v %q", err, out)
	}
	pid, _ := os.ReadFile(filepath.Join(home, ".amld/nodes/n-1/pid"))
	if out, err := runLocal(t, home, fakebin, stopFunc+`mode="$1"; stop_node "$2"`, "process", "n-1"); err != nil {
		t.Fatalf("stop: %v %s", err, out)
	}
	if out, _ := runLocal(t, home, fakebin, groupFunc+`group_alive "$1" && echo alive || echo gone`, strings.TrimSpace(string(pid))); strings.TrimSpace(out) != "gone" {
		t.Fatalf("the agent's process group is %s", out)
	}
	if _, err := os.Stat(filepath.Join(home, ".amld/nodes/n-1")); !os.IsNotExist(err) {
		t.Fatalf("node dir left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, ".amld/keep/ci-alice/data")); err != nil {
		t.Fatalf("the kept dir went with the node: %v", err)
	}
	if out, err := runLocal(t, home, fakebin, listScript); err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("list after stop: %v %q", err, out)
	}
}

func TestSystemdAgentGetsAUnitAndLosesIt(t *testing.T) {
	home, fakebin := scriptHome(t)
	writeToken(t, home, "n-2")
	out, err := runLocal(t, home, fakebin, startScript, "systemd", "n-2", "", "--head", "http://h:7070")
	if err != nil || !strings.Contains(out, "systemd unit amld-agent-n-2.service") {
		t.Fatalf("start: %v\n%s", err, out)
	}
	unit, err := os.ReadFile(filepath.Join(home, "units", "amld-agent-n-2.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`ExecStart= "` + home + `/.amld/bin/amld" "agent" "--node-id" "n-2" "--join-token-file" "` + home + `/.amld/nodes/n-2/join.token" "--work-dir" "` + home + `/.amld/nodes/n-2/work" "--head" "http://h:7070"`,
		`Environment="AML_DATA_DIR=` + home + `/.amld/nodes/n-2/data"`,
		"Restart=on-failure", "KillMode=mixed", "WantedBy=multi-user.target",
	} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	calls, _ := os.ReadFile(filepath.Join(home, "calls"))
	if !strings.Contains(string(calls), "systemctl enable --now amld-agent-n-2.service") {
		t.Fatalf("calls:\n%s", calls)
	}
	if out, err := runLocal(t, home, fakebin, stopFunc+`mode="$1"; stop_node "$2"`, "systemd", "n-2"); err != nil {
		t.Fatalf("stop: %v %s", err, out)
	}
	calls, _ = os.ReadFile(filepath.Join(home, "calls"))
	if !strings.Contains(string(calls), "systemctl disable --now amld-agent-n-2.service") {
		t.Fatalf("calls:\n%s", calls)
	}
	if _, err := os.Stat(filepath.Join(home, "units", "amld-agent-n-2.service")); !os.IsNotExist(err) {
		t.Fatalf("unit left: %v", err)
	}
}

func TestUninstallRefusesADirectoryItDidNotMake(t *testing.T) {
	home, fakebin := scriptHome(t)
	script := stopFunc + `mode=process` + "\n" + uninstallScript
	if out, err := runLocal(t, home, fakebin, script, "amld cluster c-1"); err == nil || !strings.Contains(out, "not made by this amld cluster") {
		t.Fatalf("uninstall without a marker: %v %s", err, out)
	}
	if err := os.WriteFile(filepath.Join(home, ".amld/MANAGED-BY"), []byte("amld cluster c-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeToken(t, home, "n-3")
	if out, err := runLocal(t, home, fakebin, startScript, "process", "n-3", ""); err != nil {
		t.Fatalf("start: %v %s", err, out)
	}
	if out, err := runLocal(t, home, fakebin, script, "amld cluster c-1"); err != nil {
		t.Fatalf("uninstall: %v %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(home, ".amld")); !os.IsNotExist(err) {
		t.Fatalf("~/.amld left: %v", err)
	}
}

func TestOwnerKeyIsGrantedAndRevokedWithTheNode(t *testing.T) {
	home, fakebin := scriptHome(t)
	writeToken(t, home, "n-4")
	keys := filepath.Join(home, ".ssh", "authorized_keys")
	if err := os.MkdirAll(filepath.Dir(keys), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keys, []byte("ssh-ed25519 AAAAattach attach-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	line := "ssh-ed25519 AAAAowner " + accessTag("n-4")
	for range 2 { // twice: added once
		if out, err := runLocal(t, home, fakebin, grantScript, line, accessTag("n-4")); err != nil {
			t.Fatalf("grant: %v %s", err, out)
		}
	}
	if b, _ := os.ReadFile(keys); string(b) != "ssh-ed25519 AAAAattach attach-key\n"+line+"\n" {
		t.Fatalf("authorized_keys:\n%s", b)
	}
	if out, err := runLocal(t, home, fakebin, stopFunc+`mode="$1"; stop_node "$2"`, "process", "n-4"); err != nil {
		t.Fatalf("stop: %v %s", err, out)
	}
	if b, _ := os.ReadFile(keys); string(b) != "ssh-ed25519 AAAAattach attach-key\n" {
		t.Fatalf("authorized_keys after stop:\n%s", b)
	}
}
