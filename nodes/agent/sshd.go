package agent

import (
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/amld/amld/mpi"
)

// hostKeyFile is the agent's SSH host key in WorkDir, made once (0600).
const hostKeyFile = "ssh_host_ed25519_key"

// startSSH loads (or makes) the host key, listens and serves SSH until
// ctx ends; the returned func waits for the server to stop.
func (a *Agent) startSSH(ctx context.Context) (wait func(), err error) {
	signer, err := mpi.LoadOrCreateHostKey(filepath.Join(a.cfg.WorkDir, hostKeyFile))
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	srv, err := mpi.NewServer(mpi.ServerConfig{HostKey: signer, Logger: a.log.With("part", "sshd"), KillGrace: a.cfg.KillGrace})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	ln, err := a.listenSSH()
	if err != nil {
		return nil, err
	}
	a.sshd = srv
	a.sshPort = ln.Addr().(*net.TCPAddr).Port
	a.log.Info("serving SSH for MPI runs", "addr", ln.Addr().String(), "host_key", srv.HostKey())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ctx, ln); err != nil {
			a.log.Error("the SSH server stopped", "err", err)
		}
	}()
	return wg.Wait, nil
}

// listenSSH listens at SSHListen, or on Address's host at the port saved
// in node.json (so a restarted agent keeps its registered port) or a free
// one.
func (a *Agent) listenSSH() (net.Listener, error) {
	if a.cfg.SSHListen != "" {
		ln, err := net.Listen("tcp", a.cfg.SSHListen)
		if err != nil {
			return nil, fmt.Errorf("agent: SSH listen %s: %w", a.cfg.SSHListen, err)
		}
		return ln, nil
	}
	host := hostOf(a.address())
	if b, err := os.ReadFile(a.nodeFilePath()); err == nil {
		var nf nodeFile
		if json.Unmarshal(b, &nf) == nil && nf.SSHPort > 0 {
			if ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(nf.SSHPort))); err == nil {
				return ln, nil
			}
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, fmt.Errorf("agent: SSH listen on %q: %w", host, err)
	}
	return ln, nil
}

// tmpPrefix names this agent's attempts' temp dirs (mpi.TempPrefix).
func (a *Agent) tmpPrefix() string { return mpi.TempPrefix(a.cfg.WorkDir) }

// removeStaleTemp removes the temp dirs an earlier agent process left.
func (a *Agent) removeStaleTemp() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), a.tmpPrefix()+"*"))
	for _, d := range dirs {
		if err := removeAll(d); err != nil {
			a.log.Warn("could not remove a stale temp dir", "dir", d, "err", err)
		}
	}
}

// rshClient returns the rsh client's path for mpirun: RshClient, amld-rsh
// beside the executable, or a symlink named amld-rsh to the executable.
func (a *Agent) rshClient() (string, error) {
	if a.cfg.RshClient != "" {
		return a.cfg.RshClient, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("no rsh client: %w", err)
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return "", fmt.Errorf("no rsh client: %w", err)
	}
	side := filepath.Join(filepath.Dir(exe), "amld-rsh")
	if fi, err := os.Stat(side); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
		return side, nil
	}
	if filepath.Base(exe) != "amld" {
		return "", errors.New("no rsh client: amld-rsh is not installed beside " + exe)
	}
	link := filepath.Join(a.cfg.WorkDir, "bin", "amld-rsh")
	if target, err := os.Readlink(link); err == nil && target == exe {
		return link, nil
	}
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return "", fmt.Errorf("rsh client: %w", err)
	}
	tmp := link + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(exe, tmp); err != nil {
		return "", fmt.Errorf("rsh client: %w", err)
	}
	if err := os.Rename(tmp, link); err != nil {
		return "", fmt.Errorf("rsh client: %w", err)
	}
	return link, nil
}

// staticRshClient returns a statically linked rsh client at a path the
// Docker Engine can mount (WorkDir/bin/amld-rsh-static, copied once from
// RshClient, amld-rsh beside the executable, or the executable itself,
// whichever is static): it runs inside run containers, whatever their libc.
func (a *Agent) staticRshClient() (string, error) {
	a.staticRshOnce.Do(func() { a.staticRsh, a.staticRshErr = a.makeStaticRsh() })
	return a.staticRsh, a.staticRshErr
}

func (a *Agent) makeStaticRsh() (string, error) {
	var candidates []string
	if a.cfg.RshClient != "" {
		candidates = append(candidates, a.cfg.RshClient)
	}
	if exe, err := os.Executable(); err == nil {
		candidates = append(candidates, filepath.Join(filepath.Dir(exe), "amld-rsh"), exe)
	}
	for _, c := range candidates {
		p, err := filepath.EvalSymlinks(c)
		if err != nil || !isStaticELF(p) {
			continue
		}
		dst := filepath.Join(a.cfg.WorkDir, "bin", "amld-rsh-static")
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return "", fmt.Errorf("rsh client: %w", err)
		}
		if err := copyFile(p, dst, 0o755); err != nil {
			return "", fmt.Errorf("rsh client: %w", err)
		}
		return dst, nil
	}
	return "", errors.New("runs with an image need a static rsh client: build amld-rsh with CGO_ENABLED=0 beside amld (make build), or give --rsh-client")
}

// isStaticELF reports whether path is an ELF executable without a dynamic
// loader.
func isStaticELF(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return f.Type == elf.ET_EXEC || f.Type == elf.ET_DYN
}

// copyFile copies src to dst (through a temporary file and a rename).
func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// linkOrCopy makes dst the same file as src: a hard link (same file
// system, instant), else a copy.
func linkOrCopy(src, dst string) error {
	_ = os.Remove(dst)
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	return copyFile(src, dst, 0o755)
}
