package nodes

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// testSSHServer is an in-process SSH server (x/crypto/ssh) that accepts one
// public key or one password and answers every exec request with "ok".
type testSSHServer struct {
	addr     string
	hostKey  ssh.PublicKey
	authSeen atomic.Int32 // authentication attempts, of any method
	ln       net.Listener
	wg       sync.WaitGroup
}

func newTestSSHServer(t *testing.T, clientKey ssh.PublicKey, password string) *testSSHServer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	s := &testSSHServer{hostKey: signer.PublicKey()}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			s.authSeen.Add(1)
			if clientKey != nil && string(k.Marshal()) == string(clientKey.Marshal()) {
				return &ssh.Permissions{}, nil
			}
			return nil, errors.New("no")
		},
		PasswordCallback: func(_ ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			s.authSeen.Add(1)
			if password != "" && string(pw) == password {
				return &ssh.Permissions{}, nil
			}
			return nil, errors.New("no")
		},
	}
	cfg.AddHostKey(signer)
	s.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = s.ln.Addr().String()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c, cfg)
			}()
		}
	}()
	t.Cleanup(func() {
		s.ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *testSSHServer) serve(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		for r := range creqs {
			if r.Type != "exec" {
				_ = r.Reply(false, nil)
				continue
			}
			_ = r.Reply(true, nil)
			_, _ = ch.Write([]byte("ok\n"))
			status := make([]byte, 4)
			binary.BigEndian.PutUint32(status, 0)
			_, _ = ch.SendRequest("exit-status", false, status)
			ch.Close()
			break
		}
	}
}

func clientKey(t *testing.T, passphrase string) ([]byte, ssh.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var blk *pem.Block
	if passphrase == "" {
		blk, err = ssh.MarshalPrivateKey(priv, "test")
	} else {
		blk, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "test", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(blk), sp
}

func hostFor(s *testSSHServer, pinned ssh.PublicKey, auth SSHAuth) *SSHHost {
	host, port, _ := net.SplitHostPort(s.addr)
	p := 0
	for _, c := range port {
		p = p*10 + int(c-'0')
	}
	return &SSHHost{Name: "h1", Address: host, Port: p, User: "u", HostKey: string(ssh.MarshalAuthorizedKey(pinned)), Auth: auth}
}

func TestDialSSHLogsInWithKeyPassphraseOrPassword(t *testing.T) {
	plain, plainPub := clientKey(t, "")
	locked, lockedPub := clientKey(t, "open sesame")
	for _, tc := range []struct {
		name   string
		server ssh.PublicKey
		pw     string
		auth   SSHAuth
		method string
	}{
		{"key", plainPub, "", SSHAuth{PrivateKey: plain}, "key"},
		{"key with passphrase", lockedPub, "", SSHAuth{PrivateKey: locked, Passphrase: []byte("open sesame")}, "key+passphrase"},
		{"password", nil, "hunter2", SSHAuth{Password: "hunter2"}, "password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestSSHServer(t, tc.server, tc.pw)
			if tc.auth.Method() != tc.method {
				t.Fatalf("method %q", tc.auth.Method())
			}
			c, err := DialSSH(context.Background(), hostFor(s, s.hostKey, tc.auth), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			out, err := runRemote(context.Background(), c, "true", nil)
			if err != nil || string(out) != "ok\n" {
				t.Fatalf("exec: %q %v", out, err)
			}
		})
	}
}

func TestDialSSHRefusesAnotherHostKeyBeforeSendingSecrets(t *testing.T) {
	s := newTestSSHServer(t, nil, "hunter2")
	other, _ := clientKey(t, "")
	otherSigner, err := ssh.ParsePrivateKey(other)
	if err != nil {
		t.Fatal(err)
	}
	_, err = DialSSH(context.Background(), hostFor(s, otherSigner.PublicKey(), SSHAuth{Password: "hunter2"}), 5*time.Second)
	if !errors.Is(err, ErrHostKeyMismatch) {
		t.Fatalf("error %v", err)
	}
	if !strings.Contains(err.Error(), Fingerprint(s.hostKey)) || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %q", err)
	}
	if n := s.authSeen.Load(); n != 0 {
		t.Fatalf("%d authentication attempts reached a machine with the wrong host key", n)
	}
}

func TestDialSSHNeedsThePassphrase(t *testing.T) {
	s := newTestSSHServer(t, nil, "")
	locked, _ := clientKey(t, "pp")
	_, err := DialSSH(context.Background(), hostFor(s, s.hostKey, SSHAuth{PrivateKey: locked}), 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "no passphrase was given") {
		t.Fatalf("error %v", err)
	}
	if s.authSeen.Load() != 0 {
		t.Fatal("tried to log in")
	}
}

func TestProbeHostKeysSendsNoSecret(t *testing.T) {
	s := newTestSSHServer(t, nil, "pw")
	keys, err := ProbeHostKeys(context.Background(), s.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || Fingerprint(keys[0]) != Fingerprint(s.hostKey) {
		t.Fatalf("keys %v", keys)
	}
	if s.authSeen.Load() != 0 {
		t.Fatal("the probe tried to log in")
	}
	if _, err := ProbeHostKeys(context.Background(), "127.0.0.1:1", time.Second); err == nil {
		t.Fatal("probe of a closed port succeeded")
	}
}

func TestNormalizeFingerprint(t *testing.T) {
	good := "SHA256:" + strings.Repeat("A", 43)
	for in, want := range map[string]string{good: good, " " + good + "= ": good} {
		if got, err := NormalizeFingerprint(in); err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "MD5:aa:bb", "SHA256:short", "SHA256:" + strings.Repeat("!", 43)} {
		if _, err := NormalizeFingerprint(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSSHAuthNeverPrintsSecrets(t *testing.T) {
	a := SSHAuth{PrivateKey: []byte("KEY"), Passphrase: []byte("PASS"), Password: "PW"}
	for _, s := range []string{a.String(), a.GoString()} {
		if strings.Contains(s, "KEY") || strings.Contains(s, "PASS") || strings.Contains(s, "PW") {
			t.Fatalf("%q", s)
		}
	}
}
