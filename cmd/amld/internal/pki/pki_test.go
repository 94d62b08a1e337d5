package pki

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSealedTextOpensOnlyWithItsKeyAndPurpose(t *testing.T) {
	k, other := GenerateKey(), GenerateKey()
	sealed := k.Seal(PurposeJoinToken, []byte("join_secret"))
	if strings.Contains(string(sealed), "join_secret") {
		t.Fatal("the sealed text holds the plain text")
	}
	got, err := k.Open(PurposeJoinToken, sealed)
	if err != nil || string(got) != "join_secret" {
		t.Fatalf("open: %q %v", got, err)
	}
	cases := map[string]func() error{
		"another key":     func() error { _, err := other.Open(PurposeJoinToken, sealed); return err },
		"another purpose": func() error { _, err := k.Open(PurposeCAKey, sealed); return err },
		"a changed byte": func() error {
			b := append([]byte(nil), sealed...)
			b[len(b)-1] ^= 1
			_, err := k.Open(PurposeJoinToken, b)
			return err
		},
		"too short": func() error { _, err := k.Open(PurposeJoinToken, sealed[:5]); return err },
	}
	for name, f := range cases {
		if err := f(); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: got %v, want ErrOpen", name, err)
		}
	}
}

func TestKeyFileRoundTripsAndMustBePrivate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cluster.key")
	k := GenerateKey()
	if err := WriteKeyFile(path, k); err != nil {
		t.Fatal(err)
	}
	got, err := ReadKeyFile(path)
	if err != nil || got != k {
		t.Fatalf("read back: %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKeyFile(path); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Errorf("a world-readable key file: got %v", err)
	}
	if _, err := ParseKeyText([]byte("c2hvcnQ=")); err == nil {
		t.Error("a short key was accepted")
	}
}

// headPair makes a CA and a head certificate of it.
func headPair(t *testing.T, id string) (*CA, tls.Certificate) {
	t.Helper()
	ca, _, err := NewCA("c-test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca, issue(t, ca, id)
}

func issue(t *testing.T, ca *CA, id string) tls.Certificate {
	t.Helper()
	key, keyPEM, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.IssueHead(&key.PublicKey, id, []string{"10.0.0.1", "head1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// handshake runs a TLS handshake over loopback TCP and exchanges a byte,
// so that a refusal by either side shows.
func handshake(server, client *tls.Config) error {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		return err
	}
	defer ln.Close()
	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 1)
		if _, err := c.Read(b); err != nil {
			errc <- err
			return
		}
		_, err = c.Write(b)
		errc <- err
	}()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), client)
	if err != nil {
		<-errc
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte{1}); err != nil {
		return err
	}
	if _, err := c.Read(make([]byte, 1)); err != nil {
		return err
	}
	return <-errc
}

func TestPeerTLSAcceptsOnlyHeadsOfTheSameCA(t *testing.T) {
	ca, h1 := headPair(t, "h1")
	h2 := issue(t, ca, "h2")
	other, stranger := headPair(t, "h9")
	_ = other
	srv, err := PeerTLS(ca.CertPEM, h1)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := PeerTLS(ca.CertPEM, h2)
	if err := handshake(srv, good); err != nil {
		t.Fatalf("two heads of one CA: %v", err)
	}
	bad, _ := PeerTLS(ca.CertPEM, stranger)
	if err := handshake(srv, bad); err == nil {
		t.Error("a head of another CA was accepted")
	}
	// A certificate of the right CA that is not a head's.
	key, _, _ := NewKey()
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "user"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(nil, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err == nil {
		notHead := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
		nh, _ := PeerTLS(ca.CertPEM, notHead)
		if err := handshake(srv, nh); err == nil {
			t.Error("a non-head certificate of the CA was accepted")
		}
	}
	// Clients verify the head's name against its SANs.
	cl, err := ClientTLS(ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	cl.ServerName = "10.0.0.1"
	if err := handshake(&tls.Config{Certificates: []tls.Certificate{h1}}, cl); err != nil {
		t.Errorf("a client with the CA, dialing a name in the SANs: %v", err)
	}
	cl.ServerName = "elsewhere.example"
	if err := handshake(&tls.Config{Certificates: []tls.Certificate{h1}}, cl); err == nil {
		t.Error("a client accepted a head certificate for another name")
	}
}
