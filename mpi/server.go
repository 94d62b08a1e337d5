package mpi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// Process is a command started for an exec request.
type Process interface {
	// Wait waits until the command has exited and its output was copied
	// out, and returns its exit status (128+N when signal N killed it).
	Wait() int
	// Signal sends sig to the command's processes. Signaling a command
	// that already exited is not an error.
	Signal(sig syscall.Signal) error
}

// ExecRequest is an exec request the server accepted.
type ExecRequest struct {
	// Command is the request's command line, to be run by /bin/sh -c as
	// sshd would.
	Command string
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
}

// ExecFunc starts req inside a run's attempt; ctx bounds the start only.
// The returned Process must end once signaled with SIGKILL.
type ExecFunc func(ctx context.Context, req ExecRequest) (Process, error)

// Grant lets a run's key in while the run's attempt is live on this node.
type Grant struct {
	// RunID is the SSH user name the run's clients present.
	RunID string
	// Attempt is the attempt's number (for logs).
	Attempt int
	// Key is the run's public key.
	Key ssh.PublicKey
	// Exec runs an exec request inside the attempt.
	Exec ExecFunc
}

// ServerConfig configures the agent's SSH server.
type ServerConfig struct {
	// HostKey is the node's host key. Required.
	HostKey ssh.Signer
	// Logger receives the server's logs (refused keys and requests); nil
	// discards them.
	Logger *slog.Logger
	// KillGrace is how long a command has between SIGTERM and SIGKILL when
	// its channel closes or its grant is revoked (default 5s).
	KillGrace time.Duration
	// HandshakeTimeout bounds a connection's SSH handshake (default 10s).
	HandshakeTimeout time.Duration
}

// Server is the agent's SSH server: it runs the exec requests of the runs
// it holds a Grant for, and nothing else (no shells, ptys, forwarding or
// subsystems).
type Server struct {
	cfg    ServerConfig
	log    *slog.Logger
	sshCfg *ssh.ServerConfig

	mu     sync.Mutex
	grants map[string]*grant // by run ID
	serial uint64
}

// grant is a Grant in force.
type grant struct {
	Grant
	serial   uint64
	keyBytes []byte

	mu       sync.Mutex
	closed   bool
	revoked  chan struct{}
	sessions sync.WaitGroup
}

// errRefused is what a refused client is told (nothing more).
var errRefused = errors.New("mpi: key refused")

// grantExtension carries the grant's serial from authentication to the
// connection.
const grantExtension = "amld-grant"

// NewServer checks cfg and returns a server with no grants.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.HostKey == nil {
		return nil, errors.New("mpi: ServerConfig.HostKey is required")
	}
	if cfg.KillGrace <= 0 {
		cfg.KillGrace = 5 * time.Second
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log, grants: map[string]*grant{}}
	s.sshCfg = &ssh.ServerConfig{
		PublicKeyCallback: s.authorize,
		ServerVersion:     "SSH-2.0-amld",
		MaxAuthTries:      3,
	}
	s.sshCfg.AddHostKey(cfg.HostKey)
	return s, nil
}

// HostKey is the server's public host key in authorized_keys format.
func (s *Server) HostKey() string { return AuthorizedKey(s.cfg.HostKey.PublicKey()) }

// Allow lets g's key in for g's run until revoke is called. A grant the
// run already had (an earlier attempt's) is revoked first. revoke refuses
// later requests, kills the commands the grant started (SIGTERM, KillGrace,
// SIGKILL) and returns once they ended; calling it again does nothing.
func (s *Server) Allow(g Grant) (revoke func(), err error) {
	switch {
	case g.RunID == "":
		return nil, errors.New("mpi: Grant.RunID is required")
	case g.Key == nil:
		return nil, errors.New("mpi: Grant.Key is required")
	case g.Exec == nil:
		return nil, errors.New("mpi: Grant.Exec is required")
	}
	s.mu.Lock()
	s.serial++
	ng := &grant{Grant: g, serial: s.serial, keyBytes: g.Key.Marshal(), revoked: make(chan struct{})}
	old := s.grants[g.RunID]
	s.grants[g.RunID] = ng
	s.mu.Unlock()
	if old != nil {
		s.revoke(old)
	}
	var once sync.Once
	return func() { once.Do(func() { s.revoke(ng) }) }, nil
}

func (s *Server) revoke(g *grant) {
	s.mu.Lock()
	if s.grants[g.RunID] == g {
		delete(s.grants, g.RunID)
	}
	s.mu.Unlock()
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.revoked)
	}
	g.mu.Unlock()
	g.sessions.Wait()
}

// addSession counts a session of g, unless g was revoked.
func (g *grant) addSession() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.sessions.Add(1)
	return true
}

// current returns the grant in force for run with the given serial.
func (s *Server) current(run string, serial uint64) *grant {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.grants[run]; g != nil && g.serial == serial {
		return g
	}
	return nil
}

// authorize accepts the key of a run that holds a grant, presented under
// that run's ID.
func (s *Server) authorize(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	s.mu.Lock()
	g := s.grants[meta.User()]
	s.mu.Unlock()
	if g == nil || !bytes.Equal(g.keyBytes, key.Marshal()) {
		s.log.Info("ssh: refused a key", "user", meta.User(), "remote", meta.RemoteAddr().String(),
			"key", ssh.FingerprintSHA256(key), "known_run", g != nil)
		return nil, errRefused
	}
	return &ssh.Permissions{Extensions: map[string]string{grantExtension: strconv.FormatUint(g.serial, 10)}}, nil
}

// Serve accepts connections on ln until ctx ends; then it closes ln and
// every connection, kills the commands they run, and returns nil once all
// of them ended. Other errors come from Accept.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("mpi: ssh accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveConn(ctx, nc)
		}()
	}
}

// serveConn runs one client connection.
func (s *Server) serveConn(ctx context.Context, nc net.Conn) {
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	sc, chans, reqs, err := ssh.NewServerConn(nc, s.sshCfg)
	if err != nil {
		s.log.Debug("ssh: handshake failed", "remote", nc.RemoteAddr().String(), "err", err)
		return
	}
	defer sc.Close()
	_ = nc.SetDeadline(time.Time{})
	serial, _ := strconv.ParseUint(sc.Permissions.Extensions[grantExtension], 10, 64)
	g := s.current(sc.User(), serial)
	if g == nil {
		return // revoked between authentication and now
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() { // global requests: keepalives get "no"
		defer wg.Done()
		ssh.DiscardRequests(reqs)
	}()
	done := make(chan struct{})
	defer close(done)
	wg.Add(1)
	go func() { // the connection ends with the grant or the server
		defer wg.Done()
		select {
		case <-ctx.Done():
		case <-g.revoked:
		case <-done:
			return
		}
		sc.Close()
	}()
	for nch := range chans {
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.Prohibited, "only session channels are served")
			continue
		}
		if !g.addSession() {
			_ = nch.Reject(ssh.Prohibited, "the run's attempt ended on this node")
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer g.sessions.Done()
			s.serveSession(ctx, g, nch)
		}()
	}
}

// serveSession runs one session channel: at most one exec request, whose
// command gets the channel's stdio; its exit status goes back as an
// exit-status request. Closing the channel kills the command.
func (s *Server) serveSession(ctx context.Context, g *grant, nch ssh.NewChannel) {
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	log := s.log.With("run", g.RunID, "attempt", g.Attempt)
	var proc Process
	exited := make(chan int, 1)
	for {
		select {
		case req, ok := <-reqs:
			if !ok { // the client closed the channel, or the connection dropped
				if proc != nil {
					s.kill(proc, exited)
				}
				return
			}
			switch req.Type {
			case "exec":
				var p struct{ Command string }
				if proc != nil || ssh.Unmarshal(req.Payload, &p) != nil {
					_ = req.Reply(false, nil)
					continue
				}
				select {
				case <-g.revoked:
					_ = req.Reply(false, nil)
					return
				default:
				}
				pr, err := g.Exec(ctx, ExecRequest{Command: p.Command, Stdin: ch, Stdout: ch, Stderr: ch.Stderr()})
				_ = req.Reply(true, nil)
				if err != nil {
					log.Warn("ssh: exec request could not be started", "err", err)
					fmt.Fprintf(ch.Stderr(), "amld: %v\n", err)
					sendExitStatus(ch, 255)
					return
				}
				proc = pr
				go func() { exited <- pr.Wait() }()
			case "signal":
				var p struct{ Signal string }
				if proc != nil && ssh.Unmarshal(req.Payload, &p) == nil {
					if sig, ok := signals[p.Signal]; ok {
						_ = proc.Signal(sig)
					}
				}
				if req.WantReply {
					_ = req.Reply(false, nil)
				}
			default: // env, pty-req, shell, subsystem, x11-req...: refused
				if req.WantReply {
					_ = req.Reply(false, nil)
				}
			}
		case code := <-exited:
			sendExitStatus(ch, code)
			_ = ch.CloseWrite()
			return
		case <-g.revoked:
			if proc != nil {
				fmt.Fprintln(ch.Stderr(), "amld: the run's attempt ended on this node; its command was killed")
				sendExitStatus(ch, s.kill(proc, exited))
			}
			return
		case <-ctx.Done():
			if proc != nil {
				sendExitStatus(ch, s.kill(proc, exited))
			}
			return
		}
	}
}

// kill stops proc (SIGTERM, KillGrace, SIGKILL) and returns its status.
func (s *Server) kill(proc Process, exited <-chan int) int {
	_ = proc.Signal(syscall.SIGTERM)
	t := time.NewTimer(s.cfg.KillGrace)
	defer t.Stop()
	select {
	case code := <-exited:
		return code
	case <-t.C:
	}
	_ = proc.Signal(syscall.SIGKILL)
	return <-exited
}

func sendExitStatus(ch ssh.Channel, code int) {
	if code < 0 || code > 255 {
		code = 255
	}
	_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
}

// signals maps SSH signal names (RFC 4254 §6.10) to signals.
var signals = map[string]syscall.Signal{
	string(ssh.SIGABRT): syscall.SIGABRT,
	string(ssh.SIGALRM): syscall.SIGALRM,
	string(ssh.SIGFPE):  syscall.SIGFPE,
	string(ssh.SIGHUP):  syscall.SIGHUP,
	string(ssh.SIGILL):  syscall.SIGILL,
	string(ssh.SIGINT):  syscall.SIGINT,
	string(ssh.SIGKILL): syscall.SIGKILL,
	string(ssh.SIGPIPE): syscall.SIGPIPE,
	string(ssh.SIGQUIT): syscall.SIGQUIT,
	string(ssh.SIGSEGV): syscall.SIGSEGV,
	string(ssh.SIGTERM): syscall.SIGTERM,
	string(ssh.SIGUSR1): syscall.SIGUSR1,
	string(ssh.SIGUSR2): syscall.SIGUSR2,
}
