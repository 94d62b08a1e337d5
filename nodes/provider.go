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
// demand (simulated spot evictions): the node's machine is told to go, with
// notice, and the provider reports a Preemption.
type Evicter interface {
	Evict(ctx context.Context, nodeID string) error
}
