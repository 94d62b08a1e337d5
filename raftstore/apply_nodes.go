package raftstore

import (
	"fmt"
	"slices"
	"time"

	"github.com/amld/amld/api"
)

func (a *applier) nodeCreate(r *NodeCreateRequest) error {
	n := r.Node
	if n == nil {
		return api.Invalid("node", "is required")
	}
	if err := checkKey("id", n.ID); err != nil {
		return err
	}
	if a.node(n.ID) != nil {
		return api.Conflict("node %q already exists", n.ID)
	}
	if err := a.checkTargetOpen(n.Target); err != nil {
		return err
	}
	n.State = api.NodePreparing
	n.IdleSince = time.Time{}
	if n.StateChangedAt.IsZero() {
		n.StateChangedAt = n.CreatedAt
	}
	n.CreateIndex = a.index
	a.putNode(n)
	return nil
}

// checkTargetOpen refuses a target that is missing (404) or being deleted.
func (a *applier) checkTargetOpen(name string) error {
	t := a.target(name)
	if t == nil {
		return api.NotFound("target %q not found", name)
	}
	if t.ProvisioningState == api.ProvisioningDeleting {
		return api.FailedPrecondition("target %q is being deleted", name)
	}
	return nil
}

func (a *applier) nodeRegister(r *NodeRegisterRequest) error {
	if err := checkKey("node_id", r.NodeID); err != nil {
		return err
	}
	if err := checkKey("token_hash", r.TokenHash); err != nil {
		return err
	}
	var n *api.Node
	if old := a.node(r.NodeID); old != nil {
		switch old.State {
		case api.NodePreparing, api.NodeIdle, api.NodeRunning:
		default:
			return api.FailedPrecondition("node %s is %s and cannot register", old.ID, old.State)
		}
		n = old.Copy()
	} else {
		// An agent started by hand joins the target it names.
		if r.Target == "" {
			return api.NotFound("node %q not found", r.NodeID)
		}
		if err := a.checkTargetOpen(r.Target); err != nil {
			return err
		}
		t := a.target(r.Target)
		n = &api.Node{
			ID:          r.NodeID,
			Target:      t.Name,
			VMSize:      t.VMSize,
			Priority:    t.VMPriority,
			CreatedAt:   r.Time,
			CreateIndex: a.index,
		}
	}
	if c := a.cred(r.TokenHash); c != nil && (c.Kind != CredNode || c.Subject != n.ID) {
		return api.Conflict("token already in use")
	}
	a.removeNodeCredentials(n.ID)
	a.insert(tableCredentials, &Credential{Hash: r.TokenHash, Kind: CredNode, Subject: n.ID})

	reg := r.Register
	n.Address = reg.Address
	n.Hostname = reg.Hostname
	n.HostKey = reg.HostKey
	n.AgentVersion = reg.Version
	n.Runtimes = slices.Clone(reg.Runtimes)
	n.GPUs = slices.Clone(reg.GPUs)
	n.Capacity = r.Capacity
	if n.Capacity.IsZero() {
		n.Capacity = reg.Capacity
	}
	n.RegisteredAt = r.Time
	n.Reason = ""
	// A node that re-registers while attempts hold it keeps them.
	want := api.NodeIdle
	if len(a.runsOnNode(n.ID)) > 0 {
		want = api.NodeRunning
	}
	if r.Unusable != "" {
		want = api.NodeUnusable
		n.Reason = r.Unusable
	}
	a.setNodeState(n, want)
	a.putNode(n)
	if want == api.NodeUnusable {
		a.endAttemptsOnNode(n.ID, nodeWhy(n.ID, want, r.Unusable))
	}
	return nil
}

// removeNodeCredentials drops every credential of the node.
func (a *applier) removeNodeCredentials(id string) {
	for _, c := range collect[Credential](a.txn, tableCredentials, indexSubject, CredNode, id) {
		a.remove(tableCredentials, c)
	}
}

// setNodeState changes n (a copy) to state s, stamping the change.
func (a *applier) setNodeState(n *api.Node, s string) {
	if n.State == s {
		return
	}
	n.State = s
	n.StateChangedAt = a.now
	n.IdleSince = time.Time{}
	if s == api.NodeIdle {
		n.IdleSince = a.now
	}
}

func (a *applier) nodeDown(r *NodeDownRequest) error {
	old := a.node(r.NodeID)
	if old == nil {
		return api.NotFound("node %q not found", r.NodeID)
	}
	switch r.State {
	case api.NodeUnusable, api.NodePreempted, api.NodeLeaving:
	default:
		return api.Invalid("state", "must be %s, %s or %s", api.NodeUnusable, api.NodePreempted, api.NodeLeaving)
	}
	n := old.Copy()
	a.setNodeState(n, r.State)
	n.Reason = r.Reason
	a.putNode(n)
	a.endAttemptsOnNode(n.ID, nodeWhy(n.ID, r.State, r.Reason))
	return nil
}

func (a *applier) nodeRemove(r *NodeRemoveRequest) error {
	n := a.node(r.NodeID)
	if n == nil {
		return api.NotFound("node %q not found", r.NodeID)
	}
	a.endAttemptsOnNode(n.ID, nodeWhy(n.ID, "removed", r.Reason))
	a.remove(tableNodes, n)
	a.removeNodeCredentials(n.ID)
	a.touchTarget(n.Target)
	return nil
}

// nodeWhy says why a node's attempts ended: "node n-1 unusable: missed
// heartbeats for 10s".
func nodeWhy(id, what, reason string) string {
	s := fmt.Sprintf("node %s %s", id, what)
	if reason != "" {
		s += ": " + reason
	}
	return s
}

// endAttemptsOnNode ends every live attempt holding the node, because of
// why, and requeues (or fails, or cancels) its run.
func (a *applier) endAttemptsOnNode(id, why string) {
	for _, old := range a.runsOnNode(id) {
		run := old.Copy()
		at := run.LiveAttempt()
		if rank := slices.IndexFunc(at.Allocations, func(al api.Allocation) bool { return al.NodeID == id }); rank >= 0 && rank < len(at.Nodes) {
			if na := &at.Nodes[rank]; na.State != api.AttemptExited {
				na.State = api.AttemptExited
				na.Reason = why
				na.Ended = a.now
			}
		}
		a.endAttempt(at, nil, why)
		a.requeueAfterLoss(run, why)
		a.touchAttempt(at)
		a.putRun(run)
	}
}

// recomputeNode derives a ready node's state from the attempts holding it:
// running if any live attempt does, idle otherwise. Other states are set
// only by NodeCreate, NodeRegister and NodeDown.
func (a *applier) recomputeNode(id string) {
	old := a.node(id)
	if old == nil || !old.Ready() {
		return
	}
	want := api.NodeIdle
	if first, err := a.txn.First(tableRuns, indexLive, id); err != nil {
		panic(err)
	} else if first != nil {
		want = api.NodeRunning
	}
	if old.State == want {
		return
	}
	n := old.Copy()
	a.setNodeState(n, want)
	a.putNode(n)
}
