// Package agent is `amld agent`: the daemon on every node that joins the
// heads and runs the attempts they assign to the node.
//
// The agent registers with the join token (or reuses the node token it saved
// in WorkDir/node.json), heartbeats at the interval the head gives, and
// watches the node's assignments with a blocking query. Each assignment is one
// node's share of one attempt of a run; the agent starts it through a
// Runtime (the docker runtime for a run with an image, when an engine
// answered at start; the process runtime otherwise), ships its merged
// stdout and stderr to the head as it comes, enforces the run's
// max_run_duration_seconds, and reports every transition: running, then
// finalizing and exited with the exit code and the outputs collected from
// outputs/ on node 0. An attempt that disappears from the assignments, or
// comes with Stop, is killed: SIGTERM to its process group, KillGrace, SIGKILL.
//
// Head errors (network errors, 5xx) are retried with capped exponential
// backoff for as long as the agent runs. A 401 means the node token is gone:
// the agent registers again with the join token under the same node ID. A 409
// on a report of an attempt means the head fenced the attempt off: the agent
// kills it and reports it no more. A 404 from a heartbeat, or an assignments
// answer with Shutdown, means the node was removed: Run stops everything and
// returns ErrNodeRemoved.
//
// Layout of WorkDir:
//
//	node.json                          node ID and token (0600)
//	attempts/<run>.<attempt>.<node>.json  one record per attempt started here
//	runs/<run>/<attempt>/<node>/       an attempt's work dir (removed at its end)
//	checkpoints/<run>/                 AML_CHECKPOINT_DIR, kept across attempts
//
// The attempt records make restarts safe: an assignment the agent has a
// record of but no process for was started by an earlier agent process. A
// runtime that can adopt (docker: the container, found by its labels, is
// still there, running or exited) hands it back and the agent follows it to
// its end; otherwise the attempt is reported lost (Lost=true). It is never
// started twice. After the first assignments answer, containers no attempt
// claims are removed.
//
// On cancellation of Run's context (SIGTERM to the daemon) the agent kills
// its attempts (with KeepContainers, containers are left running for the
// next agent process to adopt), reports nothing further and returns nil.
package agent
