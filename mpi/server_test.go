package mpi

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// rsh runs the rsh client with cfg and returns its exit status, stdout and
// stderr.
func rsh(t *testing.T, cfg RshConfig, args ...string) (int, string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rsh.json")
	if err := WriteRshConfig(path, cfg); err != nil {
		t.Fatal(err)
	}
	env := func(k string) string {
		if k == EnvRshConfig {
			return path
		}
		return ""
	}
	var stdout, stderr bytes.Buffer
	code := RshMain(args, env, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestExecRunsTheRunsCommandThroughAShell(t *testing.T) {
	n := startNode(t, "n-a")
	k, id := runKey(t, t.TempDir())
	ex := &shExec{dir: t.TempDir()}
	revoke, err := n.srv.Allow(Grant{RunID: "run-a", Attempt: 1, Key: mustKey(t, k.Public), Exec: ex.exec})
	if err != nil {
		t.Fatal(err)
	}
	defer revoke()
	// mpirun's words carry quotes and ';': the far side must use a shell.
	code, out, errOut := rsh(t, configFor("run-a", id, n), "-x", "-o", "BatchMode=yes", "n-a",
		`echo "a;b"`, ";", "pwd", ";", "echo", "oops", ">&2", ";", "exit", "7")
	if code != 7 {
		t.Fatalf("exit status %d, want 7; stderr %q", code, errOut)
	}
	if want := "a;b\n" + ex.dir + "\n"; out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
	if errOut != "oops\n" {
		t.Errorf("stderr %q, want %q", errOut, "oops\n")
	}
}

func TestServerRefusesAnUnknownKey(t *testing.T) {
	n := startNode(t, "n-a")
	k, _ := runKey(t, t.TempDir())
	_, stranger := runKey(t, t.TempDir())
	ex := &shExec{dir: t.TempDir()}
	revoke, _ := n.srv.Allow(Grant{RunID: "run-a", Key: mustKey(t, k.Public), Exec: ex.exec})
	defer revoke()

	code, _, errOut := rsh(t, configFor("run-a", stranger, n), "n-a", "echo", "in")
	if code != 255 || !strings.Contains(errOut, "unable to authenticate") {
		t.Errorf("unknown key: exit %d, stderr %q; want 255 and an authentication failure", code, errOut)
	}
	if strings.Contains(errOut, LostMarker) {
		t.Errorf("a refused key must not read as a lost node: %q", errOut)
	}
	if got := ex.commands(); len(got) != 0 {
		t.Errorf("commands run for an unknown key: %q", got)
	}
}

func TestServerRefusesRunAKeyAskingForRunB(t *testing.T) {
	n := startNode(t, "n-a")
	ka, ida := runKey(t, t.TempDir())
	kb, _ := runKey(t, t.TempDir())
	exA, exB := &shExec{dir: t.TempDir()}, &shExec{dir: t.TempDir()}
	ra, _ := n.srv.Allow(Grant{RunID: "run-a", Key: mustKey(t, ka.Public), Exec: exA.exec})
	defer ra()
	rb, _ := n.srv.Allow(Grant{RunID: "run-b", Key: mustKey(t, kb.Public), Exec: exB.exec})
	defer rb()

	code, _, errOut := rsh(t, configFor("run-b", ida, n), "n-a", "echo", "in")
	if code != 255 || !strings.Contains(errOut, "unable to authenticate") {
		t.Errorf("run A's key for run B: exit %d, stderr %q; want a refusal", code, errOut)
	}
	if got := exB.commands(); len(got) != 0 {
		t.Errorf("run B ran %q for run A's key", got)
	}
	if code, out, errOut := rsh(t, configFor("run-a", ida, n), "n-a", "echo", "in"); code != 0 || out != "in\n" {
		t.Errorf("run A's key for run A: exit %d, %q %q; want it accepted", code, out, errOut)
	}
}

func TestServerRefusesRequestsAfterTheRunEnded(t *testing.T) {
	n := startNode(t, "n-a")
	k, id := runKey(t, t.TempDir())
	ex := &shExec{dir: t.TempDir()}
	revoke, _ := n.srv.Allow(Grant{RunID: "run-a", Key: mustKey(t, k.Public), Exec: ex.exec})
	cfg := configFor("run-a", id, n)
	client, err := cfg.Dial(context.Background(), "n-a")
	if err != nil {
		t.Fatalf("dial while the run is live: %v", err)
	}
	defer client.Close()

	revoke()
	if sess, err := client.NewSession(); err == nil {
		err = sess.Run("echo late")
		t.Errorf("a session on a connection made before the run ended ran: %v", err)
	}
	if code, _, errOut := rsh(t, cfg, "n-a", "echo", "late"); code != 255 || !strings.Contains(errOut, "unable to authenticate") {
		t.Errorf("after the run ended: exit %d, stderr %q; want a refusal", code, errOut)
	}
	if got := ex.commands(); len(got) != 0 {
		t.Errorf("commands run after the run ended: %q", got)
	}
}

func TestRevokeKillsTheRunsCommands(t *testing.T) {
	n := startNode(t, "n-a")
	k, id := runKey(t, t.TempDir())
	ex := &shExec{dir: t.TempDir()}
	revoke, _ := n.srv.Allow(Grant{RunID: "run-a", Key: mustKey(t, k.Public), Exec: ex.exec})
	client, err := configFor("run-a", id, n).Dial(context.Background(), "n-a")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	pidOut, _ := sess.StdoutPipe()
	if err := sess.Start("echo $$; exec sleep 60"); err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmtFscan(pidOut, &pid); err != nil {
		t.Fatal(err)
	}
	revoke() // returns once the command is gone
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the command (pid %d) outlived the revoked grant: kill 0 = %v", pid, err)
	}
	if err := sess.Wait(); err == nil {
		t.Errorf("the killed command's session ended with success")
	}
}

func TestClosingTheChannelKillsTheCommand(t *testing.T) {
	n := startNode(t, "n-a")
	k, id := runKey(t, t.TempDir())
	ex := &shExec{dir: t.TempDir()}
	revoke, _ := n.srv.Allow(Grant{RunID: "run-a", Key: mustKey(t, k.Public), Exec: ex.exec})
	defer revoke()
	client, err := configFor("run-a", id, n).Dial(context.Background(), "n-a")
	if err != nil {
		t.Fatal(err)
	}
	sess, _ := client.NewSession()
	pidOut, _ := sess.StdoutPipe()
	if err := sess.Start("echo $$; exec sleep 60"); err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmtFscan(pidOut, &pid); err != nil {
		t.Fatal(err)
	}
	client.Close() // the connection drops: sshd would SIGHUP the command; we kill it
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the command (pid %d) outlived its closed channel", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServerRefusesShellsAndPtys(t *testing.T) {
	n := startNode(t, "n-a")
	k, id := runKey(t, t.TempDir())
	ex := &shExec{dir: t.TempDir()}
	revoke, _ := n.srv.Allow(Grant{RunID: "run-a", Key: mustKey(t, k.Public), Exec: ex.exec})
	defer revoke()
	client, err := configFor("run-a", id, n).Dial(context.Background(), "n-a")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sess, _ := client.NewSession()
	if err := sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err == nil {
		t.Errorf("pty request accepted")
	}
	if err := sess.Shell(); err == nil {
		t.Errorf("shell request accepted")
	}
	if _, err := client.Dial("tcp", "127.0.0.1:1"); err == nil {
		t.Errorf("port forwarding accepted")
	}
}

func TestClientRefusesAWrongHostKey(t *testing.T) {
	a, b := startNode(t, "n-a"), startNode(t, "n-b")
	k, id := runKey(t, t.TempDir())
	ex := &shExec{dir: t.TempDir()}
	revoke, _ := a.srv.Allow(Grant{RunID: "run-a", Key: mustKey(t, k.Public), Exec: ex.exec})
	defer revoke()
	cfg := configFor("run-a", id, a)
	cfg.Hosts[0].HostKey = b.srv.HostKey() // pinned: someone else's key

	code, _, errOut := rsh(t, cfg, "n-a", "echo", "in")
	if code != 255 || !strings.Contains(errOut, "host key mismatch") {
		t.Errorf("wrong host key: exit %d, stderr %q; want 255 and a host key mismatch", code, errOut)
	}
	if got := ex.commands(); len(got) != 0 {
		t.Errorf("the client ran %q on a host with the wrong key", got)
	}
}

func TestUnreachableNodeIsReportedLost(t *testing.T) {
	a := startNode(t, "n-a")
	_, id := runKey(t, t.TempDir())
	cfg := configFor("run-a", id, a)
	cfg.Hosts[0].Addr = closedAddr(t)
	code, _, errOut := rsh(t, cfg, "n-a", "true")
	if code != 255 || !strings.HasPrefix(errOut, LostMarker+"n-a:") {
		t.Fatalf("unreachable node: exit %d, stderr %q; want 255 and the lost marker", code, errOut)
	}
	f, ok := ParseFailure([]byte("ORTE was unable to reliably start one or more daemons.\n"+errOut), Layout{})
	if !ok || !f.Lost || f.Node != "n-a" {
		t.Errorf("ParseFailure = %+v, %v; want node n-a lost", f, ok)
	}
}

func TestHostKeyIsMadeOnceAndKeptPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "ssh_host_ed25519_key")
	k1, err := LoadOrCreateHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("host key file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	k2, err := LoadOrCreateHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if AuthorizedKey(k1.PublicKey()) != AuthorizedKey(k2.PublicKey()) {
		t.Errorf("the host key changed between loads")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateHostKey(path); err == nil {
		t.Errorf("a host key readable by others was accepted")
	}
}
