package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// ProcessRuntime runs commands as child processes of the agent, in the
// attempt's work dir, each in its own process group so the whole group can
// be signaled. The children get SIGKILL when the agent dies (Pdeathsig), so
// a killed agent leaves no command behind (though processes the command
// started in other process groups or sessions may outlive it).
type ProcessRuntime struct {
	// DrainTimeout is how long the output stream may stay open after the
	// command exited and its process group was killed (a process that
	// escaped the group may hold it); then it ends. Default 2s.
	DrainTimeout time.Duration
}

var _ Runtime = (*ProcessRuntime)(nil)

// NewProcessRuntime returns the process runtime with its defaults.
func NewProcessRuntime() *ProcessRuntime {
	return &ProcessRuntime{DrainTimeout: 2 * time.Second}
}

// Name implements Runtime.
func (p *ProcessRuntime) Name() string { return "process" }

// Start implements Runtime. The command runs with the agent's environment
// plus spec.Env; its stdout and stderr are one pipe, so lines keep their
// order.
func (p *ProcessRuntime) Start(ctx context.Context, spec Spec) (Handle, error) {
	if len(spec.Command) == 0 || spec.Command[0] == "" {
		return nil, &StartError{Code: ExitNotFound, Reason: "the run has no command"}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	env := append(os.Environ(), spec.Env...)
	path, serr := resolveCommand(spec.Command[0], spec.Dir, lookupEnv(env, "PATH"))
	if serr != nil {
		return nil, serr
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("output pipe: %w", err)
	}
	cmd := &exec.Cmd{
		Path:   path,
		Args:   spec.Command,
		Dir:    spec.Dir,
		Env:    env,
		Stdout: w,
		Stderr: w,
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:   true,
			Pdeathsig: syscall.SIGKILL,
		},
	}
	drain := p.DrainTimeout
	if drain <= 0 {
		drain = 2 * time.Second
	}
	h := &processHandle{procGroup: newProcGroup(), out: r, drain: drain}
	started := make(chan error, 1)
	go h.run(cmd, w, started)
	if err := <-started; err != nil {
		_ = r.Close()
		return nil, startError(spec.Command[0], err)
	}
	return h, nil
}

// processHandle is a command started by ProcessRuntime.
type processHandle struct {
	procGroup
	out   *os.File
	drain time.Duration
}

var _ Handle = (*processHandle)(nil)

// run starts and waits for cmd (see procGroup.run); once it ended, what is
// left in the output pipe is read for at most the drain time.
func (h *processHandle) run(cmd *exec.Cmd, w *os.File, started chan<- error) {
	h.procGroup.run(cmd, func() { _ = w.Close() }, func() {
		_ = h.out.SetReadDeadline(time.Now().Add(h.drain))
	}, started)
}

// Output implements Handle.
func (h *processHandle) Output() io.ReadCloser { return deadlineEOF{h.out} }

// Done implements Handle.
func (h *processHandle) Done() <-chan struct{} { return h.done }

// ExitCode implements Handle.
func (h *processHandle) ExitCode() int { return h.exitCode() }

// deadlineEOF turns the drain deadline into the end of the stream.
type deadlineEOF struct{ *os.File }

func (d deadlineEOF) Read(p []byte) (int, error) {
	n, err := d.File.Read(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = io.EOF
	}
	return n, err
}

// resolveCommand finds the executable for argv[0] name: a name with a '/'
// is relative to dir unless absolute; a bare name is looked up in pathEnv
// (relative entries of which are skipped).
func resolveCommand(name, dir, pathEnv string) (string, error) {
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		fi, err := os.Stat(p)
		switch {
		case err != nil:
			return "", &StartError{Code: ExitNotFound, Reason: fmt.Sprintf("command %q not found", name), Err: err}
		case fi.IsDir():
			return "", &StartError{Code: ExitNotExecutable, Reason: fmt.Sprintf("command %q is a directory", name)}
		case fi.Mode().Perm()&0o111 == 0:
			return "", &StartError{Code: ExitNotExecutable, Reason: fmt.Sprintf("command %q is not executable", name)}
		}
		return p, nil
	}
	for _, d := range filepath.SplitList(pathEnv) {
		if !filepath.IsAbs(d) {
			continue
		}
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", &StartError{Code: ExitNotFound, Reason: fmt.Sprintf("command %q not found in PATH", name)}
}

// startError classifies a failed fork/exec.
func startError(name string, err error) error {
	var se *StartError
	if errors.As(err, &se) {
		return se
	}
	switch {
	case errors.Is(err, syscall.ENOENT):
		// The file exists (it was resolved), so its interpreter does not.
		return &StartError{Code: ExitNotFound, Reason: fmt.Sprintf("command %q could not be started (is its interpreter installed?)", name), Err: err}
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.ENOEXEC), errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EISDIR):
		return &StartError{Code: ExitNotExecutable, Reason: fmt.Sprintf("command %q cannot be executed", name), Err: err}
	}
	return &StartError{Code: ExitNotExecutable, Reason: fmt.Sprintf("command %q could not be started", name), Err: err}
}

// lookupEnv returns the last value of key in env (KEY=VALUE entries).
func lookupEnv(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}
