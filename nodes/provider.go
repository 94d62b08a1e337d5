package nodes

import (
	"context"

	"github.com/amld/amld/api"
)

// NodeSpec is what a provider needs to make one node.
type NodeSpec struct {
	// NodeID is the ID the head gave the node; the agent registers with it.
	NodeID string
	// Target is the cluster the node belongs to.
	Target string
	// Size is the node's vm_size.
	Size api.VMSize
	// Priority is dedicated or lowpriority.
	Priority string
	// HeadAddrs are the heads' API addresses the agent should join.
	HeadAddrs []string
	// JoinToken authenticates the agent's registration. It is a secret:
	// never log it, never put it on a command line.
	JoinToken string
	// Host names the attached machine to use (ssh provider); the head
	// picks it.
	Host string
	// KeepName, when set, names a work dir that outlives the node: an
	// instance's, kept across stop and start (see Purger). Providers that
	// keep one give the agent AML_DATA_DIR, a directory in it for the
	// user's files.
	KeepName string
	// AuthorizedKey, when set, is a public key that may log in to the
	// node's machine while the node lives (an instance's
	// --ssh-public-access; ssh provider).
	AuthorizedKey string
	// CACertPEM is the cluster CA the agent verifies the heads against
	// (empty: the heads speak plain HTTP).
	CACertPEM []byte
}

// Instance is a machine a provider reports as existing.
type Instance struct {
	NodeID     string
	ProviderID string
	Target     string
}

// Provider makes and removes the machines behind a cluster's nodes. The
// leader calls it, never from inside the state machine. Shaped after
// cluster-autoscaler's NodeGroup; every call takes a context and must return
// when it is done.
type Provider interface {
	// Name is the provider's name as users give it (--provider).
	Name() string
	// Create starts a machine for spec that will run `amld agent` and
	// register as spec.NodeID. It returns the provider's handle for the
	// machine once the machine is started (not once the agent registered).
	// Required.
	Create(ctx context.Context, spec NodeSpec) (providerID string, err error)
	// Delete removes the machine of nodeID. Deleting a machine that no
	// longer exists is not an error. Required.
	Delete(ctx context.Context, nodeID, providerID string) error
	// List returns every machine the provider has made that still exists,
	// so the leader can find orphans (machines with no node record) and lost
	// nodes (records with no machine). Required.
	List(ctx context.Context) ([]Instance, error)
}

// Preemption is a provider's notice that it takes a node away.
type Preemption struct {
	NodeID string
	// Reason says who took it and why ("evicted by the provider").
	Reason string
}

// Evicter is an optional ability of providers whose nodes can be evicted on
// demand (simulated spot evictions, `amlctl compute simulate-eviction`).
// The head gives the node its notice (the node becomes preempted and its
// agent SIGTERMs the attempts, which have the grace period to checkpoint
// and stop); when they stopped or the notice ran out, the leader calls
// Evict and then removes the node record.
type Evicter interface {
	// Evict takes the node's machine away at once, as a cloud takes a spot
	// VM at the end of its notice: no graceful shutdown, whatever still
	// runs there dies with it. A machine that no longer exists is not an
	// error.
	Evict(ctx context.Context, nodeID string) error
}
