package api

import "time"

// TargetSpec is what a user asks for when creating a compute target. The
// JSON names are the YAML keys of `amlctl compute create -f`.
type TargetSpec struct {
	Name string `json:"name"`
	// Type is the target kind: cluster or instance (remote targets are made
	// by attaching a machine: `amlctl compute attach remote`).
	Type string `json:"type"`
	// VMSize names an entry of the size catalogue (`amlctl compute list-sizes`).
	VMSize string `json:"vm_size"`
	// MinNodes is kept running even when idle (default 0).
	MinNodes int `json:"min_nodes"`
	// MaxNodes is required, at least 1 and at least MinNodes.
	MaxNodes int `json:"max_nodes"`
	// IdleSecondsBeforeScaledown: an idle node older than this is removed,
	// down to MinNodes (default 120). Nil in a request means the default.
	IdleSecondsBeforeScaledown *int `json:"idle_seconds_before_scaledown,omitempty"`
	// VMPriority is dedicated (default) or lowpriority.
	VMPriority string `json:"vm_priority"`
	// Provider creates the nodes: local (default), ssh (a pool of attached
	// hosts) or exec (the user's scripts).
	Provider string `json:"provider"`
	// Preemption is none (default) or requeue (priority preemption).
	Preemption string `json:"preemption,omitempty"`
	// Description is free text.
	Description string `json:"description,omitempty"`
	// PreemptionGraceSeconds is how long an attempt that is preempted
	// (evicted node, or priority preemption) has between SIGTERM and
	// SIGKILL to save a checkpoint; nil means the head's default
	// (--preemption-grace, 30 s).
	PreemptionGraceSeconds *int `json:"preemption_grace_seconds,omitempty"`

	// IdleSecondsBeforeShutdown stops an instance whose node has been idle
	// (no run on it, none queued) this long; nil or 0 never stops it.
	IdleSecondsBeforeShutdown *int `json:"idle_seconds_before_shutdown,omitempty"`
	// CreateCommand, DeleteCommand and ListCommand are the scripts of the
	// exec provider (absolute paths of executables on the heads); see
	// docs/exec-provider.md. ListCommand is optional.
	CreateCommand string `json:"create_command,omitempty"`
	DeleteCommand string `json:"delete_command,omitempty"`
	ListCommand   string `json:"list_command,omitempty"`
	// SSHPublicAccess lets the owner of an instance of the ssh provider log
	// in to its machine with SSHPublicKey (authorized_keys format) while the
	// instance runs.
	SSHPublicAccess bool   `json:"ssh_public_access,omitempty"`
	SSHPublicKey    string `json:"ssh_public_key,omitempty"`
}

// ProvisioningError is one error met while creating or deleting nodes.
type ProvisioningError struct {
	Time    time.Time `json:"time"`
	Code    string    `json:"code"`
	Message string    `json:"message"`
}

// NodeStateCounts counts a cluster's nodes by state.
type NodeStateCounts struct {
	Idle      int `json:"idle"`
	Running   int `json:"running"`
	Preparing int `json:"preparing"`
	Unusable  int `json:"unusable"`
	Leaving   int `json:"leaving"`
	Preempted int `json:"preempted"`
}

// Add counts one node in state s.
func (c *NodeStateCounts) Add(s string) {
	switch s {
	case NodeIdle:
		c.Idle++
	case NodeRunning:
		c.Running++
	case NodePreparing:
		c.Preparing++
	case NodeUnusable:
		c.Unusable++
	case NodeLeaving:
		c.Leaving++
	case NodePreempted:
		c.Preempted++
	}
}

// Target is a compute target with its spec and status.
type Target struct {
	TargetSpec
	// Owner is the user who created the target.
	Owner string `json:"owner,omitempty"`

	ProvisioningState  string              `json:"provisioning_state"`
	AllocationState    string              `json:"allocation_state,omitempty"`
	CurrentNodeCount   int                 `json:"current_node_count"`
	TargetNodeCount    int                 `json:"target_node_count"`
	NodeStateCounts    NodeStateCounts     `json:"node_state_counts"`
	ProvisioningErrors []ProvisioningError `json:"provisioning_errors"`
	// ScaleReason says in words why the target node count is what it is.
	ScaleReason string `json:"scale_reason,omitempty"`
	// ProviderFailures counts consecutive failed provider calls (drives backoff).
	ProviderFailures int `json:"provider_failures,omitempty"`
	// LastProviderFailure is when the last of them happened.
	LastProviderFailure time.Time `json:"last_provider_failure,omitzero"`

	// Host is the attached machine behind a remote target, or the pool host
	// an ssh-backed instance holds.
	Host string `json:"host,omitempty"`
	// Size is the node shape of a target whose machine is not from the
	// vm_size catalogue (a remote target: what attach found); VMSize then
	// names it.
	Size *VMSize `json:"size,omitempty"`
	// Stopped is set by `compute stop` (or an idle shutdown) on an instance
	// or remote target: its node is removed, its queued runs wait.
	Stopped bool `json:"stopped,omitempty"`
	// StopReason says why it was stopped.
	StopReason string `json:"stop_reason,omitempty"`
	// State is an instance's or remote target's state in words: Starting,
	// Running, Stopping or Stopped (derived; empty for clusters).
	State string `json:"state,omitempty"`

	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`
}

// IdleSeconds returns the resolved idle_seconds_before_scaledown.
func (t *Target) IdleSeconds() int {
	if t.IdleSecondsBeforeScaledown == nil {
		return DefaultIdleSecondsBeforeScaledown
	}
	return *t.IdleSecondsBeforeScaledown
}

// Copy returns a copy of t that shares nothing mutable with it.
func (t *Target) Copy() *Target {
	c := *t
	if t.IdleSecondsBeforeScaledown != nil {
		v := *t.IdleSecondsBeforeScaledown
		c.IdleSecondsBeforeScaledown = &v
	}
	if t.PreemptionGraceSeconds != nil {
		v := *t.PreemptionGraceSeconds
		c.PreemptionGraceSeconds = &v
	}
	c.ProvisioningErrors = append([]ProvisioningError(nil), t.ProvisioningErrors...)
	if t.IdleSecondsBeforeShutdown != nil {
		v := *t.IdleSecondsBeforeShutdown
		c.IdleSecondsBeforeShutdown = &v
	}
	if t.Size != nil {
		v := *t.Size
		c.Size = &v
	}
	return &c
}

// TargetUpdate changes a target's scaling settings; nil fields are left alone.
type TargetUpdate struct {
	MinNodes                   *int    `json:"min_nodes,omitempty"`
	MaxNodes                   *int    `json:"max_nodes,omitempty"`
	IdleSecondsBeforeScaledown *int    `json:"idle_seconds_before_scaledown,omitempty"`
	Preemption                 *string `json:"preemption,omitempty"`
	Description                *string `json:"description,omitempty"`
	PreemptionGraceSeconds     *int    `json:"preemption_grace_seconds,omitempty"`
}
