package mpi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// EnvRshConfig names the environment variable that gives the rsh client
// its config file.
const EnvRshConfig = "AML_RSH_CONFIG"

// LostMarker starts the line the rsh client prints when it cannot reach a
// node or loses its connection to it: the node (or its agent) is gone, not
// the command at fault. The node's name follows, then a colon.
const LostMarker = "amld-rsh: lost the connection to node "

// RshConfig is the rsh client's config file, written by the agent for
// each attempt: who to be, with which key, and where the attempt's nodes
// are, with their pinned host keys.
type RshConfig struct {
	// User is the SSH user name: the run's ID.
	User string `json:"user"`
	// IdentityFile is the run's private key (0600).
	IdentityFile string `json:"identity_file"`
	// Hosts are the attempt's nodes.
	Hosts []RshHost `json:"hosts"`
}

// RshHost is one node the client may reach.
type RshHost struct {
	// Name is the node's name in the hostfile (its node ID).
	Name string `json:"name"`
	// Addr is the node's SSH server, host:port.
	Addr string `json:"addr"`
	// HostKey is the node's host key (authorized_keys format), as the head
	// learnt it when the node registered.
	HostKey string `json:"host_key"`
}

// LoadRshConfig reads a config file written by WriteRshConfig.
func LoadRshConfig(path string) (RshConfig, error) {
	var c RshConfig
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("read rsh config: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("rsh config %s: %w", path, err)
	}
	if c.User == "" || c.IdentityFile == "" {
		return c, fmt.Errorf("rsh config %s: user and identity_file are required", path)
	}
	return c, nil
}

// WriteRshConfig writes c to path (0600).
func WriteRshConfig(path string, c RshConfig) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'), 0o600)
}

// host finds the entry for name.
func (c RshConfig) host(name string) (RshHost, error) {
	var names []string
	for _, h := range c.Hosts {
		if h.Name == name {
			return h, nil
		}
		names = append(names, h.Name)
	}
	return RshHost{}, fmt.Errorf("unknown host %q: the attempt's nodes are %s", name, strings.Join(names, ", "))
}

// ssh(1) options that take an argument; the client skips them all.
const sshArgOptions = "BbcDEeFIiJLlmOopQRSWw"

// ParseRshArgs reads an ssh-style command line (without argv[0]): options,
// then [user@]HOST, then the remote command's words. Options (-x, -o
// BatchMode=yes, -p 22, ...) are skipped: the config says everything the
// client needs. The user part is ignored (the run's ID is the user).
func ParseRshArgs(args []string) (host string, words []string, err error) {
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		// A cluster of flags (-xT); one that takes an argument ends the
		// cluster, its argument attached (-oX=y) or next.
		for j := 1; j < len(a); j++ {
			if strings.IndexByte(sshArgOptions, a[j]) >= 0 {
				if j == len(a)-1 {
					i++
					if i >= len(args) {
						return "", nil, fmt.Errorf("option -%c needs an argument", a[j])
					}
				}
				break
			}
		}
	}
	if i >= len(args) {
		return "", nil, errors.New("no host given; usage: amld-rsh [ssh options] HOST COMMAND...")
	}
	host = args[i]
	if at := strings.LastIndexByte(host, '@'); at >= 0 {
		host = host[at+1:]
	}
	words = args[i+1:]
	if len(words) == 0 {
		return "", nil, errors.New("no command given: amld-rsh runs commands only (no login shell)")
	}
	return host, words, nil
}

// ClientConfig is the SSH client configuration for reaching h as c's
// user: the run's key, and h's pinned host key (never any other).
func (c RshConfig) ClientConfig(h RshHost) (*ssh.ClientConfig, error) {
	key, err := os.ReadFile(c.IdentityFile)
	if err != nil {
		return nil, fmt.Errorf("read the run's key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("the run's key %s: %w", c.IdentityFile, err)
	}
	hk, err := ParseAuthorizedKey(h.HostKey)
	if err != nil {
		return nil, fmt.Errorf("node %s has no usable pinned host key: %w", h.Name, err)
	}
	return &ssh.ClientConfig{
		User:              c.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   ssh.FixedHostKey(hk),
		HostKeyAlgorithms: []string{hk.Type()},
		Timeout:           15 * time.Second,
	}, nil
}

// lostError says the node could not be reached or the connection to it
// dropped.
type lostError struct {
	node string
	err  error
}

func (e *lostError) Error() string { return LostMarker + e.node + ": " + e.err.Error() }
func (e *lostError) Unwrap() error { return e.err }

// Dial connects to the node named host with c's key, verifying its pinned
// host key. A node that cannot be reached gives an error that starts with
// LostMarker.
func (c RshConfig) Dial(ctx context.Context, host string) (*ssh.Client, error) {
	h, err := c.host(host)
	if err != nil {
		return nil, err
	}
	cc, err := c.ClientConfig(h)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: cc.Timeout, KeepAlive: 15 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", h.Addr)
	if err != nil {
		return nil, &lostError{node: h.Name, err: fmt.Errorf("cannot reach %s: %w", h.Addr, err)}
	}
	_ = nc.SetDeadline(time.Now().Add(cc.Timeout))
	conn, chans, reqs, err := ssh.NewClientConn(nc, h.Addr, cc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("node %s (%s): %w", h.Name, h.Addr, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return ssh.NewClient(conn, chans, reqs), nil
}

// HoldFlag makes the rsh client hold (see RshMain).
const HoldFlag = "--hold"

// hold waits for a signal to stop.
func hold() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	<-ctx.Done()
	return 0
}

// keepaliveEvery and keepaliveTimeout detect a node that vanished without
// closing the connection.
const (
	keepaliveEvery   = 5 * time.Second
	keepaliveTimeout = 20 * time.Second
)

// RshMain is the rsh client: `amld-rsh [ssh options] HOST WORDS...` runs
// the words joined by spaces through /bin/sh -c on node HOST of the
// attempt and returns its exit status; 255 when the command could not be
// run there (as ssh does). getenv reads the environment (os.Getenv).
//
// `amld-rsh --hold` runs nothing: it waits for SIGTERM, SIGINT or SIGHUP
// and exits 0. It is the command of an MPI run's other nodes, which only
// serve the daemons mpirun starts; being one static process, it runs in
// any image and dies with the agent.
func RshMain(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 1 && args[0] == HoldFlag {
		return hold()
	}
	host, words, err := ParseRshArgs(args)
	if err != nil {
		fmt.Fprintln(stderr, "amld-rsh:", err)
		return 255
	}
	path := getenv(EnvRshConfig)
	if path == "" {
		fmt.Fprintf(stderr, "amld-rsh: %s is not set: amld-rsh runs inside an amld attempt of a multi-node run\n", EnvRshConfig)
		return 255
	}
	cfg, err := LoadRshConfig(path)
	if err != nil {
		fmt.Fprintln(stderr, "amld-rsh:", err)
		return 255
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	client, err := cfg.Dial(ctx, host)
	if err != nil {
		if strings.HasPrefix(err.Error(), "amld-rsh:") {
			fmt.Fprintln(stderr, err)
		} else {
			fmt.Fprintln(stderr, "amld-rsh:", err)
		}
		return 255
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		fmt.Fprintf(stderr, "amld-rsh: node %s: %v\n", host, err)
		return 255
	}
	defer sess.Close()
	sess.Stdin, sess.Stdout, sess.Stderr = stdin, stdout, stderr

	lost := make(chan error, 1)
	kaDone := make(chan struct{})
	kaStop := make(chan struct{})
	go func() {
		defer close(kaDone)
		keepalive(client, kaStop, lost)
	}()
	defer func() { close(kaStop); <-kaDone }()

	runErr := make(chan error, 1)
	if err := sess.Start(strings.Join(words, " ")); err != nil {
		fmt.Fprintf(stderr, "amld-rsh: node %s: %v\n", host, err)
		return 255
	}
	go func() { runErr <- sess.Wait() }()
	var werr error
	select {
	case werr = <-runErr:
	case <-ctx.Done():
		// Signaled: pass it on, then let the far side kill the command.
		_ = sess.Signal(ssh.SIGTERM)
		client.Close()
		<-runErr
		return 128 + int(syscall.SIGTERM)
	case err := <-lost:
		client.Close()
		<-runErr
		fmt.Fprintln(stderr, (&lostError{node: host, err: err}).Error())
		return 255
	}
	var ee *ssh.ExitError
	switch {
	case werr == nil:
		return 0
	case errors.As(werr, &ee):
		return ee.ExitStatus()
	}
	fmt.Fprintln(stderr, (&lostError{node: host, err: werr}).Error())
	return 255
}

// keepalive pings the server until stop; it reports on lost when the
// server stops answering.
func keepalive(c *ssh.Client, stop <-chan struct{}, lost chan<- error) {
	t := time.NewTicker(keepaliveEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		res := make(chan error, 1)
		go func() {
			_, _, err := c.SendRequest("keepalive@amld", true, nil)
			res <- err
		}()
		select {
		case <-stop:
			return
		case err := <-res:
			if err != nil {
				lost <- fmt.Errorf("keepalive: %w", err)
				return
			}
		case <-time.After(keepaliveTimeout):
			lost <- fmt.Errorf("no answer to keepalives for %s", keepaliveTimeout)
			return
		}
	}
}
