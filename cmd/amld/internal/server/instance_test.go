package server

import (
	"bytes"
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// waitProv waits until the fake provider made and deleted as many nodes.
func waitProv(t *testing.T, ts *testServer, created, deleted int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ts.prov.mu.Lock()
		c, d := len(ts.prov.created), len(ts.prov.deleted)
		ts.prov.mu.Unlock()
		if c == created && d == deleted {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("provider made %d and deleted %d nodes; want %d and %d", c, d, created, deleted)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestInstanceIsItsOwnersAndStopsAndStarts(t *testing.T) {
	ts := startTestServer(t)
	ctx := context.Background()
	mk := func(name string) *api.Client {
		u, err := ts.client.CreateUser(ctx, name, api.RoleUser)
		if err != nil {
			t.Fatal(err)
		}
		return ts.client.WithToken(u.Token)
	}
	alice, bob := mk("alice"), mk("bob")
	if _, err := alice.CreateTarget(ctx, api.TargetSpec{Name: "ci-alice", Type: api.KindInstance, VMSize: "cpu-2"}); err != nil {
		t.Fatal(err)
	}
	waitProv(t, ts, 1, 0)
	ts.prov.mu.Lock()
	spec := ts.prov.created[0]
	ts.prov.mu.Unlock()
	if spec.KeepName != "ci-alice" || spec.Target != "ci-alice" {
		t.Fatalf("node spec %+v", spec)
	}
	if tg, err := alice.GetTarget(ctx, "ci-alice"); err != nil || tg.State != api.TargetStarting || tg.Owner != "alice" || tg.MaxNodes != 1 {
		t.Fatalf("instance %+v %v", tg, err)
	}
	if ts, err := bob.ListTargets(ctx); err != nil || len(ts) != 0 {
		t.Fatalf("bob lists %v %v", ts, err)
	}
	for _, err := range []error{
		func() error { _, err := bob.GetTarget(ctx, "ci-alice"); return err }(),
		func() error { _, err := bob.ListNodes(ctx, "ci-alice"); return err }(),
		func() error {
			_, err := bob.SubmitRun(ctx, api.RunSpec{Target: "ci-alice", Command: []string{"true"}})
			return err
		}(),
		func() error { _, err := bob.PowerTarget(ctx, "ci-alice", api.PowerStop); return err }(),
		bob.DeleteTarget(ctx, "ci-alice"),
	} {
		if !api.IsNotFound(err) {
			t.Fatalf("bob reached alice's instance: %v", err)
		}
	}
	r, err := alice.SubmitRun(ctx, api.RunSpec{Target: "ci-alice", Command: []string{"true"}, Resources: &api.Resources{CPUs: 1}})
	if err != nil || !r.Private {
		t.Fatalf("alice's run %+v %v", r, err)
	}
	if _, _, err := bob.GetRun(ctx, r.ID, api.Wait{}); !api.IsNotFound(err) {
		t.Fatalf("bob reads alice's run: %v", err)
	}
	if _, err := bob.CancelRun(ctx, r.ID); !api.IsNotFound(err) {
		t.Fatalf("bob cancels alice's run: %v", err)
	}

	// Stop removes the node; start makes a new one.
	tg, err := alice.PowerTarget(ctx, "ci-alice", api.PowerStop)
	if err != nil || !tg.Stopped || tg.StopReason != "stopped by alice" {
		t.Fatalf("stop %+v %v", tg, err)
	}
	waitProv(t, ts, 1, 1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _, _ := alice.GetRun(ctx, r.ID, api.Wait{})
		tg, _ := alice.GetTarget(ctx, "ci-alice")
		if got.Reason == "target ci-alice is stopped: amlctl compute start ci-alice" && tg.State == api.TargetStopped {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run reason %q, target state %s", got.Reason, tg.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := alice.PowerTarget(ctx, "ci-alice", api.PowerStart); err != nil {
		t.Fatal(err)
	}
	waitProv(t, ts, 2, 1)
	// Clusters are not started or stopped.
	if _, err := ts.client.CreateTarget(ctx, api.TargetSpec{Name: "cpu", VMSize: "cpu-2", MaxNodes: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.client.PowerTarget(ctx, "cpu", api.PowerStop); api.StatusOf(err) != 409 {
		t.Fatalf("stop of a cluster: %v", err)
	}
}

func TestExecTargetsAreForAdmins(t *testing.T) {
	ts := startTestServer(t)
	ctx := context.Background()
	u, err := ts.client.CreateUser(ctx, "bob", api.RoleUser)
	if err != nil {
		t.Fatal(err)
	}
	spec := api.TargetSpec{Name: "cloud", VMSize: "cpu-2", MaxNodes: 1, Provider: "exec", CreateCommand: "/bin/true", DeleteCommand: "/bin/true"}
	if _, err := ts.client.WithToken(u.Token).CreateTarget(ctx, spec); api.StatusOf(err) != 403 {
		t.Fatalf("bob made an exec cluster: %v", err)
	}
	if _, err := ts.client.CreateTarget(ctx, spec); err != nil {
		t.Fatalf("admin: %v", err)
	}
	if _, err := ts.client.WithToken(u.Token).Attach(ctx, api.AttachRequest{Name: "pool-1", Kind: api.HostPool, Address: "127.0.0.1", Username: "u", Password: "pw"}); api.StatusOf(err) != 403 {
		t.Fatalf("bob added a pool host: %v", err)
	}
}

// FuzzDecodeAttachRequest feeds arbitrary bodies through the attach decoder
// and validator: an error is a 4xx, never a panic.
func FuzzDecodeAttachRequest(f *testing.F) {
	f.Add([]byte(`{"name":"dsvm","address":"10.0.0.5","ssh_port":22,"username":"u","password":"pw","accept_host_key":true}`))
	f.Add([]byte(`{"name":"dsvm","address":"h","username":"u","private_key":"-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n-----END OPENSSH PRIVATE KEY-----\n","host_key_fingerprint":"SHA256:abc"}`))
	f.Add([]byte(`{"name":"p1","kind":"pool","address":"h","username":"u","password":"x","vm_size":"cpu-2"}`))
	f.Add([]byte(`{"ssh_port":"22"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/v1/hosts", bytes.NewReader(body))
		var req api.AttachRequest
		if err := decodeBody(r, &req); err != nil {
			if api.StatusOf(err) >= 500 {
				t.Fatalf("decode error is a 5xx: %v", err)
			}
			return
		}
		if err := validateAttach(&req); err != nil {
			if api.StatusOf(err) != 400 {
				t.Fatalf("validation error is not a 400: %v", err)
			}
			return
		}
		if !validName(req.Name) || req.SSHPort < 1 || req.SSHPort > 65535 || (req.PrivateKey == "") == (req.Password == "") {
			t.Fatalf("accepted %+v", req)
		}
	})
}
