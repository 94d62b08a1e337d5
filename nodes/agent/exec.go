package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/amld/amld/mpi"
)

// Execer is an optional ability of a Runtime: starting another command
// inside an attempt it started, in that attempt's environment (the work
// dir and environment for the process runtime; the container for docker,
// as `docker exec` does). The agent's SSH server runs the exec requests of
// a run's peers (mpirun's daemons) through it; on a runtime without it
// such requests fail with a message naming the runtime.
type Execer interface {
	// Exec starts spec inside the attempt h (a Handle this runtime's Start
	// returned) and returns once it runs; ctx bounds the start only. An
	// attempt that already ended is an error. Signaling the returned
	// process reaches every process of the command's process group.
	Exec(ctx context.Context, h Handle, spec ExecSpec) (mpi.Process, error)
}

// ExecSpec is a command to run inside an attempt.
type ExecSpec struct {
	// Command is the argv, run as is; Command[0] is found as for
	// Spec.Command.
	Command []string
	// Dir is the command's cwd: the attempt's work dir.
	Dir string
	// Env holds KEY=VALUE entries on top of the runtime's base
	// environment; later entries win.
	Env []string
	// Stdin, Stdout and Stderr are the command's stdio (nil: /dev/null).
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

var _ Execer = (*ProcessRuntime)(nil)

// Exec implements Execer: the command runs as a child of the agent in its
// own process group, with the agent's environment plus spec.Env. It gets
// SIGTERM (not SIGKILL) when the agent dies, so that an MPI daemon can
// still stop the ranks it started.
func (p *ProcessRuntime) Exec(ctx context.Context, h Handle, spec ExecSpec) (mpi.Process, error) {
	if _, ok := h.(*processHandle); !ok {
		return nil, errors.New("process runtime: exec into an attempt it did not start")
	}
	select {
	case <-h.Done():
		return nil, errors.New("the attempt's command has ended")
	default:
	}
	if len(spec.Command) == 0 || spec.Command[0] == "" {
		return nil, errors.New("exec: no command")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	env := append(os.Environ(), spec.Env...)
	path, err := resolveCommand(spec.Command[0], spec.Dir, lookupEnv(env, "PATH"))
	if err != nil {
		return nil, err
	}
	drain := p.DrainTimeout
	if drain <= 0 {
		drain = 2 * time.Second
	}
	cmd := &exec.Cmd{
		Path:      path,
		Args:      spec.Command,
		Dir:       spec.Dir,
		Env:       env,
		Stdout:    spec.Stdout,
		Stderr:    spec.Stderr,
		WaitDelay: drain,
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:   true,
			Pdeathsig: syscall.SIGTERM,
		},
	}
	var stdinW *os.File
	if spec.Stdin != nil {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("exec: stdin pipe: %w", err)
		}
		cmd.Stdin, stdinW = r, w
	}
	ep := &execProcess{procGroup: newProcGroup()}
	started := make(chan error, 1)
	go ep.run(cmd, started)
	if err := <-started; err != nil {
		if stdinW != nil {
			stdinW.Close()
		}
		return nil, startError(spec.Command[0], err)
	}
	if stdinW != nil {
		// Ends when the caller's stdin ends (the SSH channel closes) or
		// the command stops reading.
		go func() {
			_, _ = io.Copy(stdinW, spec.Stdin)
			stdinW.Close()
		}()
	}
	return ep, nil
}

// execProcess is a command started by ProcessRuntime.Exec; Signal (from
// procGroup) implements mpi.Process's, sending to the command's group.
type execProcess struct {
	procGroup
}

var _ mpi.Process = (*execProcess)(nil)

// run starts cmd and waits for it (see procGroup.run).
func (p *execProcess) run(cmd *exec.Cmd, started chan<- error) {
	p.procGroup.run(cmd, func() {
		if f, ok := cmd.Stdin.(*os.File); ok {
			f.Close() // the child holds its own copy
		}
	}, nil, started)
}

// Wait implements mpi.Process.
func (p *execProcess) Wait() int {
	<-p.done
	return p.exitCode()
}
