package api

import "time"

// Node is one worker machine of a target, as the head knows it.
type Node struct {
	ID     string `json:"id"`
	Target string `json:"target"`
	State  string `json:"state"`
	// Reason says in words why the node is in its state (unusable, leaving...).
	Reason string `json:"reason,omitempty"`
	VMSize string `json:"vm_size"`
	// Priority is the target's vm_priority when the node was made.
	Priority string `json:"vm_priority"`
	// ProviderID is the provider's handle for the machine (pid, container id...).
	ProviderID string `json:"provider_id,omitempty"`
	// Host is the attached machine the node runs on (ssh provider).
	Host string `json:"host,omitempty"`
	// Address is where the node's agent serves (host:port), once registered.
	Address  string `json:"address,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	// Capacity is what the node offers to runs (from its vm_size, checked
	// against what the agent found).
	Capacity Resources `json:"capacity"`
	GPUs     []GPU     `json:"gpus,omitempty"`
	// HostKey is the agent's SSH host public key (authorized_keys format).
	HostKey      string   `json:"host_key,omitempty"`
	AgentVersion string   `json:"agent_version,omitempty"`
	Runtimes     []string `json:"runtimes,omitempty"`
	// SSHPort is the port of the agent's SSH server on Address's host
	// (0: none).
	SSHPort int `json:"ssh_port,omitempty"`

	CreatedAt    time.Time `json:"created_at"`
	RegisteredAt time.Time `json:"registered_at,omitzero"`
	// IdleSince is when the node last had no attempt on it (zero while busy
	// or preparing).
	IdleSince time.Time `json:"idle_since,omitzero"`
	// EvictionDeadline is set on a preempted node that got notice: the
	// attempts on it have until then to stop before the machine is taken.
	EvictionDeadline time.Time `json:"eviction_deadline,omitzero"`
	// StateChangedAt is when State last changed.
	StateChangedAt time.Time `json:"state_changed_at"`
	CreateIndex    uint64    `json:"create_index"`
	ModifyIndex    uint64    `json:"modify_index"`
}

// Ready reports whether runs can be placed on the node.
func (n *Node) Ready() bool { return n.State == NodeIdle || n.State == NodeRunning }

// Copy returns a copy of n that shares nothing mutable with it.
func (n *Node) Copy() *Node {
	c := *n
	c.GPUs = append([]GPU(nil), n.GPUs...)
	c.Runtimes = append([]string(nil), n.Runtimes...)
	return &c
}

// NodeView is a node with the work on it, as `compute list-nodes` shows it.
type NodeView struct {
	Node
	Allocated Resources `json:"allocated"`
	// Runs lists the run IDs with a live attempt on the node.
	Runs []string `json:"runs,omitempty"`
	// GPURuns maps the UUID of each GPU in use to the run that holds it.
	GPURuns map[string]string `json:"gpu_runs,omitempty"`
}
