package raftstore

import (
	"github.com/amld/amld/api"
)

// adminUser is the user MsgBootstrap creates.
const adminUser = "admin"

func (a *applier) bootstrap(r *BootstrapRequest) error {
	if first[Meta](a.txn, tableMeta, "meta") != nil {
		return api.FailedPrecondition("the cluster is already bootstrapped")
	}
	if err := checkKey("cluster_id", r.ClusterID); err != nil {
		return err
	}
	if err := checkKey("admin_token_hash", r.AdminTokenHash); err != nil {
		return err
	}
	if err := checkKey("join_token_hash", r.JoinTokenHash); err != nil {
		return err
	}
	if r.AdminTokenHash == r.JoinTokenHash {
		return api.Invalid("join_token_hash", "must differ from admin_token_hash")
	}
	if a.user(adminUser) != nil {
		return api.Conflict("user %q already exists", adminUser)
	}
	for _, h := range []string{r.AdminTokenHash, r.JoinTokenHash} {
		if a.cred(h) != nil {
			return api.Conflict("token already in use")
		}
	}
	a.insert(tableMeta, &Meta{ClusterID: r.ClusterID, Bootstrapped: r.Time})
	a.insert(tableUsers, &api.User{Name: adminUser, Role: api.RoleAdmin, CreatedAt: r.Time, CreateIndex: a.index})
	a.insert(tableCredentials, &Credential{Hash: r.AdminTokenHash, Kind: CredUser, Subject: adminUser})
	a.insert(tableCredentials, &Credential{Hash: r.JoinTokenHash, Kind: CredJoin})
	return nil
}

func (a *applier) userCreate(r *UserCreateRequest) error {
	u := r.User
	if err := checkKey("name", u.Name); err != nil {
		return err
	}
	if err := checkKey("token_hash", r.TokenHash); err != nil {
		return err
	}
	if u.Role == "" {
		u.Role = api.RoleUser
	}
	if u.Role != api.RoleAdmin && u.Role != api.RoleUser {
		return api.Invalid("role", "must be %s or %s", api.RoleAdmin, api.RoleUser)
	}
	if a.user(u.Name) != nil {
		return api.Conflict("user %q already exists", u.Name)
	}
	if a.cred(r.TokenHash) != nil {
		return api.Conflict("token already in use")
	}
	u.CreateIndex = a.index
	a.insert(tableUsers, &u)
	a.insert(tableCredentials, &Credential{Hash: r.TokenHash, Kind: CredUser, Subject: u.Name})
	return nil
}

func (a *applier) targetCreate(r *TargetCreateRequest) error {
	t := r.Target
	if t == nil {
		return api.Invalid("target", "is required")
	}
	if err := checkKey("name", t.Name); err != nil {
		return err
	}
	if a.target(t.Name) != nil {
		return api.Conflict("target %q already exists", t.Name)
	}
	if t.Type == api.KindCluster {
		if err := checkScaling(t.MinNodes, t.MaxNodes, t.IdleSecondsBeforeScaledown); err != nil {
			return err
		}
	}
	if err := a.checkHostClaim(t); err != nil {
		return err
	}
	if t.ProvisioningState == "" {
		t.ProvisioningState = api.ProvisioningSucceeded
	}
	if t.AllocationState == "" && t.Type == api.KindCluster {
		t.AllocationState = api.AllocationSteady
	}
	t.CreateIndex = a.index
	a.putTarget(t)
	a.touchTarget(t.Name) // nodes left behind by an earlier target of this name
	return nil
}

// checkScaling checks a cluster's node bounds.
func checkScaling(minNodes, maxNodes int, idle *int) error {
	if minNodes < 0 {
		return api.Invalid("min_nodes", "must be at least 0")
	}
	if maxNodes < 1 {
		return api.Invalid("max_nodes", "must be at least 1")
	}
	if maxNodes < minNodes {
		return api.Invalid("max_nodes", "must be at least min_nodes=%d", minNodes)
	}
	if idle != nil && *idle < 0 {
		return api.Invalid("idle_seconds_before_scaledown", "must be at least 0")
	}
	return nil
}

func (a *applier) targetUpdate(r *TargetUpdateRequest) error {
	old := a.target(r.Name)
	if old == nil {
		return api.NotFound("target %q not found", r.Name)
	}
	if old.ProvisioningState == api.ProvisioningDeleting {
		return api.FailedPrecondition("target %q is being deleted", r.Name)
	}
	t := old.Copy()
	u := r.Update
	if u.MinNodes != nil {
		t.MinNodes = *u.MinNodes
	}
	if u.MaxNodes != nil {
		t.MaxNodes = *u.MaxNodes
	}
	if u.IdleSecondsBeforeScaledown != nil {
		v := *u.IdleSecondsBeforeScaledown
		t.IdleSecondsBeforeScaledown = &v
	}
	if u.Preemption != nil {
		if p := *u.Preemption; p != "" && p != api.PreemptionNone && p != api.PreemptionRequeue {
			return api.Invalid("preemption", "must be %s or %s", api.PreemptionNone, api.PreemptionRequeue)
		}
		t.Preemption = *u.Preemption
	}
	if u.Description != nil {
		t.Description = *u.Description
	}
	if u.PreemptionGraceSeconds != nil {
		v := *u.PreemptionGraceSeconds
		if v < 0 || v > api.MaxPreemptionGraceSeconds {
			return api.Invalid("preemption_grace_seconds", "must be 0..%d", api.MaxPreemptionGraceSeconds)
		}
		t.PreemptionGraceSeconds = &v
	}
	if t.Type == api.KindCluster {
		if err := checkScaling(t.MinNodes, t.MaxNodes, t.IdleSecondsBeforeScaledown); err != nil {
			return err
		}
	}
	t.UpdatedAt = r.Time
	a.putTarget(t)
	return nil
}

func (a *applier) targetDelete(r *TargetDeleteRequest) error {
	old := a.target(r.Name)
	if old == nil {
		return api.NotFound("target %q not found", r.Name)
	}
	if old.ProvisioningState != api.ProvisioningDeleting {
		t := old.Copy()
		t.ProvisioningState = api.ProvisioningDeleting
		t.UpdatedAt = r.Time
		a.putTarget(t)
	}
	// Runs still waiting on the target are canceled; running ones are asked
	// to stop (their agents report, or the leader downs their nodes).
	it, err := a.txn.Get(tableRuns, indexTarget, r.Name)
	if err != nil {
		panic(err)
	}
	var runs []*api.Run
	for raw := it.Next(); raw != nil; raw = it.Next() {
		runs = append(runs, raw.(*api.Run))
	}
	for _, old := range runs {
		switch {
		case old.State == api.RunQueued:
			run := old.Copy()
			run.State = api.RunCanceled
			run.Reason = "target deleted"
			run.EndedAt = r.Time
			a.dropCheckpoint(run)
			a.putRun(run)
		case api.RunActive(old.State) && old.State != api.RunCancelRequested:
			run := old.Copy()
			run.State = api.RunCancelRequested
			run.Reason = "target deleted"
			a.putRun(run)
		}
	}
	return nil
}

func (a *applier) targetRemove(r *TargetRemoveRequest) error {
	t := a.target(r.Name)
	if t == nil {
		return api.NotFound("target %q not found", r.Name)
	}
	if t.ProvisioningState != api.ProvisioningDeleting {
		return api.FailedPrecondition("target %q is %s, not being deleted", r.Name, t.ProvisioningState)
	}
	if n, err := a.txn.First(tableNodes, indexTarget, r.Name); err != nil {
		panic(err)
	} else if n != nil {
		return api.FailedPrecondition("target %q still has nodes", r.Name)
	}
	a.remove(tableTargets, t)
	return nil
}

func (a *applier) targetScale(r *TargetScaleRequest) error {
	old := a.target(r.Name)
	if old == nil {
		return api.NotFound("target %q not found", r.Name)
	}
	if r.TargetNodeCount < 0 {
		return api.Invalid("target_node_count", "must be at least 0")
	}
	t := old.Copy()
	t.TargetNodeCount = r.TargetNodeCount
	t.ScaleReason = r.Reason
	a.putTarget(t)
	a.touchTarget(t.Name)
	// No scheduling round reads what this changes (the target's node
	// count goal, its scale reason, and the allocation state that
	// follows from them), and the autoscaler rewords its reason as a
	// backlog grows: a round need not follow.
	a.unseen = true
	return nil
}

func (a *applier) provisioningResult(r *ProvisioningResultRequest) error {
	old := a.target(r.Name)
	if old == nil {
		return api.NotFound("target %q not found", r.Name)
	}
	t := old.Copy()
	if r.Error == nil {
		if t.ProviderFailures == 0 {
			return nil
		}
		t.ProviderFailures = 0
	} else {
		e := *r.Error
		if e.Time.IsZero() {
			e.Time = r.Time
		}
		t.ProvisioningErrors = append(t.ProvisioningErrors, e)
		if n := len(t.ProvisioningErrors); n > api.MaxProvisioningErrors {
			t.ProvisioningErrors = append([]api.ProvisioningError(nil), t.ProvisioningErrors[n-api.MaxProvisioningErrors:]...)
		}
		t.ProviderFailures++
		t.LastProviderFailure = r.Time
	}
	a.putTarget(t)
	return nil
}

// recomputeTarget brings the target's node counts and allocation state in
// line with its nodes.
func (a *applier) recomputeTarget(name string) {
	old := a.target(name)
	if old == nil {
		return
	}
	var counts api.NodeStateCounts
	for _, n := range collect[api.Node](a.txn, tableNodes, indexTarget, name) {
		counts.Add(n.State)
	}
	current := counts.Idle + counts.Running
	alloc := old.AllocationState
	if old.Type == api.KindCluster || alloc != "" {
		alloc = api.AllocationSteady
		if old.TargetNodeCount != current+counts.Preparing {
			alloc = api.AllocationResizing
		}
	}
	if old.NodeStateCounts == counts && old.CurrentNodeCount == current && old.AllocationState == alloc {
		return
	}
	t := old.Copy()
	t.NodeStateCounts = counts
	t.CurrentNodeCount = current
	t.AllocationState = alloc
	a.putTarget(t)
}
