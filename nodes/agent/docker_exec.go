package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/amld/amld/mpi"
)

var _ Execer = (*DockerRuntime)(nil)

// execSeq numbers the docker runtime's exec'd commands (their pid files).
var execSeq atomic.Int64

// Exec implements Execer as `docker exec` into the attempt's container:
// spec's command runs there with spec's working dir and environment (on
// top of the container's), as the container's user, with stdio attached.
// The command is started through the image's /bin/sh, which records its
// pid in the container's /tmp/.amld so that Signal can reach it with a
// second exec (the engine cannot signal an exec'd process); `exec` keeps
// the pid. Whatever the command leaves ends with the container, at the
// attempt's end.
func (d *DockerRuntime) Exec(ctx context.Context, h Handle, spec ExecSpec) (mpi.Process, error) {
	dh, ok := h.(*dockerHandle)
	if !ok {
		return nil, errors.New("docker runtime: exec into an attempt it did not start")
	}
	select {
	case <-dh.done:
		return nil, errors.New("the attempt's container has stopped")
	default:
	}
	if len(spec.Command) == 0 || spec.Command[0] == "" {
		return nil, errors.New("exec: no command")
	}
	pidFile := fmt.Sprintf("/tmp/.amld/exec-%d-%d.pid", time.Now().UnixNano(), execSeq.Add(1))
	cmd := append([]string{"/bin/sh", "-c", `mkdir -p /tmp/.amld && echo $$ >` + pidFile + ` && exec "$@"`, "sh"}, spec.Command...)
	opts := container.ExecOptions{
		Cmd:          cmd,
		Env:          spec.Env,
		WorkingDir:   spec.Dir,
		AttachStdin:  spec.Stdin != nil,
		AttachStdout: true,
		AttachStderr: true,
	}
	if d.uid != 0 {
		opts.User = fmt.Sprintf("%d:%d", d.uid, d.gid)
	}
	created, err := d.cli.ContainerExecCreate(ctx, dh.id, opts)
	if err != nil {
		return nil, fmt.Errorf("docker exec in %s: %w", dh.name, err)
	}
	att, err := d.cli.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return nil, fmt.Errorf("docker exec in %s: attach: %w", dh.name, err)
	}
	p := &dockerExec{d: d, container: dh.id, id: created.ID, pidFile: pidFile, done: make(chan struct{}), code: 255}
	stdout, stderr := spec.Stdout, spec.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	if spec.Stdin != nil {
		// Ends when the caller's stdin ends (the SSH channel closes) or
		// the exec's connection does.
		go func() {
			_, _ = io.Copy(att.Conn, spec.Stdin)
			_ = att.CloseWrite()
		}()
	}
	go func() {
		defer close(p.done)
		defer att.Close()
		_, _ = stdcopy.StdCopy(stdout, stderr, att.Reader)
		p.finish()
	}()
	return p, nil
}

// dockerExec is a command started by DockerRuntime.Exec.
type dockerExec struct {
	d         *DockerRuntime
	container string
	id        string
	pidFile   string
	done      chan struct{}

	mu     sync.Mutex
	exited bool
	code   int
}

var _ mpi.Process = (*dockerExec)(nil)

// finish reads the exit code once the output ended; the engine may need a
// moment to see the process gone. A container that is gone gives 255.
func (p *dockerExec) finish() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code := 255
	for ctx.Err() == nil {
		in, err := p.d.cli.ContainerExecInspect(ctx, p.id)
		if err != nil {
			break
		}
		if !in.Running {
			code = in.ExitCode
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	p.mu.Lock()
	p.exited, p.code = true, code
	p.mu.Unlock()
}

// Wait implements mpi.Process.
func (p *dockerExec) Wait() int {
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.code
}

// Signal implements mpi.Process with a second exec that runs kill in the
// container.
func (p *dockerExec) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	if exited {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kill := "kill -" + strconv.Itoa(int(sig)) + " $(cat " + p.pidFile + ") 2>/dev/null"
	opts := container.ExecOptions{Cmd: []string{"/bin/sh", "-c", kill}}
	if p.d.uid != 0 {
		opts.User = fmt.Sprintf("%d:%d", p.d.uid, p.d.gid)
	}
	created, err := p.d.cli.ContainerExecCreate(ctx, p.container, opts)
	if err == nil {
		err = p.d.cli.ContainerExecStart(ctx, created.ID, container.ExecStartOptions{Detach: true})
	}
	if err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err) {
		return fmt.Errorf("signal an exec in container %s: %w", p.container, err)
	}
	return nil
}
