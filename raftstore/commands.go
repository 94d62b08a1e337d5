package raftstore

import (
	"time"

	"github.com/amld/amld/api"
)

// MsgType is the first byte of every Raft log entry amld writes; the rest is
// the JSON encoding of the request type named next to it. New types are
// appended; numbers are never reused or renumbered.
type MsgType uint8

// The command log. Every request carries the time the proposer stamped on it
// (Apply never reads a clock) and every ID was chosen by the proposer.
const (
	MsgBootstrap          MsgType = 1  // BootstrapRequest
	MsgUserCreate         MsgType = 2  // UserCreateRequest
	MsgTargetCreate       MsgType = 3  // TargetCreateRequest
	MsgTargetUpdate       MsgType = 4  // TargetUpdateRequest
	MsgTargetDelete       MsgType = 5  // TargetDeleteRequest
	MsgTargetRemove       MsgType = 6  // TargetRemoveRequest
	MsgTargetScale        MsgType = 7  // TargetScaleRequest
	MsgProvisioningResult MsgType = 8  // ProvisioningResultRequest
	MsgNodeCreate         MsgType = 9  // NodeCreateRequest
	MsgNodeRegister       MsgType = 10 // NodeRegisterRequest
	MsgNodeDown           MsgType = 11 // NodeDownRequest
	MsgNodeRemove         MsgType = 12 // NodeRemoveRequest
	MsgRunSubmit          MsgType = 13 // RunSubmitRequest
	MsgPlanApply          MsgType = 14 // PlanApplyRequest
	MsgAttemptStatus      MsgType = 15 // AttemptStatusRequest
	MsgRunCancel          MsgType = 16 // RunCancelRequest
	MsgLogAppend          MsgType = 17 // LogAppendRequest
	MsgBlobPut            MsgType = 18 // BlobPutRequest

	// Cluster membership and secrets (issue 3; numbers 30-39).
	MsgHeadUpsert MsgType = 30 // HeadUpsertRequest
	MsgHeadRemove MsgType = 31 // HeadRemoveRequest
	MsgSecretsPut MsgType = 32 // SecretsPutRequest

	// Attached machines, instances and the ssh and exec providers (80–89).
	MsgHostAttach   MsgType = 80 // HostAttachRequest
	MsgHostDetach   MsgType = 81 // HostDetachRequest
	MsgHostRemove   MsgType = 82 // HostRemoveRequest
	MsgTargetPower  MsgType = 83 // TargetPowerRequest
	MsgNodeProvider MsgType = 84 // NodeProviderRequest
)

// MsgBatch is an entry of several commands that Store.Apply proposed at
// once (group commit; see batch.go). It has no request type of its own.
const MsgBatch MsgType = 100

// Preemption and checkpoints (numbers 60-69).
const (
	MsgNodeEvict     MsgType = 60 // NodeEvictRequest
	MsgCheckpointPut MsgType = 61 // CheckpointPutRequest
)

// Credential kinds.
const (
	CredUser = "user" // Subject is a user name
	CredNode = "node" // Subject is a node ID
	CredJoin = "join" // the cluster's agent join token; Subject is empty
)

// Credential maps the SHA-256 (hex) of a token to who holds it. Tokens
// themselves are never stored.
type Credential struct {
	Hash    string `json:"hash"`
	Kind    string `json:"kind"`
	Subject string `json:"subject,omitempty"`
}

// Blob is a small stored file: a source snapshot or an attempt's outputs,
// each a gzip'd tar under its documented cap.
type Blob struct {
	ID        string    `json:"id"`
	SHA256    string    `json:"sha256"`
	Size      int64     `json:"size"`
	Data      []byte    `json:"data"`
	CreatedAt time.Time `json:"created_at"`
}

// Meta is the cluster's identity, set once by MsgBootstrap.
type Meta struct {
	ClusterID    string    `json:"cluster_id"`
	Bootstrapped time.Time `json:"bootstrapped"`
}

// BootstrapRequest initialises an empty cluster: its ID, the admin user with
// its token hash, and the join token hash. Applied once; a second one is
// refused with a failed-precondition error.
type BootstrapRequest struct {
	ClusterID      string    `json:"cluster_id"`
	AdminTokenHash string    `json:"admin_token_hash"`
	JoinTokenHash  string    `json:"join_token_hash"`
	Time           time.Time `json:"time"`
}

// UserCreateRequest adds a user and its token hash; 409 if the name exists.
type UserCreateRequest struct {
	User      api.User `json:"user"`
	TokenHash string   `json:"token_hash"`
}

// TargetCreateRequest adds a target (validated and defaulted by the
// proposer: ProvisioningState Succeeded, AllocationState Steady). 409 if the
// name is taken.
type TargetCreateRequest struct {
	Target *api.Target `json:"target"`
}

// TargetUpdateRequest changes a target's settings; the result must still
// satisfy max_nodes >= 1 and >= min_nodes (400 naming the field otherwise).
type TargetUpdateRequest struct {
	Name   string           `json:"name"`
	Update api.TargetUpdate `json:"update"`
	Time   time.Time        `json:"time"`
}

// TargetDeleteRequest marks a target Deleting: its queued runs are Canceled
// (reason "target deleted"), new submits are refused, and the leader removes
// its nodes, then the target (MsgTargetRemove).
type TargetDeleteRequest struct {
	Name string    `json:"name"`
	Time time.Time `json:"time"`
}

// TargetRemoveRequest drops a Deleting target that has no nodes left.
type TargetRemoveRequest struct {
	Name string `json:"name"`
}

// TargetScaleRequest records an autoscaling decision: the target node count
// and why (AllocationState becomes Resizing while current != target).
type TargetScaleRequest struct {
	Name            string    `json:"name"`
	TargetNodeCount int       `json:"target_node_count"`
	Reason          string    `json:"reason"`
	Time            time.Time `json:"time"`
}

// ProvisioningResultRequest records the outcome of a provider call. With
// Error set it is appended to provisioning_errors (the last
// api.MaxProvisioningErrors kept) and ProviderFailures grows; with Error nil
// ProviderFailures resets to 0.
type ProvisioningResultRequest struct {
	Name  string                 `json:"name"`
	Error *api.ProvisioningError `json:"error,omitempty"`
	Time  time.Time              `json:"time"`
}

// NodeCreateRequest adds a node in state preparing (the leader then asks the
// provider for it).
type NodeCreateRequest struct {
	Node *api.Node `json:"node"`
}

// NodeRegisterRequest records an agent's registration: the node becomes idle
// (IdleSince = Time) with the agent's address, capacity, GPUs and host key,
// and TokenHash becomes its credential. With a NodeID the node must exist
// and be preparing (or already registered: re-registration replaces the
// credential); a node unknown to the head is added when Target names a
// cluster (agents started by hand).
type NodeRegisterRequest struct {
	NodeID    string              `json:"node_id"`
	Target    string              `json:"target"`
	Register  api.RegisterRequest `json:"register"`
	Capacity  api.Resources       `json:"capacity"`
	TokenHash string              `json:"token_hash"`
	Time      time.Time           `json:"time"`
	// Unusable, when set, registers the node as unusable with this reason
	// (the head found it lacks what its vm_size promises): it gets the
	// credential, so its agent stops asking, but no runs; attempts that
	// held it end as after a lost node.
	Unusable string `json:"unusable,omitempty"`
}

// NodeDownRequest takes a node out of service: State is unusable, preempted
// or leaving, with Reason. Every live attempt holding the node ends with
// that reason; its run goes back to Queued at its original place (QueueSeq
// kept) with Preemptions+1, or to Failed once Preemptions exceeds
// max_preemptions, or to Canceled if a cancel was requested.
type NodeDownRequest struct {
	NodeID string    `json:"node_id"`
	State  string    `json:"state"`
	Reason string    `json:"reason"`
	Time   time.Time `json:"time"`
}

// NodeRemoveRequest drops a node and its credential (after the provider
// deleted it). Live attempts on it are ended as by NodeDownRequest first.
type NodeRemoveRequest struct {
	NodeID string    `json:"node_id"`
	Reason string    `json:"reason"`
	Time   time.Time `json:"time"`
}

// RunSubmitRequest queues a run (ID, Owner, Request, SubmittedAt chosen and
// validated by the proposer). Apply sets State Queued, QueueSeq to the
// entry's Raft index, and a first Reason. Refused (404) when the target
// does not exist, (409) when it is Deleting.
type RunSubmitRequest struct {
	Run *api.Run `json:"run"`
	// SSHKey is the run's SSH key pair (runs of several nodes or
	// distribution mpi), made by the proposer; kept apart from the run so
	// that nothing that shows runs can show it, and dropped when the run
	// ends.
	SSHKey *RunKey `json:"ssh_key,omitempty"`
	// Reason is the wait reason the run starts with; empty, "waiting for
	// the scheduler". The proposer gives one only to a run it knows to
	// wait, whatever happens next, behind a waiting run of the same target
	// that asks the same at the same priority: the reason the last
	// scheduling round gave that run. Such a submit changes nothing that
	// round decided (see State.SchedulingChanges). Log format 2: a head of
	// an older build ignores it, so the leader sends it only once every
	// head applies format 2 (see LogVersion).
	Reason string `json:"reason,omitempty"`
}

// Placement gives a queued run its next attempt on these nodes, in rank order.
type Placement struct {
	RunID       string           `json:"run_id"`
	Allocations []api.Allocation `json:"allocations"`
}

// WaitReason sets a queued run's reason.
type WaitReason struct {
	RunID  string `json:"run_id"`
	Reason string `json:"reason"`
}

// Preemption requeues a run that holds a live attempt so that a run of
// higher priority (By) can have its room: the attempt ends ("preempted by
// run B") and the run goes back to Queued at its original place with
// Preemptions+1 (Failed once Preemptions exceeds max_preemptions; Canceled
// if a cancel was requested). A run without a live attempt is skipped.
type Preemption struct {
	RunID string `json:"run_id"`
	By    string `json:"by,omitempty"`
	// GraceSeconds, when positive, gives the victim notice instead: its
	// attempt is asked to stop (SIGTERM, then SIGKILL after the grace) and
	// the run is requeued when its agents report the end (see
	// NodeEvictRequest); 0 ends the attempt at once.
	GraceSeconds int `json:"grace_seconds,omitempty"`
}

// PlanApplyRequest is one scheduling round. Preemptions are applied first.
// Apply then re-checks every placement, in order, against the current state
// (run still Queued; one allocation per node of the run's node_count, on
// distinct nodes; every node ready, of the run's target, with room for the
// allocation beside the live allocations on it, including those placed
// earlier in this plan, and its GPU UUIDs present on the node and free) and
// skips the ones that no longer fit; a placed run gets a new Attempt
// (Number len+1, every node preparing, PlacedAt Time) and becomes
// Preparing, its nodes running. Reasons are set on runs still Queued.
type PlanApplyRequest struct {
	Placements  []Placement  `json:"placements,omitempty"`
	Reasons     []WaitReason `json:"reasons,omitempty"`
	Preemptions []Preemption `json:"preemptions,omitempty"`
	Time        time.Time    `json:"time"`
}

// AttemptStatusRequest is an agent's report (see api.AttemptStatus). It is
// fenced: refused with a failed-precondition error unless the attempt is the
// run's current one, has not ended, and NodeID holds Allocations[NodeIndex].
type AttemptStatusRequest struct {
	NodeID string            `json:"node_id"`
	Status api.AttemptStatus `json:"status"`
	Time   time.Time         `json:"time"`
}

// RunCancelRequest cancels a run: Queued → Canceled at once; with a live
// attempt → CancelRequested (the agents stop it and report); a finished run
// is refused (409).
type RunCancelRequest struct {
	RunID string    `json:"run_id"`
	Time  time.Time `json:"time"`
}

// LogAppendRequest appends to one node's output of one attempt (see
// api.LogAppend for offsets). Accepted only from the node holding that rank
// of an attempt that has not ended.
type LogAppendRequest struct {
	NodeID string        `json:"node_id"`
	Log    api.LogAppend `json:"log"`
}

// BlobPutRequest stores a blob (idempotent on ID).
type BlobPutRequest struct {
	Blob *Blob `json:"blob"`
}
