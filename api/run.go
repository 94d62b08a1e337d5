package api

import (
	"maps"
	"time"
)

// Environment is where a run's command runs.
type Environment struct {
	// Image is a Docker image; empty means the node's own environment
	// (process runtime).
	Image string `json:"image,omitempty"`
}

// SizedEnv returns env's entries in a map sized to them (nil for none).
// github.com/segmentio/encoding/json, which the heads decode the log with
// and the Go client decodes answers with, makes every map[string]string
// with room for 64 entries, about 5 KB: a head kept one in every run it
// stored, and a client one in every run of a list.
func SizedEnv(env map[string]string) map[string]string {
	if len(env) == 0 {
		return nil
	}
	out := make(map[string]string, len(env))
	for k, v := range env {
		out[k] = v
	}
	return out
}

// RunSpec is what a user submits. The JSON names are the YAML keys of
// `amlctl job submit -f` (which adds `source`, a local directory the CLI
// uploads and replaces with SourceID).
type RunSpec struct {
	Target string `json:"target"`
	// Command is the argv to run; it is run as is, not through a shell.
	Command     []string          `json:"command"`
	Environment Environment       `json:"environment"`
	Env         map[string]string `json:"env,omitempty"`
	// SourceID names an uploaded source snapshot (a blob); empty for none.
	SourceID string `json:"source_id,omitempty"`
	// Resources per node; nil means the whole node.
	Resources           *Resources `json:"resources,omitempty"`
	NodeCount           int        `json:"node_count,omitempty"`
	ProcessCountPerNode int        `json:"process_count_per_node,omitempty"`
	// Distribution is mpi (default for node_count > 1 or process_count_per_node > 1)
	// or none.
	Distribution string `json:"distribution,omitempty"`
	// Priority: higher runs first (default 0).
	Priority int `json:"priority,omitempty"`
	// MaxRetries: how many times a failed command is run again (default 0).
	MaxRetries int `json:"max_retries,omitempty"`
	// MaxPreemptions caps restarts after lost or preempted nodes (default 10);
	// nil means the default.
	MaxPreemptions *int `json:"max_preemptions,omitempty"`
	// MaxRunDurationSeconds kills an attempt that runs longer (0: no limit).
	MaxRunDurationSeconds int    `json:"max_run_duration_seconds,omitempty"`
	DisplayName           string `json:"display_name,omitempty"`
}

// Allocation is what an attempt holds on one node.
type Allocation struct {
	NodeID    string    `json:"node_id"`
	Resources Resources `json:"resources"`
	// GPUUUIDs are the devices handed to the attempt on this node.
	GPUUUIDs []string `json:"gpu_uuids,omitempty"`
}

// NodeAttempt is an attempt's state on one of its nodes.
type NodeAttempt struct {
	State    string    `json:"state"`
	ExitCode *int      `json:"exit_code,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Started  time.Time `json:"started_at,omitzero"`
	Ended    time.Time `json:"ended_at,omitzero"`
}

// Attempt is one try at running a run. Attempts are numbered from 1.
type Attempt struct {
	Number int `json:"number"`
	// Allocations, in node-rank order: Allocations[0] is node 0.
	Allocations []Allocation  `json:"allocations"`
	Nodes       []NodeAttempt `json:"nodes"`
	PlacedAt    time.Time     `json:"placed_at"`
	StartedAt   time.Time     `json:"started_at,omitzero"`
	EndedAt     time.Time     `json:"ended_at,omitzero"`
	ExitCode    *int          `json:"exit_code,omitempty"`
	// Reason says how the attempt ended ("exit code 1", "preempted",
	// "node n-1 lost: missed heartbeats", "canceled", ...).
	Reason string `json:"reason,omitempty"`
	// Ended is true once the attempt is over (every node stopped, or it was
	// fenced off after a lost node).
	Ended bool `json:"ended"`
	// OutputsID names the blob of outputs collected from node 0.
	OutputsID string `json:"outputs_id,omitempty"`
	// StopReason is set while the attempt is being stopped to be requeued
	// (its node was evicted, or a run of higher priority preempted it): its
	// agents SIGTERM the command and give it StopGraceSeconds before
	// SIGKILL; the attempt then ends with this reason ("preempted: ...").
	StopReason       string    `json:"stop_reason,omitempty"`
	StopDeadline     time.Time `json:"stop_deadline,omitzero"`
	StopGraceSeconds int       `json:"stop_grace_seconds,omitempty"`
}

// Copy returns a copy of a that shares nothing mutable with it.
func (a Attempt) Copy() Attempt {
	c := a
	c.Allocations = make([]Allocation, len(a.Allocations))
	for i, al := range a.Allocations {
		al.GPUUUIDs = append([]string(nil), al.GPUUUIDs...)
		c.Allocations[i] = al
	}
	c.Nodes = make([]NodeAttempt, len(a.Nodes))
	for i, n := range a.Nodes {
		if n.ExitCode != nil {
			v := *n.ExitCode
			n.ExitCode = &v
		}
		c.Nodes[i] = n
	}
	if a.ExitCode != nil {
		v := *a.ExitCode
		c.ExitCode = &v
	}
	return c
}

// Run is a submitted job with its state and attempts.
type Run struct {
	RunSpec
	ID    string `json:"id"`
	Owner string `json:"owner,omitempty"`
	State string `json:"state"`
	// Reason says in words why the run is in its state; a queued run always
	// has one ("waiting for 2 nodes of cpu-2: cluster at max_nodes=4, 4 running").
	Reason string `json:"reason,omitempty"`
	// Request is the resolved per-node request (defaults applied at submit).
	Request Resources `json:"request"`
	// QueueSeq orders runs of equal priority: the Raft index of the submit
	// times 1024, plus its place among the submits committed in that entry.
	// A requeued run keeps it, so it goes back to its original place.
	QueueSeq    uint64    `json:"queue_seq"`
	SubmittedAt time.Time `json:"submitted_at"`
	StartedAt   time.Time `json:"started_at,omitzero"`
	EndedAt     time.Time `json:"ended_at,omitzero"`
	ExitCode    *int      `json:"exit_code,omitempty"`
	// Retries counts attempts that failed by the command's fault.
	Retries int `json:"retries"`
	// Preemptions counts attempts lost to preempted or lost nodes.
	Preemptions int       `json:"preemptions"`
	Attempts    []Attempt `json:"attempts,omitempty"`
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`

	// CheckpointID names the blob holding the run's latest checkpoint (a
	// gzip'd tar of an attempt's AML_CHECKPOINT_DIR), restored into the
	// next attempt's AML_CHECKPOINT_DIR; empty when there is none, or once
	// the run ended (the blob is dropped then). CheckpointSize,
	// CheckpointAttempt and CheckpointAt say what the last upload was.
	CheckpointID      string    `json:"checkpoint_id,omitempty"`
	CheckpointSize    int64     `json:"checkpoint_size,omitempty"`
	CheckpointAttempt int       `json:"checkpoint_attempt,omitempty"`
	CheckpointAt      time.Time `json:"checkpoint_at,omitzero"`

	// Private runs (those of instances) are seen by their owner and admins only.
	Private bool `json:"private,omitempty"`
}

// Copy returns a copy of r that shares nothing mutable with it.
func (r *Run) Copy() *Run {
	c := *r
	c.Command = append([]string(nil), r.Command...)
	c.Env = maps.Clone(r.Env)
	if r.Resources != nil {
		v := *r.Resources
		c.Resources = &v
	}
	if r.MaxPreemptions != nil {
		v := *r.MaxPreemptions
		c.MaxPreemptions = &v
	}
	if r.ExitCode != nil {
		v := *r.ExitCode
		c.ExitCode = &v
	}
	c.Attempts = make([]Attempt, len(r.Attempts))
	for i, a := range r.Attempts {
		c.Attempts[i] = a.Copy()
	}
	return &c
}

// Current returns the run's latest attempt, or nil before its first.
func (r *Run) Current() *Attempt {
	if len(r.Attempts) == 0 {
		return nil
	}
	return &r.Attempts[len(r.Attempts)-1]
}

// MaxPreemptionsOrDefault resolves MaxPreemptions.
func (r *Run) MaxPreemptionsOrDefault() int {
	if r.MaxPreemptions == nil {
		return DefaultMaxPreemptions
	}
	return *r.MaxPreemptions
}

// LiveAttempt returns the attempt that holds nodes, or nil.
func (r *Run) LiveAttempt() *Attempt {
	a := r.Current()
	if a == nil || a.Ended {
		return nil
	}
	return a
}
