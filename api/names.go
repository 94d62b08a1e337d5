package api

// Target kinds.
const (
	KindCluster  = "cluster"
	KindInstance = "instance"
	KindRemote   = "remote"
	KindLocal    = "local"
)

// VM priorities of a cluster's nodes.
const (
	VMPriorityDedicated   = "dedicated"
	VMPriorityLowPriority = "lowpriority"
)

// Priority preemption settings of a target.
const (
	PreemptionNone    = "none"
	PreemptionRequeue = "requeue"
)

// Target provisioning states (the words users of cloud ML platforms know).
const (
	ProvisioningCreating  = "Creating"
	ProvisioningSucceeded = "Succeeded"
	ProvisioningUpdating  = "Updating"
	ProvisioningDeleting  = "Deleting"
	ProvisioningFailed    = "Failed"
)

// Instance and remote target states (Target.State).
const (
	TargetStarting = "Starting"
	TargetRunning  = "Running"
	TargetStopping = "Stopping"
	TargetStopped  = "Stopped"
)

// Provider names besides local.
const (
	ProviderLocal = "local"
	ProviderSSH   = "ssh"
	ProviderExec  = "exec"
)

// Cluster allocation states.
const (
	AllocationSteady   = "Steady"
	AllocationResizing = "Resizing"
)

// Node states.
const (
	NodePreparing = "preparing" // asked of the provider, agent not yet registered
	NodeIdle      = "idle"      // registered, no attempt on it
	NodeRunning   = "running"   // registered, at least one attempt on it
	NodeLeaving   = "leaving"   // being deleted
	NodePreempted = "preempted" // taken away by the provider
	NodeUnusable  = "unusable"  // missed a deadline or heartbeats, or failed a check
)

// NodeStates lists every node state in display order.
var NodeStates = []string{NodeIdle, NodeRunning, NodePreparing, NodeUnusable, NodeLeaving, NodePreempted}

// Run states.
const (
	RunQueued          = "Queued"
	RunPreparing       = "Preparing"
	RunRunning         = "Running"
	RunFinalizing      = "Finalizing"
	RunCompleted       = "Completed"
	RunFailed          = "Failed"
	RunCancelRequested = "CancelRequested"
	RunCanceled        = "Canceled"
)

// RunTerminal reports whether a run in state s will never change again.
func RunTerminal(s string) bool {
	return s == RunCompleted || s == RunFailed || s == RunCanceled
}

// RunActive reports whether a run in state s has a live attempt on nodes.
func RunActive(s string) bool {
	return s == RunPreparing || s == RunRunning || s == RunFinalizing || s == RunCancelRequested
}

// Attempt states, reported per node by agents.
const (
	AttemptPreparing  = "preparing"  // placed, the agent has not started it yet
	AttemptRunning    = "running"    // the command runs
	AttemptFinalizing = "finalizing" // the command ended, outputs are being collected
	AttemptExited     = "exited"     // done on this node; ExitCode and Reason say how
)

// Distributions: how a multi-node run is started.
const (
	DistributionMPI  = "mpi"  // node 0 runs mpirun over the run's nodes
	DistributionNone = "none" // every node runs the command itself
)

// User roles.
const (
	RoleAdmin = "admin"
	RoleUser  = "user"
)

// Documented defaults.
const (
	DefaultMinNodes                   = 0
	DefaultIdleSecondsBeforeScaledown = 120
	DefaultMaxRetries                 = 0
	DefaultMaxPreemptions             = 10
	DefaultNodeCount                  = 1
	DefaultProcessCountPerNode        = 1
	// DefaultPreemptionGraceSeconds is the SIGTERM-to-SIGKILL grace of a
	// preempted attempt when neither the target nor the head sets one.
	DefaultPreemptionGraceSeconds = 30
	// DefaultCheckpointIntervalSeconds is how often an agent uploads an
	// attempt's AML_CHECKPOINT_DIR when it changed.
	DefaultCheckpointIntervalSeconds = 5
)

// Documented caps.
const (
	// MaxSourceBytes caps a run's source snapshot (a gzip'd tar).
	MaxSourceBytes = 8 << 20
	// MaxOutputsBytes caps a run attempt's collected ./outputs (a gzip'd tar).
	MaxOutputsBytes = 8 << 20
	// MaxLogBytesPerStream caps what is kept of one node's output in one attempt;
	// past it the stream ends with a truncation marker.
	MaxLogBytesPerStream = 8 << 20
	// MaxLogChunkBytes caps one log append from an agent.
	MaxLogChunkBytes = 256 << 10
	// MaxCheckpointBytes caps a run's checkpoint (a gzip'd tar of
	// AML_CHECKPOINT_DIR); a larger one is not uploaded.
	MaxCheckpointBytes = 8 << 20
	// MaxProvisioningErrors is how many of a target's last provisioning errors are kept.
	MaxProvisioningErrors = 5
)
