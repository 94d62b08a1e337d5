package agent

import (
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// procGroup is a command started as the leader of its own process group,
// and how it ended. The process runtime's handles and the SSH server's exec
// processes are both one.
type procGroup struct {
	done chan struct{} // closed once the command was reaped and its group killed

	mu     sync.Mutex
	pgid   int  // the command's pid, which is its process group's ID
	exited bool // the command was reaped and its group killed: signal does nothing
	code   int
}

func newProcGroup() procGroup { return procGroup{done: make(chan struct{})} }

// run starts cmd and waits for it. Pdeathsig is tied to the OS thread that
// forked the child, not to the process: should that thread exit while the
// child runs, the child would be killed. So the goroutine locks its thread
// before the fork and keeps it until the child is reaped; a locked thread
// is neither reused by other goroutines nor ended by the runtime.
// afterStart runs right after the fork whatever its outcome (to close the
// parent's copies of the child's pipe ends); onExit runs once the command
// ended and its group was killed, before done is closed. The outcome of the
// start goes to started.
func (g *procGroup) run(cmd *exec.Cmd, afterStart, onExit func(), started chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err := cmd.Start()
	if afterStart != nil {
		afterStart()
	}
	if err != nil {
		started <- err
		return
	}
	defer close(g.done)
	g.mu.Lock()
	g.pgid = cmd.Process.Pid
	g.mu.Unlock()
	started <- nil

	_ = cmd.Wait() // the exit status is in ProcessState
	code := -1
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
		switch {
		case ws.Signaled():
			code = 128 + int(ws.Signal())
		case ws.Exited():
			code = ws.ExitStatus()
		}
	}
	g.mu.Lock()
	// Whatever is left of the group (background children) goes with the
	// command, as on other schedulers; this also lets the output end.
	_ = syscall.Kill(-g.pgid, syscall.SIGKILL)
	g.exited = true
	g.code = code
	g.mu.Unlock()
	if onExit != nil {
		onExit()
	}
}

// exitCode is the command's exit code (128+signal when a signal ended it).
func (g *procGroup) exitCode() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.code
}

// Signal sends sig to the command's process group; after the command ended
// it does nothing.
func (g *procGroup) Signal(sig syscall.Signal) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.exited || g.pgid == 0 {
		return nil
	}
	if err := syscall.Kill(-g.pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal process group %d: %w", g.pgid, err)
	}
	return nil
}
