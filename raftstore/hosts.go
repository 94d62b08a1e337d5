package raftstore

import (
	"time"

	"github.com/amld/amld/api"
)

// Host is an attached machine: what users see of it, and its credentials
// sealed by the heads' secrets key.
type Host struct {
	api.Host
	// Sealed holds the SSH credentials (private key, passphrase, password)
	// sealed with AES-256-GCM under the heads' secrets key, which KeyID
	// names. It is never shown.
	Sealed []byte `json:"sealed"`
	KeyID  string `json:"key_id"`
}

// Copy returns a copy of h that shares nothing mutable with it.
func (h *Host) Copy() *Host {
	return &Host{Host: *h.Host.Copy(), Sealed: append([]byte(nil), h.Sealed...), KeyID: h.KeyID}
}

// HostAttachRequest adds an attached machine in state Attached and, for kind
// remote, its target (named as the host, Host set to it). Refused (409) when
// the name is taken by a host or a target, or when another host has the same
// host key fingerprint: the same machine, which the error names.
type HostAttachRequest struct {
	Host   *Host       `json:"host"`
	Target *api.Target `json:"target,omitempty"`
	Time   time.Time   `json:"time"`
}

// HostDetachRequest marks a host Detaching (Force: remove the record without
// touching the machine); its remote target becomes Deleting, as by
// TargetDeleteRequest. The leader then removes the node on it, uninstalls the
// agent and sends HostRemoveRequest. Refused (409) while an instance holds the
// host.
type HostDetachRequest struct {
	Name  string    `json:"name"`
	Force bool      `json:"force,omitempty"`
	Time  time.Time `json:"time"`
}

// HostRemoveRequest drops a Detaching host that no node runs on and no
// target names.
type HostRemoveRequest struct {
	Name string `json:"name"`
}

// TargetPowerRequest stops (Stopped true, with Reason) or starts an instance
// or a remote target. A stopped target's node is removed by the leader; its
// queued runs wait.
type TargetPowerRequest struct {
	Name    string    `json:"name"`
	Stopped bool      `json:"stopped"`
	Reason  string    `json:"reason,omitempty"`
	Time    time.Time `json:"time"`
}

// NodeProviderRequest records the provider's handle for a node's machine,
// once the provider made it. A node that is gone is not an error (404).
type NodeProviderRequest struct {
	NodeID     string `json:"node_id"`
	ProviderID string `json:"provider_id"`
}

func (a *applier) host(name string) *Host { return first[Host](a.txn, tableHosts, name) }

func (a *applier) hostAttach(r *HostAttachRequest) error {
	h := r.Host
	if h == nil {
		return api.Invalid("host", "is required")
	}
	if err := checkKey("name", h.Name); err != nil {
		return err
	}
	if err := checkKey("host_key_fingerprint", h.HostKeyFingerprint); err != nil {
		return err
	}
	if len(h.Sealed) == 0 {
		return api.Invalid("sealed", "is required: the host's credentials")
	}
	if a.host(h.Name) != nil {
		return api.Conflict("a host named %q is already attached", h.Name)
	}
	if a.target(h.Name) != nil {
		return api.Conflict("target %q already exists", h.Name)
	}
	for _, o := range collect[Host](a.txn, tableHosts, indexID) {
		if o.HostKeyFingerprint == h.HostKeyFingerprint {
			return api.Conflict("this machine (host key %s) is already attached as %s", h.HostKeyFingerprint, o.Name)
		}
	}
	switch h.Kind {
	case api.HostRemote:
		t := r.Target
		if t == nil || t.Name != h.Name || t.Type != api.KindRemote {
			return api.Invalid("target", "a remote host needs its remote target, named as the host")
		}
		t.Host = h.Name
		if t.ProvisioningState == "" {
			t.ProvisioningState = api.ProvisioningSucceeded
		}
		t.CreateIndex = a.index
		a.putTarget(t)
		a.touchTarget(t.Name)
		h.Target = t.Name
	case api.HostPool:
		if r.Target != nil {
			return api.Invalid("target", "a pool host has no target of its own")
		}
		h.Target = ""
	default:
		return api.Invalid("kind", "must be %s or %s", api.HostRemote, api.HostPool)
	}
	h.State = api.HostAttached
	h.Node, h.HeldBy = "", ""
	h.CreateIndex = a.index
	h.ModifyIndex = a.index
	a.insert(tableHosts, h)
	return nil
}

func (a *applier) hostDetach(r *HostDetachRequest) error {
	old := a.host(r.Name)
	if old == nil {
		return api.NotFound("no host named %q", r.Name)
	}
	for _, t := range collect[api.Target](a.txn, tableTargets, indexID) {
		if t.Host == r.Name && t.Type == api.KindInstance {
			return api.FailedPrecondition("host %s holds instance %s: delete the instance first", r.Name, t.Name)
		}
	}
	if old.State != api.HostDetaching || (r.Force && !old.Force) {
		h := old.Copy()
		h.State = api.HostDetaching
		h.Force = h.Force || r.Force
		h.ModifyIndex = a.index
		a.insert(tableHosts, h)
	}
	if t := a.target(old.Target); t != nil && t.ProvisioningState != api.ProvisioningDeleting {
		return a.targetDelete(&TargetDeleteRequest{Name: t.Name, Time: r.Time})
	}
	return nil
}

func (a *applier) hostRemove(r *HostRemoveRequest) error {
	h := a.host(r.Name)
	if h == nil {
		return api.NotFound("no host named %q", r.Name)
	}
	if h.State != api.HostDetaching {
		return api.FailedPrecondition("host %s is %s, not being detached", h.Name, h.State)
	}
	for _, n := range collect[api.Node](a.txn, tableNodes, indexID) {
		if n.Host == h.Name {
			return api.FailedPrecondition("host %s still runs node %s", h.Name, n.ID)
		}
	}
	for _, t := range collect[api.Target](a.txn, tableTargets, indexID) {
		if t.Host == h.Name {
			return api.FailedPrecondition("host %s still backs target %s", h.Name, t.Name)
		}
	}
	a.remove(tableHosts, h)
	return nil
}

// checkHostClaim checks the pool host a new target (an ssh-backed instance)
// claims: it must be an attached pool host that no other target holds.
func (a *applier) checkHostClaim(t *api.Target) error {
	if t.Host == "" {
		return nil
	}
	h := a.host(t.Host)
	if h == nil || h.Kind != api.HostPool || h.State != api.HostAttached {
		return api.FailedPrecondition("host %s is not an attached pool host", t.Host)
	}
	for _, o := range collect[api.Target](a.txn, tableTargets, indexID) {
		if o.Host == t.Host {
			return api.Conflict("host %s is already held by %s", t.Host, o.Name)
		}
	}
	return nil
}

func (a *applier) targetPower(r *TargetPowerRequest) error {
	old := a.target(r.Name)
	if old == nil {
		return api.NotFound("target %q not found", r.Name)
	}
	if old.Type != api.KindInstance && old.Type != api.KindRemote {
		return api.FailedPrecondition("target %s is a %s: only instances and remote targets are started and stopped", old.Name, old.Type)
	}
	if old.ProvisioningState == api.ProvisioningDeleting {
		return api.FailedPrecondition("target %q is being deleted", r.Name)
	}
	reason := r.Reason
	if !r.Stopped {
		reason = ""
	}
	if old.Stopped == r.Stopped && old.StopReason == reason {
		return nil
	}
	t := old.Copy()
	t.Stopped = r.Stopped
	t.StopReason = reason
	t.UpdatedAt = r.Time
	a.putTarget(t)
	a.touchTarget(t.Name)
	return nil
}

func (a *applier) nodeProvider(r *NodeProviderRequest) error {
	if err := checkKey("node_id", r.NodeID); err != nil {
		return err
	}
	if len(r.ProviderID) > 256 {
		return api.Invalid("provider_id", "is longer than 256 bytes")
	}
	old := a.node(r.NodeID)
	if old == nil {
		return api.NotFound("node %q not found", r.NodeID)
	}
	if old.ProviderID == r.ProviderID {
		return nil
	}
	n := old.Copy()
	n.ProviderID = r.ProviderID
	a.putNode(n)
	return nil
}

// Host returns the attached machine of this name, or nil.
func (st *State) Host(name string) *Host { return first[Host](st.txn(), tableHosts, name) }

// Hosts returns every attached machine, by name.
func (st *State) Hosts() []*Host { return collect[Host](st.txn(), tableHosts, indexID) }
