package mpi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/crypto/ssh"
)

// shProcess is a real `sh -c` command, as the process runtime runs one.
type shProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
	code int
}

func (p *shProcess) Wait() int { <-p.done; return p.code }

func (p *shProcess) Signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	err := syscall.Kill(-p.cmd.Process.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// shExec is an ExecFunc that runs requests with /bin/sh -c in dir and
// records the commands it started.
type shExec struct {
	dir string
	mu  sync.Mutex
	ran []string
}

func (e *shExec) exec(_ context.Context, req ExecRequest) (Process, error) {
	e.mu.Lock()
	e.ran = append(e.ran, req.Command)
	e.mu.Unlock()
	cmd := exec.Command("/bin/sh", "-c", req.Command)
	cmd.Dir = e.dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = req.Stdin, req.Stdout, req.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &shProcess{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			p.code = 128 + int(ws.Signal())
		} else {
			p.code = cmd.ProcessState.ExitCode()
		}
		close(p.done)
	}()
	return p, nil
}

func (e *shExec) commands() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.ran...)
}

// testNode is one agent's SSH server on loopback.
type testNode struct {
	name string
	srv  *Server
	addr string
	hk   ssh.Signer
}

func startNode(t *testing.T, name string) *testNode {
	t.Helper()
	hk, err := LoadOrCreateHostKey(filepath.Join(t.TempDir(), "host_key"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(ServerConfig{HostKey: hk, KillGrace: 500e6})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &testNode{name: name, srv: srv, addr: ln.Addr().String(), hk: hk}
}

// runKey makes a run key and writes its private half to dir.
func runKey(t *testing.T, dir string) (RunKey, string) {
	t.Helper()
	k, err := NewRunKey("test")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "id_"+filepath.Base(dir))
	if err := os.WriteFile(path, []byte(k.Private), 0o600); err != nil {
		t.Fatal(err)
	}
	return k, path
}

func mustKey(t *testing.T, s string) ssh.PublicKey {
	t.Helper()
	k, err := ParseAuthorizedKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// configFor is an rsh config reaching nodes as run user with identity.
func configFor(user, identity string, nodes ...*testNode) RshConfig {
	c := RshConfig{User: user, IdentityFile: identity}
	for _, n := range nodes {
		c.Hosts = append(c.Hosts, RshHost{Name: n.name, Addr: n.addr, HostKey: n.srv.HostKey()})
	}
	return c
}

func fmtFscan(r interface{ Read([]byte) (int, error) }, v *int) (int, error) {
	return fmt.Fscan(r, v)
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
