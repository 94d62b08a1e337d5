package api

import "time"

// Host kinds: what an attached machine is for.
const (
	// HostRemote backs a remote target of its own (`compute attach remote`).
	HostRemote = "remote"
	// HostPool joins the ssh provider's pool, from which clusters and
	// instances with --provider ssh take machines (`compute attach host`).
	HostPool = "pool"
)

// Host states.
const (
	HostAttached  = "Attached"
	HostDetaching = "Detaching"
)

// Host authentication methods, as shown (the secrets themselves never are).
const (
	AuthKey           = "key"
	AuthKeyPassphrase = "key+passphrase"
	AuthPassword      = "password"
)

// Agent modes on an attached machine.
const (
	AgentSystemd = "systemd" // a systemd unit per node
	AgentProcess = "process" // a supervised background process with a pid file
)

// AttachRequest attaches an existing machine over SSH. PrivateKey,
// PrivateKeyPassphrase and Password are secrets: the head stores them
// encrypted and never shows or logs them.
type AttachRequest struct {
	Name string `json:"name"`
	// Kind is remote (default) or pool.
	Kind     string `json:"kind,omitempty"`
	Address  string `json:"address"`
	SSHPort  int    `json:"ssh_port,omitempty"`
	Username string `json:"username"`
	// PrivateKey is the PEM (OpenSSH or PKCS#8) private key, or empty when
	// Password is used.
	PrivateKey           string `json:"private_key,omitempty"`
	PrivateKeyPassphrase string `json:"private_key_passphrase,omitempty"`
	Password             string `json:"password,omitempty"`
	// HostKeyFingerprint is the expected SHA256:... fingerprint of the
	// machine's host key. Without it the head refuses, showing the
	// fingerprint it was offered, unless AcceptHostKey is set.
	HostKeyFingerprint string `json:"host_key_fingerprint,omitempty"`
	AcceptHostKey      bool   `json:"accept_host_key,omitempty"`
	// VMSize optionally names a catalogue size to offer instead of the
	// whole machine (remote only).
	VMSize      string `json:"vm_size,omitempty"`
	Description string `json:"description,omitempty"`
}

// Finding is one check of a machine at attach.
type Finding struct {
	// Check names what was looked at: os, cpu, memory, disk, docker, gpus,
	// init, install.
	Check string `json:"check"`
	// Status is ok, info, warn or fail; a fail refuses the attachment.
	Status string `json:"status"`
	Detail string `json:"detail"`
}

// Finding statuses.
const (
	FindingOK   = "ok"
	FindingInfo = "info"
	FindingWarn = "warn"
	FindingFail = "fail"
)

// HostFacts is what the head found on an attached machine.
type HostFacts struct {
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	Kernel     string `json:"kernel,omitempty"`
	Distro     string `json:"distro,omitempty"`
	CPUs       int    `json:"cpus"`
	MemoryMB   int64  `json:"memory_mb"`
	DiskFreeMB int64  `json:"disk_free_mb,omitempty"`
	Home       string `json:"home,omitempty"`
	// Docker is the engine's version, empty when there is none.
	Docker string `json:"docker,omitempty"`
	GPUs   []GPU  `json:"gpus,omitempty"`
	// Systemd is true when systemd runs there; Root and Sudo say whether
	// the user may install units.
	Systemd bool `json:"systemd"`
	Root    bool `json:"root"`
	Sudo    bool `json:"sudo"`
}

// Host is an attached machine, as users see it (never with its secrets).
type Host struct {
	Name string `json:"name"`
	// Kind is remote or pool.
	Kind string `json:"kind"`
	// Target is the remote target this host backs (kind remote).
	Target   string `json:"target,omitempty"`
	Address  string `json:"address"`
	SSHPort  int    `json:"ssh_port"`
	Username string `json:"username"`
	// Auth is key, key+passphrase or password.
	Auth string `json:"auth"`
	// HostKey is the pinned host public key (authorized_keys format) and
	// HostKeyFingerprint its SHA256 fingerprint.
	HostKey            string    `json:"host_key"`
	HostKeyFingerprint string    `json:"host_key_fingerprint"`
	Facts              HostFacts `json:"facts"`
	// AgentMode is systemd or process: how agents run there.
	AgentMode string `json:"agent_mode"`
	State     string `json:"state"`
	// Force (while Detaching) removes the record without touching the
	// machine, for one that is gone for good.
	Force bool   `json:"force,omitempty"`
	Owner string `json:"owner,omitempty"`
	// Node is the node now running on the host, if any (derived).
	Node string `json:"node,omitempty"`
	// HeldBy names the instance that holds this pool host (derived).
	HeldBy      string    `json:"held_by,omitempty"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`
}

// Copy returns a copy of h that shares nothing mutable with it.
func (h *Host) Copy() *Host {
	c := *h
	c.Facts.GPUs = append([]GPU(nil), h.Facts.GPUs...)
	return &c
}

// AttachResult is the answer to an attachment: the host, its remote target
// (kind remote) and what the checks found.
type AttachResult struct {
	Host     *Host     `json:"host"`
	Target   *Target   `json:"target,omitempty"`
	Findings []Finding `json:"findings"`
}

// HostKeyInfo is a machine's host key as the head sees it.
type HostKeyInfo struct {
	Address     string `json:"address"`
	Type        string `json:"type"`
	Fingerprint string `json:"fingerprint"`
}
