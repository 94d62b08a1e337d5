package raftstore

import "time"

// NodeEvictRequest records that a node's machine is being taken away (a
// spot VM evicted by its provider, or a simulated eviction): the node
// becomes preempted with Reason and, with GraceSeconds > 0, an
// EvictionDeadline of Time+GraceSeconds (an earlier deadline is kept).
// Every live attempt holding the node is asked to stop: its StopReason
// becomes "preempted: node N <reason>" (unless it is stopping already) and
// its agents SIGTERM the command and SIGKILL it after the grace; the run is
// requeued at its original place when the attempt's end is reported
// (Preemptions+1, Failed past max_preemptions, Canceled if a cancel was
// asked), without spending max_retries, whatever the exit code, unless the
// command finished by itself with exit code 0. With GraceSeconds 0 those
// attempts end at once, the same way. Refused (409) for a node that is
// leaving or unusable, (404) for an unknown one.
type NodeEvictRequest struct {
	NodeID       string    `json:"node_id"`
	Reason       string    `json:"reason"`
	GraceSeconds int       `json:"grace_seconds"`
	Time         time.Time `json:"time"`
}

// CheckpointPutRequest stores an attempt's checkpoint as its run's latest
// (Run.CheckpointID, CheckpointSize, CheckpointAttempt, CheckpointAt) and
// drops the run's previous checkpoint blob. It is fenced like an attempt
// report: only the node holding rank 0 of the run's current, live attempt
// may store one. Blob.ID is chosen by the proposer and must be unique to
// the run; a blob over api.MaxCheckpointBytes is refused (413). Storing the
// run's current checkpoint again changes nothing. A run's checkpoint blob
// is dropped when the run ends.
type CheckpointPutRequest struct {
	NodeID  string    `json:"node_id"`
	RunID   string    `json:"run_id"`
	Attempt int       `json:"attempt"`
	Blob    *Blob     `json:"blob"`
	Time    time.Time `json:"time"`
}
