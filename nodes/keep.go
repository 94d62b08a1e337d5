package nodes

import "context"

// Purger is an optional ability of providers that keep an instance's work
// dir across node deletes (NodeSpec.KeepName): Purge removes it for good,
// when the instance is deleted. host is the instance's machine for the ssh
// provider, and empty for others.
type Purger interface {
	Purge(ctx context.Context, keepName, host string) error
}

// ListScoper is an optional ability of providers whose List sees the
// machines of some targets only (the exec provider without a list command):
// the leader concludes nothing about the nodes of targets it does not list.
type ListScoper interface {
	Lists(target string) bool
}
