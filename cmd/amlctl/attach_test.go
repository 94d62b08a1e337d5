package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/amld/amld/api"
)

func keyFile(t *testing.T, passphrase string) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var blk *pem.Block
	if passphrase == "" {
		blk, err = ssh.MarshalPrivateKey(priv, "")
	} else {
		blk, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "id_ed25519", string(pem.EncodeToMemory(blk)))
}

// noTerminal makes the prompts behave as without a terminal, or answer.
func fakePrompts(t *testing.T, secret string, confirm bool) {
	t.Helper()
	oldS, oldC := askSecret, askConfirm
	t.Cleanup(func() { askSecret, askConfirm = oldS, oldC })
	askSecret = func(string) (string, error) {
		if secret == "" {
			return "", errNoTerminal
		}
		return secret, nil
	}
	askConfirm = func(string) (bool, error) {
		if secret == "" {
			return false, errNoTerminal
		}
		return confirm, nil
	}
}

var attachResult = &api.AttachResult{
	Host: &api.Host{Name: "dsvm", Kind: api.HostPool, Address: "10.0.0.5", SSHPort: 22, Username: "u", Auth: "key+passphrase",
		HostKeyFingerprint: "SHA256:abc"},
	Findings: []api.Finding{{Check: "os", Status: "ok", Detail: "Debian"}, {Check: "docker", Status: "info", Detail: "not installed"}},
}

func TestAttachReadsSecretsFromFilesAndPrompts(t *testing.T) {
	f := newFakeHead(t)
	f.handle("POST /v1/hosts", attachResult)
	f.handle("GET /v1/ssh-host-key", &api.HostKeyInfo{Address: "10.0.0.5:22", Type: "ssh-ed25519", Fingerprint: "SHA256:abc"})
	locked := keyFile(t, "open sesame")
	pp := writeFile(t, "pp", "open sesame\n")

	fakePrompts(t, "", false)
	res := f.runCLI(t.Context(), "compute", "attach", "host", "--name", "dsvm", "--address", "10.0.0.5", "--username", "u",
		"--private-key-file", locked, "--private-key-passphrase-file", pp, "--host-key-fingerprint", "SHA256:abc")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	var sent api.AttachRequest
	if err := json.Unmarshal(f.body("POST /v1/hosts"), &sent); err != nil {
		t.Fatal(err)
	}
	if sent.PrivateKeyPassphrase != "open sesame" || !strings.Contains(sent.PrivateKey, "PRIVATE KEY") || sent.Kind != api.HostPool || sent.SSHPort != 22 {
		t.Fatalf("sent %+v", sent)
	}
	if strings.Contains(res.stdout+res.stderr, "open sesame") || strings.Contains(res.stdout+res.stderr, "PRIVATE KEY") {
		t.Fatal("a secret was printed")
	}
	for _, want := range []string{"ok", "os", "Debian", "Added dsvm to the ssh pool"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, res.stdout)
		}
	}

	// An encrypted key without a passphrase file: asked for on a terminal...
	fakePrompts(t, "open sesame", true)
	if res := f.runCLI(t.Context(), "compute", "attach", "host", "--name", "dsvm", "--address", "10.0.0.5", "--username", "u",
		"--private-key-file", locked, "--accept-host-key"); res.code != 0 {
		t.Fatalf("with a prompt: exit %d: %s", res.code, res.stderr)
	}
	// ... and refused without one.
	fakePrompts(t, "", false)
	res = f.runCLI(t.Context(), "compute", "attach", "host", "--name", "dsvm", "--address", "10.0.0.5", "--username", "u",
		"--private-key-file", locked, "--accept-host-key")
	if res.code != 2 || !strings.Contains(res.stderr, "give --private-key-passphrase-file") {
		t.Fatalf("no passphrase: exit %d: %s", res.code, res.stderr)
	}
	// A wrong passphrase is caught before anything is sent.
	bad := writeFile(t, "bad", "nope\n")
	res = f.runCLI(t.Context(), "compute", "attach", "host", "--name", "dsvm", "--address", "10.0.0.5", "--username", "u",
		"--private-key-file", locked, "--private-key-passphrase-file", bad, "--accept-host-key")
	if res.code != 2 || !strings.Contains(res.stderr, "does not open the key") {
		t.Fatalf("wrong passphrase: exit %d: %s", res.code, res.stderr)
	}
	// Secrets are never flag values.
	res = f.runCLI(t.Context(), "compute", "attach", "host", "--name", "dsvm", "--address", "10.0.0.5", "--username", "u", "--password", "x")
	if res.code != 2 {
		t.Fatalf("--password accepted: exit %d", res.code)
	}
	// Neither a key nor a password, and no terminal.
	res = f.runCLI(t.Context(), "compute", "attach", "host", "--name", "dsvm", "--address", "10.0.0.5", "--username", "u")
	if res.code != 2 || !strings.Contains(res.stderr, "never taken from flag values") {
		t.Fatalf("no secret: exit %d: %s", res.code, res.stderr)
	}
}

func TestAttachWithoutAFingerprintShowsItAndAsks(t *testing.T) {
	f := newFakeHead(t)
	f.handle("POST /v1/hosts", attachResult)
	f.handle("GET /v1/ssh-host-key", &api.HostKeyInfo{Address: "10.0.0.5:22", Type: "ssh-ed25519", Fingerprint: "SHA256:abc"})
	pw := writeFile(t, "pw", "hunter2\n")
	args := []string{"compute", "attach", "host", "--name", "dsvm", "--address", "10.0.0.5", "--username", "u", "--password-file", pw}

	fakePrompts(t, "", false) // no terminal: refuse
	res := f.runCLI(t.Context(), args...)
	if res.code != 1 || !strings.Contains(res.stderr, "SHA256:abc (ssh-ed25519)") || !strings.Contains(res.stderr, "--host-key-fingerprint SHA256:abc") {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if f.body("POST /v1/hosts") != nil {
		t.Fatal("attached without a confirmed host key")
	}
	fakePrompts(t, "x", false) // answered no
	if res := f.runCLI(t.Context(), args...); res.code != 1 || f.body("POST /v1/hosts") != nil {
		t.Fatalf("answered no: exit %d %s", res.code, res.stderr)
	}
	fakePrompts(t, "x", true) // answered yes: the shown fingerprint is pinned
	if res := f.runCLI(t.Context(), args...); res.code != 0 {
		t.Fatalf("answered yes: exit %d %s", res.code, res.stderr)
	}
	var sent api.AttachRequest
	if err := json.Unmarshal(f.body("POST /v1/hosts"), &sent); err != nil {
		t.Fatal(err)
	}
	if sent.HostKeyFingerprint != "SHA256:abc" || sent.AcceptHostKey || sent.Password != "hunter2" {
		t.Fatalf("sent %+v", sent)
	}
}

func TestCreateInstanceAndExecCluster(t *testing.T) {
	f := newFakeHead(t)
	f.handle("POST /v1/targets", &api.Target{TargetSpec: api.TargetSpec{Name: "ci-alice", Type: "instance"}, ProvisioningState: "Succeeded"})
	res := f.runCLI(t.Context(), "compute", "create", "instance", "--name", "ci-alice", "--vm-size", "cpu-4", "--idle-seconds-before-shutdown", "3600")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	var got api.TargetSpec
	if err := json.Unmarshal(f.body("POST /v1/targets"), &got); err != nil {
		t.Fatal(err)
	}
	if got.Type != api.KindInstance || got.VMSize != "cpu-4" || got.IdleSecondsBeforeShutdown == nil || *got.IdleSecondsBeforeShutdown != 3600 || got.MaxNodes != 0 {
		t.Fatalf("sent %+v", got)
	}
	if res := f.runCLI(t.Context(), "compute", "create", "instance", "--name", "ci-alice", "--vm-size", "cpu-4", "--max-nodes", "2"); res.code != 2 {
		t.Fatalf("instance of 2 nodes: exit %d", res.code)
	}
	res = f.runCLI(t.Context(), "compute", "create", "cluster", "--name", "cloud", "--provider", "exec", "--vm-size", "gpu-1",
		"--max-nodes", "8", "--create-command", "/etc/amld/create-node.sh", "--delete-command", "/etc/amld/delete-node.sh")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if err := json.Unmarshal(f.body("POST /v1/targets"), &got); err != nil {
		t.Fatal(err)
	}
	if got.CreateCommand != "/etc/amld/create-node.sh" || got.DeleteCommand != "/etc/amld/delete-node.sh" || got.Provider != "exec" {
		t.Fatalf("sent %+v", got)
	}
}

func TestPowerCommands(t *testing.T) {
	f := newFakeHead(t)
	f.handle("GET /v1/targets/{name}/nodes", []*api.NodeView{})
	for _, action := range []string{"start", "stop", "restart"} {
		f.handle("POST /v1/targets/{name}/"+action, &api.Target{TargetSpec: api.TargetSpec{Name: "ci-alice"}, State: "Stopping"})
		res := f.runCLI(t.Context(), "compute", action, "ci-alice")
		if res.code != 0 || !strings.Contains(res.stdout, "ci-alice") || f.body("POST /v1/targets/ci-alice/"+action) == nil {
			t.Fatalf("%s: exit %d: %s%s", action, res.code, res.stdout, res.stderr)
		}
	}
}
