package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// dockerHandle is a run container the docker runtime started or adopted.
// Two goroutines, owned by the handle, follow it: one copies its log (both
// streams, in the order the engine stored them) into the output pipe, the
// other waits for it to stop. Both end when the container stopped, or at
// Detach.
type dockerHandle struct {
	d    *DockerRuntime
	id   string
	name string
	out  *io.PipeReader
	done chan struct{}

	ctx    context.Context // ends at Detach
	cancel context.CancelFunc

	mu     sync.Mutex
	exited bool
	code   int
	note   string // why the engine ended it, when it did (out of memory)
}

var (
	_ Handle   = (*dockerHandle)(nil)
	_ Detacher = (*dockerHandle)(nil)
	_ Remover  = (*dockerHandle)(nil)
	_ ExitNote = (*dockerHandle)(nil)
)

// watch starts following container id.
func (d *DockerRuntime) watch(id, name string) *dockerHandle {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	h := &dockerHandle{d: d, id: id, name: name, out: pr, done: make(chan struct{}), ctx: ctx, cancel: cancel, code: -1}
	go h.copyLogs(pw)
	go h.wait()
	return h
}

// copyLogs follows the container's log from its start: a handle of an
// adopted container sends again what was shipped before, which the head
// drops by offset.
func (h *dockerHandle) copyLogs(pw *io.PipeWriter) {
	rc, err := h.d.cli.ContainerLogs(h.ctx, h.id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
	if err != nil {
		if h.ctx.Err() == nil {
			h.d.log.Warn("could not follow the container's output", "container", h.name, "err", err)
		}
		pw.Close()
		return
	}
	defer rc.Close()
	_, err = stdcopy.StdCopy(pw, pw, rc)
	if err != nil && h.ctx.Err() == nil && !errors.Is(err, io.ErrClosedPipe) {
		h.d.log.Warn("the container's output ended early", "container", h.name, "err", err)
	}
	pw.Close()
}

// wait waits for the container to stop, through engine hiccups, and records
// its exit status. At Detach it returns without closing done.
func (h *dockerHandle) wait() {
	code, gone := -1, false
	for {
		waitC, errC := h.d.cli.ContainerWait(h.ctx, h.id, container.WaitConditionNotRunning)
		var err error
		select {
		case r := <-waitC:
			code = int(r.StatusCode)
		case err = <-errC:
		}
		if err == nil {
			break
		}
		if h.ctx.Err() != nil {
			return
		}
		if cerrdefs.IsNotFound(err) {
			gone = true
			break
		}
		h.d.log.Warn("lost the wait on the container; waiting again", "container", h.name, "err", err)
		select {
		case <-time.After(time.Second):
		case <-h.ctx.Done():
			return
		}
	}
	note := ""
	if gone {
		note = "the run's container was removed by someone else"
		code = 128 + int(syscall.SIGKILL)
	} else if ins, err := h.d.cli.ContainerInspect(h.ctx, h.id); err == nil && ins.State != nil && ins.State.OOMKilled {
		limit := int64(0)
		if ins.HostConfig != nil {
			limit = ins.HostConfig.Memory >> 20
		}
		note = fmt.Sprintf("killed: out of memory (the run's limit is %d MiB)", limit)
	}
	h.mu.Lock()
	h.exited, h.code, h.note = true, code, note
	h.mu.Unlock()
	close(h.done)
}

// Output implements Handle.
func (h *dockerHandle) Output() io.ReadCloser { return h.out }

// Done implements Handle.
func (h *dockerHandle) Done() <-chan struct{} { return h.done }

// ExitCode implements Handle: the container's exit status (the init in it
// reports a command killed by signal N as 128+N).
func (h *dockerHandle) ExitCode() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.code
}

// ExitNote implements ExitNote.
func (h *dockerHandle) ExitNote() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.note
}

// Signal implements Handle: the engine sends sig to the container's init,
// which passes it on to the command.
func (h *dockerHandle) Signal(sig syscall.Signal) error {
	h.mu.Lock()
	exited := h.exited
	h.mu.Unlock()
	if exited {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := h.d.cli.ContainerKill(ctx, h.id, strconv.Itoa(int(sig)))
	if err == nil || cerrdefs.IsNotFound(err) || cerrdefs.IsConflict(err) {
		return nil // gone, or not running any more
	}
	return fmt.Errorf("signal container %s: %w", h.name, err)
}

// Detach implements Detacher: the handle stops following the container,
// which goes on running.
func (h *dockerHandle) Detach() { h.cancel() }

// Remove implements Remover.
func (h *dockerHandle) Remove(ctx context.Context) error {
	h.cancel()
	err := h.d.cli.ContainerRemove(ctx, h.id, container.RemoveOptions{Force: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", h.name, err)
	}
	return nil
}
