package server

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/amld/amld/api"
	"github.com/amld/amld/raftstore"
)

func testKeyPEM(t testing.TB, passphrase string) string {
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
	return string(pem.EncodeToMemory(blk))
}

func TestValidateAttach(t *testing.T) {
	key, locked := testKeyPEM(t, ""), testKeyPEM(t, "pp")
	good := func() api.AttachRequest {
		return api.AttachRequest{Name: "dsvm", Address: "10.0.0.5", Username: "azureuser", PrivateKey: key}
	}
	fp := "SHA256:" + strings.Repeat("x", 43)
	for _, tc := range []struct {
		name  string
		edit  func(*api.AttachRequest)
		field string
	}{
		{"defaults", func(*api.AttachRequest) {}, ""},
		{"password", func(r *api.AttachRequest) { r.PrivateKey, r.Password = "", "pw" }, ""},
		{"key with passphrase", func(r *api.AttachRequest) { r.PrivateKey, r.PrivateKeyPassphrase = locked, "pp" }, ""},
		{"fingerprint", func(r *api.AttachRequest) { r.HostKeyFingerprint = fp }, ""},
		{"bad name", func(r *api.AttachRequest) { r.Name = "Bad_Name" }, "name"},
		{"bad kind", func(r *api.AttachRequest) { r.Kind = "vm" }, "kind"},
		{"no address", func(r *api.AttachRequest) { r.Address = "" }, "address"},
		{"user@ in address", func(r *api.AttachRequest) { r.Address = "u@host" }, "address"},
		{"bad port", func(r *api.AttachRequest) { r.SSHPort = 70000 }, "ssh_port"},
		{"no user", func(r *api.AttachRequest) { r.Username = "" }, "username"},
		{"no secret", func(r *api.AttachRequest) { r.PrivateKey = "" }, "private_key"},
		{"both secrets", func(r *api.AttachRequest) { r.Password = "pw" }, "password"},
		{"passphrase without key", func(r *api.AttachRequest) { r.PrivateKey, r.Password, r.PrivateKeyPassphrase = "", "pw", "pp" }, "private_key_passphrase"},
		{"encrypted key without passphrase", func(r *api.AttachRequest) { r.PrivateKey = locked }, "private_key_passphrase"},
		{"wrong passphrase", func(r *api.AttachRequest) { r.PrivateKey, r.PrivateKeyPassphrase = locked, "no" }, "private_key"},
		{"not a key", func(r *api.AttachRequest) { r.PrivateKey = "hello" }, "private_key"},
		{"md5 fingerprint", func(r *api.AttachRequest) { r.HostKeyFingerprint = "MD5:aa:bb" }, "host_key_fingerprint"},
		{"vm size on a pool host", func(r *api.AttachRequest) { r.Kind, r.VMSize = api.HostPool, "cpu-2" }, "vm_size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := good()
			tc.edit(&r)
			err := validateAttach(&r)
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				if r.Kind != api.HostRemote && r.Kind != api.HostPool || r.SSHPort != 22 {
					t.Fatalf("defaults not filled: %+v", r)
				}
				return
			}
			e, ok := err.(*api.Error)
			if !ok || e.Field != tc.field || e.Status != 400 {
				t.Fatalf("error %v, want a 400 naming %s", err, tc.field)
			}
			for _, secret := range []string{key, locked, "pw", "pp"} {
				if strings.Contains(e.Message, secret) && len(secret) > 2 {
					t.Fatalf("error shows a secret: %q", e.Message)
				}
			}
		})
	}
}

func TestValidateInstanceAndExecSpecs(t *testing.T) {
	sizes := testSizes(t)
	providers := []string{"exec", "local", "ssh"}
	script := filepath.Join(t.TempDir(), "create.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	notExec := filepath.Join(t.TempDir(), "data.txt")
	if err := os.WriteFile(notExec, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	one, minus := 1, -1
	signer, err := ssh.ParsePrivateKey([]byte(testKeyPEM(t, "")))
	if err != nil {
		t.Fatal(err)
	}
	pub := string(ssh.MarshalAuthorizedKey(signer.PublicKey()))
	for _, tc := range []struct {
		name  string
		spec  api.TargetSpec
		field string
	}{
		{"instance", api.TargetSpec{Name: "ci-alice", Type: api.KindInstance, VMSize: "cpu-2"}, ""},
		{"instance with idle shutdown", api.TargetSpec{Name: "ci-alice", Type: api.KindInstance, VMSize: "cpu-2", IdleSecondsBeforeShutdown: &one}, ""},
		{"instance of two nodes", api.TargetSpec{Name: "ci-alice", Type: api.KindInstance, VMSize: "cpu-2", MaxNodes: 2}, "max_nodes"},
		{"instance without size", api.TargetSpec{Name: "ci-alice", Type: api.KindInstance}, "vm_size"},
		{"instance scaledown", api.TargetSpec{Name: "ci-alice", Type: api.KindInstance, VMSize: "cpu-2", IdleSecondsBeforeScaledown: &one}, "idle_seconds_before_scaledown"},
		{"negative idle shutdown", api.TargetSpec{Name: "ci-alice", Type: api.KindInstance, VMSize: "cpu-2", IdleSecondsBeforeShutdown: &minus}, "idle_seconds_before_shutdown"},
		{"cluster idle shutdown", api.TargetSpec{Name: "c1x", VMSize: "cpu-2", MaxNodes: 2, IdleSecondsBeforeShutdown: &one}, "idle_seconds_before_shutdown"},
		{"remote is attached", api.TargetSpec{Name: "dsvm", Type: api.KindRemote, VMSize: "cpu-2"}, "type"},
		{"exec", api.TargetSpec{Name: "cloud", VMSize: "cpu-2", MaxNodes: 2, Provider: "exec", CreateCommand: script, DeleteCommand: script}, ""},
		{"exec without delete", api.TargetSpec{Name: "cloud", VMSize: "cpu-2", MaxNodes: 2, Provider: "exec", CreateCommand: script}, "delete_command"},
		{"exec relative", api.TargetSpec{Name: "cloud", VMSize: "cpu-2", MaxNodes: 2, Provider: "exec", CreateCommand: "create.sh", DeleteCommand: script}, "create_command"},
		{"exec not executable", api.TargetSpec{Name: "cloud", VMSize: "cpu-2", MaxNodes: 2, Provider: "exec", CreateCommand: script, DeleteCommand: script, ListCommand: notExec}, "list_command"},
		{"scripts without exec", api.TargetSpec{Name: "cloud", VMSize: "cpu-2", MaxNodes: 2, Provider: "local", CreateCommand: script}, "create_command"},
		{"public access", api.TargetSpec{Name: "ci-bob", Type: api.KindInstance, VMSize: "cpu-2", Provider: "ssh", SSHPublicAccess: true, SSHPublicKey: pub}, ""},
		{"public access on a local instance", api.TargetSpec{Name: "ci-bob", Type: api.KindInstance, VMSize: "cpu-2", SSHPublicAccess: true, SSHPublicKey: pub}, "ssh_public_access"},
		{"public access on a cluster", api.TargetSpec{Name: "cloud", VMSize: "cpu-2", MaxNodes: 2, Provider: "ssh", SSHPublicAccess: true, SSHPublicKey: pub}, "ssh_public_access"},
		{"public access without a key", api.TargetSpec{Name: "ci-bob", Type: api.KindInstance, VMSize: "cpu-2", Provider: "ssh", SSHPublicAccess: true}, "ssh_public_key"},
		{"public access with a private key", api.TargetSpec{Name: "ci-bob", Type: api.KindInstance, VMSize: "cpu-2", Provider: "ssh", SSHPublicAccess: true, SSHPublicKey: testKeyPEM(t, "")}, "ssh_public_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := validateTargetSpec(tc.spec, sizes, providers, "local")
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got.Type == api.KindInstance && (got.MinNodes != 1 || got.MaxNodes != 1 || got.Provider == "") {
					t.Fatalf("instance defaults: %+v", got)
				}
				return
			}
			if e, ok := err.(*api.Error); !ok || e.Field != tc.field {
				t.Fatalf("error %v, want one naming %s", err, tc.field)
			}
		})
	}
}

func TestFreePoolHostSkipsUsedAndHeldHosts(t *testing.T) {
	f := raftstore.NewFSM(nil)
	idx := uint64(0)
	apply := func(mt raftstore.MsgType, req any) {
		t.Helper()
		idx++
		if err := f.ApplyCommand(idx, mt, req); err != nil {
			t.Fatal(err)
		}
	}
	for i, name := range []string{"p1", "p2", "p3"} {
		apply(raftstore.MsgHostAttach, &raftstore.HostAttachRequest{Host: &raftstore.Host{Host: api.Host{Name: name, Kind: api.HostPool,
			HostKeyFingerprint: "SHA256:" + name + string(rune('a'+i))}, Sealed: []byte("x")}})
	}
	apply(raftstore.MsgTargetCreate, &raftstore.TargetCreateRequest{Target: &api.Target{TargetSpec: api.TargetSpec{Name: "ci", Type: api.KindInstance, Provider: "ssh"}, Host: "p1"}})
	apply(raftstore.MsgTargetCreate, &raftstore.TargetCreateRequest{Target: &api.Target{TargetSpec: api.TargetSpec{Name: "c", Type: api.KindCluster, MaxNodes: 2, Provider: "ssh"}}})
	apply(raftstore.MsgNodeCreate, &raftstore.NodeCreateRequest{Node: &api.Node{ID: "n-1", Target: "c", Host: "p2"}})
	if h, err := freePoolHost(f.State(), "c"); err != nil || h != "p3" {
		t.Fatalf("free host %q %v", h, err)
	}
	if h, err := freePoolHost(f.State(), "ci"); err != nil || h != "p1" {
		t.Fatalf("the instance's own host: %q %v", h, err)
	}
	apply(raftstore.MsgNodeCreate, &raftstore.NodeCreateRequest{Node: &api.Node{ID: "n-2", Target: "c", Host: "p3"}})
	if _, err := freePoolHost(f.State(), "c"); err == nil || !strings.Contains(err.Error(), "3 attached, all in use") {
		t.Fatalf("full pool: %v", err)
	}
}

func TestVisibility(t *testing.T) {
	alice := identity{kind: raftstore.CredUser, name: "alice", role: api.RoleUser}
	bob := identity{kind: raftstore.CredUser, name: "bob", role: api.RoleUser}
	admin := identity{kind: raftstore.CredUser, name: "admin", role: api.RoleAdmin}
	inst := &api.Target{TargetSpec: api.TargetSpec{Name: "ci", Type: api.KindInstance}, Owner: "alice"}
	clus := &api.Target{TargetSpec: api.TargetSpec{Name: "c", Type: api.KindCluster}, Owner: "alice"}
	if !canSee(alice, inst) || canSee(bob, inst) || !canSee(admin, inst) || !canSee(bob, clus) {
		t.Fatal("target visibility")
	}
	run := &api.Run{Owner: "alice", Private: true}
	if !canSeeRun(alice, run) || canSeeRun(bob, run) || !canSeeRun(admin, run) || !canSeeRun(bob, &api.Run{Owner: "alice"}) {
		t.Fatal("run visibility")
	}
	if canManage(bob, clus) || !canManage(admin, clus) || !canManage(alice, clus) {
		t.Fatal("manage")
	}
}
