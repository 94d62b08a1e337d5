package raftstore

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

func TestHeadAndSecretsCommandsCheckTheirFields(t *testing.T) {
	h := newHarness(t)
	now := h.tick()
	cases := []struct {
		name  string
		t     MsgType
		req   any
		field string
	}{
		{"head without id", MsgHeadUpsert, &HeadUpsertRequest{Head: Head{APIAddr: "https://a:1", RaftAddr: "a:2"}}, "id"},
		{"head without api", MsgHeadUpsert, &HeadUpsertRequest{Head: Head{ID: "h1", RaftAddr: "a:2"}}, "api_addr"},
		{"head without raft", MsgHeadUpsert, &HeadUpsertRequest{Head: Head{ID: "h1", APIAddr: "https://a:1"}}, "raft_addr"},
		{"secrets without CA", MsgSecretsPut, &SecretsPutRequest{Secrets: Secrets{SealedCAKey: []byte{1}, SealedJoinToken: []byte{1}}}, "ca_cert_pem"},
		{"secrets without key", MsgSecretsPut, &SecretsPutRequest{Secrets: Secrets{CACertPEM: "x", SealedJoinToken: []byte{1}}}, "sealed_ca_key"},
		{"secrets without token", MsgSecretsPut, &SecretsPutRequest{Secrets: Secrets{CACertPEM: "x", SealedCAKey: []byte{1}}}, "sealed_join_token"},
	}
	for _, c := range cases {
		err := h.apply(c.t, c.req)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Field != c.field {
			t.Errorf("%s: got %v, want an error naming %s", c.name, err, c.field)
		}
	}
	if len(h.st().Heads()) != 0 || h.st().Secrets() != nil {
		t.Fatal("a refused command changed the state")
	}
	h.must(MsgHeadUpsert, &HeadUpsertRequest{Head: Head{ID: "h1", APIAddr: "https://a:1", RaftAddr: "a:2", Since: now}})
	h.must(MsgHeadUpsert, &HeadUpsertRequest{Head: Head{ID: "h2", APIAddr: "https://b:1", RaftAddr: "b:2", Since: now}})
	h.must(MsgHeadUpsert, &HeadUpsertRequest{Head: Head{ID: "h1", APIAddr: "https://a2:1", RaftAddr: "a2:2", Since: now}})
	if got := h.st().Head("h1"); got == nil || got.APIAddr != "https://a2:1" {
		t.Fatalf("h1 after a second upsert: %+v", got)
	}
	h.must(MsgHeadRemove, &HeadRemoveRequest{ID: "h2"})
	h.must(MsgHeadRemove, &HeadRemoveRequest{ID: "h-unknown"})
	if hs := h.st().Heads(); len(hs) != 1 || hs[0].ID != "h1" {
		t.Fatalf("heads: %+v", hs)
	}
	h.must(MsgSecretsPut, &SecretsPutRequest{Secrets: Secrets{CACertPEM: "pem", SealedCAKey: []byte{1}, SealedJoinToken: []byte{2}}})
	if s := h.st().Secrets(); s == nil || s.CACertPEM != "pem" {
		t.Fatalf("secrets: %+v", s)
	}
}

// testPeerTLS makes, for each ID, a TLS config with a certificate of one
// throwaway CA that accepts any peer of that CA.
func testPeerTLS(t testing.TB, ids ...string) map[string]*tls.Config {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	out := map[string]*tls.Config{}
	for i, id := range ids {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: id},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		out[id] = &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
			RootCAs:      pool, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
			ServerName: "127.0.0.1",
		}
	}
	return out
}

// TestTLSTransportReplicatesToVotersAddedLater: three servers whose
// transports speak TLS; the first bootstraps, adds the others as voters,
// and a command it applies reaches every FSM; a snapshot of the leader
// reads back into the same state.
func TestTLSTransportReplicatesToVotersAddedLater(t *testing.T) {
	tc := testPeerTLS(t, "s1", "s2", "s3")
	var stores []*Store
	for i, id := range []string{"s1", "s2", "s3"} {
		cfg := testConfig(t, t.TempDir(), freeAddr(t))
		cfg.ID = id
		cfg.Bootstrap = i == 0
		cfg.TLS = tc[id]
		// Three servers on a loaded machine under -race: the defaults, not
		// the single-server test's 50 ms.
		d := DefaultConfig()
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = d.HeartbeatTimeout, d.ElectionTimeout, d.LeaderLeaseTimeout
		if i == 0 {
			stores = append(stores, openLeader(t, cfg))
			continue
		}
		s, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	leader := stores[0]
	for _, s := range stores[1:] {
		if err := leader.AddVoter(ctx, s.ID(), s.RaftAddr()); err != nil {
			t.Fatal(err)
		}
	}
	idx, err := leader.Apply(ctx, MsgHeadUpsert, &HeadUpsertRequest{Head: Head{ID: "s1", APIAddr: "https://127.0.0.1:1", RaftAddr: leader.RaftAddr()}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stores {
		st := s.WaitForIndex(ctx, idx-1)
		if st.Head("s1") == nil {
			t.Fatalf("%s did not get the entry over TLS", s.ID())
		}
	}
	ms, err := stores[2].Members(ctx)
	if err != nil || len(ms) != 3 {
		t.Fatalf("members seen by a follower: %+v %v", ms, err)
	}
	if h := stores[1].Health(); h.State != "Follower" || h.AppliedIndex < idx {
		t.Errorf("a follower's health: %+v", h)
	}
	var buf bytes.Buffer
	if err := leader.SaveSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	if err := leader.RestoreSnapshot(ctx, bytes.NewReader([]byte("not a snapshot\n"))); err == nil {
		t.Error("a malformed snapshot was restored")
	}
	if err := leader.RestoreSnapshot(ctx, &buf); err != nil {
		t.Fatalf("restore: %v", err)
	}
	for _, s := range stores {
		waitUntil(t, func() bool { return s.State().Head("s1") != nil && s.Health().Restores >= 1 })
	}
	if err := leader.RemoveServer(ctx, "s3"); err != nil {
		t.Fatal(err)
	}
	if ms, _ := leader.Members(ctx); len(ms) != 2 {
		t.Fatalf("members after removing s3: %+v", ms)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
