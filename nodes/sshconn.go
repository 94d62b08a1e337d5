package nodes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Sentinel errors of the SSH layer.
var (
	// ErrHostKeyMismatch is wrapped by connections refused because the
	// machine offered a host key other than the expected one.
	ErrHostKeyMismatch = errors.New("host key mismatch")
	// ErrHostGone is returned by a HostSource for a host that was detached
	// (or is being detached with force): there is nothing to do on it.
	ErrHostGone = errors.New("host is no longer attached")
)

// SSHAuth holds the secrets that log in to an attached machine: a private
// key (with its passphrase when it has one), or a password. Never log it.
type SSHAuth struct {
	PrivateKey []byte `json:"private_key,omitempty"`
	Passphrase []byte `json:"passphrase,omitempty"`
	Password   string `json:"password,omitempty"`
}

// String hides the secrets from fmt and loggers.
func (SSHAuth) String() string { return "SSHAuth{redacted}" }

// GoString hides the secrets from %#v.
func (a SSHAuth) GoString() string { return a.String() }

// Method names how a will authenticate: key, key+passphrase or password.
func (a SSHAuth) Method() string {
	switch {
	case len(a.PrivateKey) > 0 && len(a.Passphrase) > 0:
		return "key+passphrase"
	case len(a.PrivateKey) > 0:
		return "key"
	case a.Password != "":
		return "password"
	}
	return ""
}

// methods turns a into SSH auth methods: the key if there is one, and the
// password both as "password" and as keyboard-interactive answers.
func (a SSHAuth) methods() ([]ssh.AuthMethod, error) {
	var out []ssh.AuthMethod
	if len(a.PrivateKey) > 0 {
		var (
			signer ssh.Signer
			err    error
		)
		if len(a.Passphrase) > 0 {
			signer, err = ssh.ParsePrivateKeyWithPassphrase(a.PrivateKey, a.Passphrase)
		} else {
			signer, err = ssh.ParsePrivateKey(a.PrivateKey)
		}
		var missing *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &missing):
			return nil, errors.New("the private key is encrypted and no passphrase was given")
		case err != nil:
			// The parser's message never quotes key material.
			return nil, fmt.Errorf("private key: %w", err)
		}
		out = append(out, ssh.PublicKeys(signer))
	}
	if a.Password != "" {
		pw := a.Password
		out = append(out, ssh.Password(pw), ssh.KeyboardInteractive(func(_, _ string, qs []string, echos []bool) ([]string, error) {
			ans := make([]string, len(qs))
			for i := range qs {
				if !echos[i] {
					ans[i] = pw
				}
			}
			return ans, nil
		}))
	}
	if len(out) == 0 {
		return nil, errors.New("no private key or password to log in with")
	}
	return out, nil
}

// SSHHost is an attached machine as the ssh provider reaches it.
type SSHHost struct {
	// Name is the host's name in amld.
	Name    string
	Address string
	Port    int
	User    string
	// HostKey is the pinned host public key (authorized_keys format).
	HostKey string
	Auth    SSHAuth
	// AgentMode is systemd or process (see api.AgentSystemd).
	AgentMode string
	// Marker identifies the cluster that manages ~/.amld on the machine.
	Marker string
}

// Addr is host:port.
func (h *SSHHost) Addr() string { return net.JoinHostPort(h.Address, strconv.Itoa(h.Port)) }

// Fingerprint returns the SHA256 fingerprint of a host key, as ssh-keygen -l
// prints it ("SHA256:...").
func Fingerprint(k ssh.PublicKey) string { return ssh.FingerprintSHA256(k) }

// NormalizeFingerprint returns a SHA256 fingerprint in the form ssh prints
// it, or an error naming what is wrong with it.
func NormalizeFingerprint(fp string) (string, error) {
	fp = strings.TrimSpace(fp)
	b64, ok := strings.CutPrefix(fp, "SHA256:")
	if !ok {
		return "", errors.New(`must start with "SHA256:" (as ssh-keygen -lf prints it)`)
	}
	b64 = strings.TrimRight(b64, "=")
	if len(b64) != 43 || strings.Trim(b64, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") != "" {
		return "", errors.New("is not a SHA256 fingerprint: want SHA256: and 43 base64 characters")
	}
	return "SHA256:" + b64, nil
}

// hostKeyFamilies are the host key algorithms to ask for, one family at a
// time, in OpenSSH's order of preference.
var hostKeyFamilies = [][]string{
	{ssh.KeyAlgoED25519},
	{ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521},
	{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256},
}

// algorithmsFor are the host key algorithms that make a server present key k.
func algorithmsFor(k ssh.PublicKey) []string {
	if k.Type() == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
	}
	return []string{k.Type()}
}

// errProbed ends a probe's handshake once the host key is known.
var errProbed = errors.New("probed")

// ProbeHostKeys returns the host keys the SSH server at addr offers, one
// per key family it has (ed25519, then ecdsa, then rsa), without
// authenticating: no secret is sent.
func ProbeHostKeys(ctx context.Context, addr string, timeout time.Duration) ([]ssh.PublicKey, error) {
	var keys []ssh.PublicKey
	var lastErr error
	for _, algos := range hostKeyFamilies {
		var got ssh.PublicKey
		cfg := &ssh.ClientConfig{
			User:              "amld-probe",
			HostKeyAlgorithms: algos,
			HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
				got = k
				return errProbed
			},
			Timeout: timeout,
		}
		c, err := dialConfig(ctx, addr, cfg, timeout)
		if c != nil {
			c.Close()
		}
		if got != nil {
			keys = append(keys, got)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), "no common algorithm") {
			lastErr = err
			var ne net.Error
			if errors.As(err, &ne) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				break // the machine does not answer: no use asking for more
			}
		}
	}
	if len(keys) == 0 {
		if lastErr == nil {
			lastErr = errors.New("it offered no host key this client supports")
		}
		return nil, fmt.Errorf("read the host key of %s: %w", addr, lastErr)
	}
	return keys, nil
}

// DialSSH logs in to h, accepting only its pinned host key: a machine that
// offers another key is refused (ErrHostKeyMismatch) before any secret is
// sent.
func DialSSH(ctx context.Context, h *SSHHost, timeout time.Duration) (*ssh.Client, error) {
	pinned, _, _, _, err := ssh.ParseAuthorizedKey([]byte(h.HostKey))
	if err != nil {
		return nil, fmt.Errorf("host %s: pinned host key: %w", h.Name, err)
	}
	methods, err := h.Auth.methods()
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	want := Fingerprint(pinned)
	cfg := &ssh.ClientConfig{
		User:              h.User,
		Auth:              methods,
		HostKeyAlgorithms: algorithmsFor(pinned),
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			if got := Fingerprint(k); got != want {
				return fmt.Errorf("%w: %s offered %s (%s), the pinned key is %s; refusing to connect (if the machine was reinstalled, detach it and attach it again)",
					ErrHostKeyMismatch, h.Addr(), got, k.Type(), want)
			}
			return nil
		},
		Timeout: timeout,
	}
	c, err := dialConfig(ctx, h.Addr(), cfg, timeout)
	if err != nil {
		return nil, fmt.Errorf("ssh %s@%s: %w", h.User, h.Addr(), err)
	}
	return c, nil
}

// dialConfig connects and shakes hands within timeout (and ctx).
func dialConfig(ctx context.Context, addr string, cfg *ssh.ClientConfig, timeout time.Duration) (*ssh.Client, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(cc, chans, reqs), nil
}

// maxRemoteOutput caps what is kept of a remote command's stdout and stderr.
const maxRemoteOutput = 1 << 20

// runRemote runs cmd on c with stdin, and returns its stdout. A failure
// carries the command's stderr (trimmed); ctx's end closes the session.
func runRemote(ctx context.Context, c *ssh.Client, cmd string, stdin io.Reader) ([]byte, error) {
	s, err := c.NewSession()
	if err != nil {
		return nil, fmt.Errorf("open an ssh session: %w", err)
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	var out, errb capBuffer
	out.max, errb.max = maxRemoteOutput, 64<<10
	s.Stdout, s.Stderr = &out, &errb
	if stdin != nil {
		s.Stdin = stdin
	}
	if err := s.Run(cmd); err != nil {
		if ctx.Err() != nil {
			return out.Bytes(), ctx.Err()
		}
		msg := trimOutput(errb.String(), 600)
		var ee *ssh.ExitError
		if errors.As(err, &ee) {
			if msg == "" {
				return out.Bytes(), fmt.Errorf("exit status %d", ee.ExitStatus())
			}
			return out.Bytes(), fmt.Errorf("exit status %d: %s", ee.ExitStatus(), msg)
		}
		return out.Bytes(), err
	}
	return out.Bytes(), nil
}

// runScript runs a POSIX sh script on c with positional arguments.
func runScript(ctx context.Context, c *ssh.Client, script string, args ...string) ([]byte, error) {
	cmd := "sh -s --"
	for _, a := range args {
		cmd += " " + shellQuote(a)
	}
	return runRemote(ctx, c, cmd, strings.NewReader(script))
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// trimOutput keeps the last max bytes of s, its lines joined by "; ".
func trimOutput(s string, max int) string {
	s = strings.TrimSpace(s)
	if len(s) > max {
		s = "…" + s[len(s)-max:]
	}
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}

// capBuffer keeps at most max bytes written to it (the first ones) and
// drops the rest.
type capBuffer struct {
	bytes.Buffer
	max int
}

func (b *capBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
