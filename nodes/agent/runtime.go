package agent

import (
	"context"
	"fmt"
	"io"
	"syscall"

	"github.com/amld/amld/api"
)

// Runtime starts an attempt's command on this node. The agent prepares the
// work dir (source snapshot extracted, outputs/ made) and the environment;
// the runtime runs the command there and hands back a Handle. Implementations:
// the process runtime (ProcessRuntime) and the docker runtime (DockerRuntime).
type Runtime interface {
	// Name is the runtime's name as the agent reports it at registration
	// ("process", "docker").
	Name() string
	// Start starts spec's command and returns once it runs (ctx bounds the
	// start only, not the command's life). A command that cannot be started
	// gives a *StartError, whose Code the agent reports as the exit code.
	Start(ctx context.Context, spec Spec) (Handle, error)
}

// Spec is what a runtime needs to start one node's share of an attempt.
type Spec struct {
	Key api.AttemptKey
	// Image is the run's Docker image; empty for the process runtime.
	Image string
	// Command is the argv to run, as is (no shell). A Command[0] with a '/'
	// is relative to Dir (unless absolute); without one it is looked up in
	// PATH (the PATH of Env, else the agent's).
	Command []string
	// Dir is the attempt's work dir (absolute); the command's cwd.
	Dir string
	// CheckpointDir is the run's checkpoint dir (absolute), which the docker
	// runtime mounts besides Dir.
	CheckpointDir string
	// Env holds KEY=VALUE entries on top of the runtime's base environment
	// (the agent's own for the process runtime); later entries win.
	Env []string
	// Allocation is what the attempt holds on this node.
	Allocation api.Allocation
}

// Handle is a started command.
type Handle interface {
	// Output is the command's stdout and stderr merged into one stream in
	// the order written. The caller reads it to EOF, which comes once the
	// command exited (a stream held open by a process that escaped the
	// runtime ends shortly after), and closes it.
	Output() io.ReadCloser
	// Done is closed when the command has exited and every other process of
	// the attempt was killed.
	Done() <-chan struct{}
	// ExitCode is the command's exit status, or 128+N when signal N killed
	// it. Valid once Done is closed.
	ExitCode() int
	// Signal sends sig to every process of the attempt (the process group).
	// Signaling an attempt that already ended is not an error.
	Signal(sig syscall.Signal) error
}

// Adopter is an optional ability of a runtime whose commands outlive the
// agent (docker): a restarted agent asks it for an attempt it had started
// instead of reporting the attempt lost, and has it remove what no attempt
// claims.
type Adopter interface {
	// Adopt returns a Handle on the command of attempt share k on node
	// nodeID, running or already exited; nil and no error when there is
	// none.
	Adopt(ctx context.Context, nodeID string, k api.AttemptKey) (Handle, error)
	// Sweep removes the commands of node nodeID whose keys keep rejects.
	Sweep(ctx context.Context, nodeID string, keep func(api.AttemptKey) bool) error
}

// Detacher is an optional ability of a Handle whose command can outlive
// the agent: Detach stops watching it (Output ends, Done never closes)
// and leaves it running.
type Detacher interface {
	Detach()
}

// Remover is an optional ability of a Handle that leaves something behind
// once its command ended (a container): Remove deletes it.
type Remover interface {
	Remove(ctx context.Context) error
}

// ExitNote is an optional ability of a Handle: once Done is closed,
// ExitNote says why the runtime ended the command ("killed: out of
// memory"), or "".
type ExitNote interface {
	ExitNote() string
}

// Exit codes reported for commands that never ran, after the shell's
// conventions (and Docker's 125 for a failure before the command).
const (
	ExitPrepareFailed = 125 // the work dir or source snapshot could not be made ready
	ExitNotExecutable = 126 // the command exists but cannot be executed
	ExitNotFound      = 127 // the command was not found
)

// exitStoppedBeforeStart is reported for an attempt stopped before its
// command started (the head wants an exit code on every exited report):
// the code of a command ended by SIGTERM.
const exitStoppedBeforeStart = 128 + 15

// StartError says why a command could not be started.
type StartError struct {
	// Code is the exit code to report (ExitNotFound, ExitNotExecutable...).
	Code int
	// Reason says what went wrong, in words for the user.
	Reason string
	Err    error
}

func (e *StartError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Reason, e.Err)
	}
	return e.Reason
}

func (e *StartError) Unwrap() error { return e.Err }
