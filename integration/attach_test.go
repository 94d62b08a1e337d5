package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// attachArgs are amlctl's arguments to attach the test machine as name.
func (d *sshd) attachArgs(kind, name string, extra ...string) []string {
	return append([]string{"compute", "attach", kind, "--name", name, "--address", "127.0.0.1",
		"--ssh-port", strconv.Itoa(d.port), "--username", d.user, "--timeout", "90s"}, extra...)
}

// agentGone checks that nothing of amld is left on the machine: no process
// of the test user, no ~/.amld.
func (d *sshd) agentGone() (bool, string) {
	if ps := d.userProcesses(); len(ps) > 0 {
		return false, fmt.Sprintf("the test user still runs %v", ps)
	}
	if _, err := os.Stat(filepath.Join(d.home, ".amld")); !os.IsNotExist(err) {
		return false, "~/.amld is still there"
	}
	if keys := readFile(d.t, filepath.Join(d.home, ".ssh", "authorized_keys")); keys != d.authorizedKeys {
		return false, "authorized_keys changed:\n" + keys
	}
	return true, ""
}

// detach runs `compute detach` and checks the machine is as it was.
func detach(t *testing.T, h *head, d *sshd, name string) {
	t.Helper()
	out, errOut, code := h.ctl("compute", "detach", name, "--timeout", "90s")
	if code != 0 || !strings.Contains(out, "Detached "+name) {
		t.Fatalf("detach %s: exit %d\n%s%s\nhead:\n%s", name, code, out, errOut, tail(h.out.String(), 40))
	}
	waitFor(t, 30*time.Second, "no agent left on the machine", d.agentGone)
	if _, err := h.client().GetTarget(ctx(t), name); !api.IsNotFound(err) {
		t.Fatalf("target %s after detach: %v", name, err)
	}
}

// TestAttachRemoteMachineOverSSH attaches a real OpenSSH machine by key, by
// key with passphrase and by password, refuses a wrong host key and a
// second attachment of the same machine, runs a job on it, and leaves no
// agent behind after detach.
func TestAttachRemoteMachineOverSSH(t *testing.T) {
	h := startHead(t)
	d := startSSHD(t)
	c := h.client()

	// A wrong host key is refused before any secret is sent.
	_, errOut, code := h.ctl(d.attachArgs("remote", "dsvm", "--private-key-file", d.keyFile, "--host-key-fingerprint", d.otherFingerprint)...)
	if code == 0 || !strings.Contains(errOut, "does not match") || !strings.Contains(errOut, d.fingerprint) {
		t.Fatalf("wrong host key: exit %d: %s", code, errOut)
	}
	// Without a fingerprint (and no terminal to ask on) it shows the key and refuses.
	_, errOut, code = h.ctl(d.attachArgs("remote", "dsvm", "--password-file", d.passwordFile)...)
	if code == 0 || !strings.Contains(errOut, "--host-key-fingerprint "+d.fingerprint) {
		t.Fatalf("unconfirmed host key: exit %d: %s", code, errOut)
	}
	if n := d.logins(); n != 0 {
		t.Fatalf("%d logins reached sshd before the host key was confirmed:\n%s", n, d.out.String())
	}
	if hs, err := c.ListHosts(ctx(t)); err != nil || len(hs) != 0 {
		t.Fatalf("hosts after refusals: %v %v", hs, err)
	}

	// By key, with the fingerprint.
	out, errOut, code := h.ctl(d.attachArgs("remote", "dsvm", "--private-key-file", d.keyFile, "--host-key-fingerprint", d.fingerprint)...)
	if code != 0 {
		t.Fatalf("attach by key: exit %d\n%s%s\nhead:\n%s", code, out, errOut, tail(h.out.String(), 40))
	}
	for _, want := range []string{d.fingerprint + ", as given", "ok    os", "cpu", "memory", "docker", "gpus", "init", "install",
		"Attached dsvm (remote target", "auth key", "is idle: dsvm is ready"} {
		if !strings.Contains(out, want) {
			t.Errorf("attach output lacks %q:\n%s", want, out)
		}
	}
	hs, err := c.GetHost(ctx(t), "dsvm")
	if err != nil || hs.Auth != api.AuthKey || hs.HostKeyFingerprint != d.fingerprint || hs.AgentMode != api.AgentProcess || hs.Facts.CPUs < 1 {
		t.Fatalf("host %+v %v", hs, err)
	}
	// Secrets are never shown.
	showOut, _, _ := h.ctl("-o", "json", "compute", "list-hosts")
	secretKey := readFile(t, d.keyFile)
	for _, secret := range []string{strings.TrimSpace(secretKey), strings.TrimSpace(readFile(t, d.passwordFile))} {
		if strings.Contains(showOut, secret) || strings.Contains(h.out.String(), secret) {
			t.Fatalf("a secret shows in list-hosts or the head's log")
		}
	}

	// A run completes on the attached machine, as the SSH user.
	r, err := c.SubmitRun(ctx(t), api.RunSpec{Target: "dsvm", Command: []string{"sh", "-c", "echo ran as $(id -un) in $HOME; test -d \"$AML_DATA_DIR\""}})
	if err != nil {
		t.Fatal(err)
	}
	done := waitTerminal(t, c, 60*time.Second, []string{r.ID})[r.ID]
	if done.State != api.RunCompleted {
		t.Fatalf("run on dsvm: %s %s", done.State, done.Reason)
	}
	if log := fullLog(t, c, r.ID, 1); !strings.Contains(log, "ran as "+d.user+" in "+d.home) {
		t.Fatalf("run log %q", log)
	}
	ns, err := c.ListNodes(ctx(t), "dsvm")
	if err != nil || len(ns) != 1 || ns[0].Host != "dsvm" || done.Attempts[0].Allocations[0].NodeID != ns[0].ID {
		t.Fatalf("nodes of dsvm %+v (%v); run on %+v", ns, err, done.Attempts[0].Allocations)
	}

	// The same machine under another name is refused, naming the first.
	_, errOut, code = h.ctl(d.attachArgs("remote", "other", "--password-file", d.passwordFile, "--accept-host-key")...)
	if code == 0 || !strings.Contains(errOut, "already attached as dsvm") {
		t.Fatalf("second attachment: exit %d: %s", code, errOut)
	}

	detach(t, h, d, "dsvm")

	// By password, trusting the offered key.
	out, errOut, code = h.ctl(d.attachArgs("remote", "dsvm-pw", "--password-file", d.passwordFile, "--accept-host-key")...)
	if code != 0 || !strings.Contains(out, "accepted as offered") || !strings.Contains(out, "auth password") || !strings.Contains(out, "is ready") {
		t.Fatalf("attach by password: exit %d\n%s%s\nhead:\n%s", code, out, errOut, tail(h.out.String(), 40))
	}
	detach(t, h, d, "dsvm-pw")

	// By key with a passphrase; this time the remote target is deleted,
	// which detaches it too.
	out, errOut, code = h.ctl(d.attachArgs("remote", "dsvm-pp", "--private-key-file", d.lockedKeyFile,
		"--private-key-passphrase-file", d.passphraseFile, "--host-key-fingerprint", d.fingerprint)...)
	if code != 0 || !strings.Contains(out, "auth key+passphrase") || !strings.Contains(out, "is ready") {
		t.Fatalf("attach by key with passphrase: exit %d\n%s%s", code, out, errOut)
	}
	// Stop and start: the agent goes and comes back.
	if _, errOut, code := h.ctl("compute", "stop", "dsvm-pp", "--wait"); code != 0 {
		t.Fatalf("stop: %s", errOut)
	}
	if ps := d.userProcesses(); len(ps) != 0 {
		t.Fatalf("stopped, yet the user runs %v", ps)
	}
	if _, errOut, code := h.ctl("compute", "start", "dsvm-pp", "--wait"); code != 0 {
		t.Fatalf("start: %s", errOut)
	}
	if _, errOut, code := h.ctl("compute", "delete", "dsvm-pp"); code != 0 {
		t.Fatalf("delete: %s", errOut)
	}
	waitFor(t, 60*time.Second, "dsvm-pp detached", func() (bool, string) {
		_, err := c.GetHost(context.Background(), "dsvm-pp")
		return api.IsNotFound(err), fmt.Sprint(err)
	})
	waitFor(t, 30*time.Second, "no agent left on the machine", d.agentGone)

	// The machine joins the ssh pool, and a cluster of the ssh provider
	// runs a job on it, then scales back to zero.
	out, errOut, code = h.ctl(d.attachArgs("host", "pool-1", "--private-key-file", d.keyFile, "--host-key-fingerprint", d.fingerprint)...)
	if code != 0 || !strings.Contains(out, "Added pool-1 to the ssh pool") {
		t.Fatalf("attach host: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code := h.ctl("compute", "create", "cluster", "--name", "sshpool", "--provider", "ssh", "--vm-size", "cpu-1",
		"--max-nodes", "1", "--idle-seconds-before-scaledown", "1"); code != 0 {
		t.Fatalf("create ssh cluster: %s", errOut)
	}
	r, err = c.SubmitRun(ctx(t), api.RunSpec{Target: "sshpool", Command: []string{"sh", "-c", "id -un"}})
	if err != nil {
		t.Fatal(err)
	}
	done = waitTerminal(t, c, 60*time.Second, []string{r.ID})[r.ID]
	if done.State != api.RunCompleted || !strings.Contains(fullLog(t, c, r.ID, 1), d.user) {
		t.Fatalf("run on the pool: %s %s", done.State, done.Reason)
	}
	waitFor(t, 60*time.Second, "the ssh cluster back to zero nodes", func() (bool, string) {
		ns, err := c.ListNodes(context.Background(), "sshpool")
		return err == nil && len(ns) == 0 && len(d.userProcesses()) == 0, fmt.Sprintf("%d nodes, %v", len(ns), d.userProcesses())
	})
	// An instance of the ssh provider holds the pool host; stop and start
	// keep its data dir on the machine; deleting it removes the dir.
	alice, aliceTok := newUser(t, h, "alice")
	if err := d.sshLogin(d.ownerKeyFile); err == nil {
		t.Fatal("the owner's key logs in before the instance exists")
	}
	if _, errOut, code := h.ctlAs(aliceTok, "compute", "create", "instance", "--name", "ci-ssh", "--provider", "ssh", "--vm-size", "cpu-1",
		"--ssh-public-access", "--ssh-public-key-file", d.ownerKeyFile+".pub"); code != 0 {
		t.Fatalf("create ssh instance: %s", errOut)
	}
	if hs, err := c.GetHost(ctx(t), "pool-1"); err != nil || hs.HeldBy != "ci-ssh" {
		t.Fatalf("pool-1 %+v %v", hs, err)
	}
	ids := submitAll(t, alice, api.RunSpec{Target: "ci-ssh", Command: []string{"sh", "-c", `echo kept > "$AML_DATA_DIR/note"`}})
	if r := waitTerminal(t, alice, 60*time.Second, ids)[ids[0]]; r.State != api.RunCompleted {
		t.Fatalf("write run: %s %s", r.State, r.Reason)
	}
	// While it runs, alice logs in with her key; stopped, she cannot.
	if err := d.sshLogin(d.ownerKeyFile); err != nil {
		t.Fatalf("the owner cannot log in to the running instance: %v", err)
	}
	for _, action := range []string{"stop", "start"} {
		if _, errOut, code := h.ctlAs(aliceTok, "compute", action, "ci-ssh", "--wait"); code != 0 {
			t.Fatalf("%s: %s", action, errOut)
		}
		if action == "stop" {
			if err := d.sshLogin(d.ownerKeyFile); err == nil {
				t.Fatal("the owner logs in to the stopped instance")
			}
		}
	}
	ids = submitAll(t, alice, api.RunSpec{Target: "ci-ssh", Command: []string{"sh", "-c", `cat "$AML_DATA_DIR/note"`}})
	if r := waitTerminal(t, alice, 60*time.Second, ids)[ids[0]]; r.State != api.RunCompleted || !strings.Contains(fullLog(t, alice, ids[0], 1), "kept") {
		t.Fatalf("read run: %s %s", r.State, r.Reason)
	}
	if _, errOut, code := h.ctlAs(aliceTok, "compute", "delete", "ci-ssh"); code != 0 {
		t.Fatalf("delete instance: %s", errOut)
	}
	waitFor(t, 60*time.Second, "the instance and its kept dir gone", func() (bool, string) {
		_, err := c.GetTarget(context.Background(), "ci-ssh")
		_, serr := os.Stat(filepath.Join(d.home, ".amld", "keep", "ci-ssh"))
		return api.IsNotFound(err) && os.IsNotExist(serr), fmt.Sprint(err, serr)
	})
	detach(t, h, d, "pool-1")
}
