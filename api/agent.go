package api

// The agent protocol: what `amld agent` and a head exchange. Agents
// authenticate with the join token to register, then with the node token the
// head gave them.

// RegisterRequest is an agent's first call.
type RegisterRequest struct {
	// NodeID is set when a provider made the node and told the agent its ID;
	// empty when an operator started the agent by hand.
	NodeID string `json:"node_id,omitempty"`
	// Target is the target to join when NodeID is empty.
	Target   string    `json:"target,omitempty"`
	Hostname string    `json:"hostname"`
	Address  string    `json:"address"`
	Capacity Resources `json:"capacity"`
	GPUs     []GPU     `json:"gpus,omitempty"`
	HostKey  string    `json:"host_key,omitempty"`
	Version  string    `json:"version"`
	Runtimes []string  `json:"runtimes"`
	// GPUError says why the agent found no GPUs (no NVML library, a build
	// without cgo) or could not read some of them; empty when all is well.
	GPUError string `json:"gpu_error,omitempty"`
}

// RegisterResponse gives the agent its identity and credential.
type RegisterResponse struct {
	NodeID string `json:"node_id"`
	// NodeToken authenticates the agent's later calls. It is shown once.
	NodeToken string `json:"node_token"`
	// HeartbeatIntervalMS is how often the agent must heartbeat.
	HeartbeatIntervalMS int `json:"heartbeat_interval_ms"`
	// Unusable, when set, says why the head marked the node unusable at
	// registration (it found fewer GPUs than its vm_size promises); the
	// node gets no runs and is removed.
	Unusable string `json:"unusable,omitempty"`
}

// HeartbeatRequest says the agent is alive.
type HeartbeatRequest struct {
	NodeID string `json:"node_id"`
}

// Assignment is one attempt an agent must run (or stop) on its node.
type Assignment struct {
	RunID   string `json:"run_id"`
	Attempt int    `json:"attempt"`
	// NodeIndex is this node's rank among the attempt's nodes.
	NodeIndex int     `json:"node_index"`
	Run       RunSpec `json:"run"`
	// Allocation is what the attempt holds on this node.
	Allocation Allocation `json:"allocation"`
	// Peers are the addresses of all the attempt's nodes, in rank order.
	Peers []string `json:"peers"`
	// Stop is true when the attempt must be killed (canceled, fenced, or
	// another node of the gang failed).
	Stop bool `json:"stop"`
	// StopReason says why.
	StopReason string `json:"stop_reason,omitempty"`
	// GraceSeconds, when Stop is set and it is positive, is how long the
	// command has between SIGTERM and SIGKILL (a preemption's notice); 0
	// means the agent's own kill grace.
	GraceSeconds int `json:"grace_seconds,omitempty"`
}

// Key identifies an assignment's attempt on a node.
func (a Assignment) Key() AttemptKey {
	return AttemptKey{RunID: a.RunID, Attempt: a.Attempt, NodeIndex: a.NodeIndex}
}

// AttemptKey names one node's share of one attempt.
type AttemptKey struct {
	RunID     string `json:"run_id"`
	Attempt   int    `json:"attempt"`
	NodeIndex int    `json:"node_index"`
}

// AssignmentsResponse is what a node should be running now.
type AssignmentsResponse struct {
	// Index is the state index this answer reflects; pass it back as
	// `index` to wait for the next change.
	Index       uint64       `json:"index"`
	Assignments []Assignment `json:"assignments"`
	// Shutdown tells the agent its node was removed: stop everything and exit.
	Shutdown bool `json:"shutdown,omitempty"`
}

// AttemptStatus is an agent's report of a transition of one attempt on its node.
type AttemptStatus struct {
	AttemptKey
	// State is running, finalizing or exited.
	State    string `json:"state"`
	ExitCode *int   `json:"exit_code,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// OutputsID names the uploaded outputs blob (node 0, state exited).
	OutputsID string `json:"outputs_id,omitempty"`
	// TimedOut is true when the agent killed the command for running past
	// max_run_duration_seconds: the run fails without retries.
	TimedOut bool `json:"timed_out,omitempty"`
	// Lost is true when the agent lost the attempt through no fault of the
	// command (the agent restarted and could not re-adopt it): the run is
	// requeued as after a lost node, without spending max_retries.
	Lost bool `json:"lost,omitempty"`
	// Stopped is true when the agent stopped the command (SIGTERM) because
	// the head asked it to, so an exit code of 0 does not mean the command
	// finished its work.
	Stopped bool `json:"stopped,omitempty"`
}

// LogAppend ships a chunk of one node's output of one attempt. Offset is
// where Data starts in the stream; the head ignores what it already has, so
// an agent may resend after an error.
type LogAppend struct {
	AttemptKey
	Offset int64  `json:"offset"`
	Data   []byte `json:"data"`
}

// LogChunk is a piece of a run's output as clients read it.
type LogChunk struct {
	// Data is the output from Offset on.
	Data []byte `json:"data"`
	// Offset is where Data starts; NextOffset is where to ask from next.
	Offset     int64 `json:"offset"`
	NextOffset int64 `json:"next_offset"`
	// Attempt and NodeIndex say which stream this is.
	Attempt   int `json:"attempt"`
	NodeIndex int `json:"node_index"`
	// Complete is true when the stream will grow no more.
	Complete bool `json:"complete"`
	// Index is the state index to pass as `index` to wait for more.
	Index uint64 `json:"index"`
}

// BlobRef names an uploaded blob.
type BlobRef struct {
	ID     string `json:"id"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}
