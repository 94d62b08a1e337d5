package nodes

import (
	"os"
	"path/filepath"
)

// Knower is an optional ability of providers whose List covers only the
// machines this head made (the local provider: each head of a cluster has
// its own). The leader's orphan check marks a node whose machine is not
// listed as lost only when the provider knows the node; nodes made through
// another head are watched by their heartbeats instead.
type Knower interface {
	// Knows reports whether the provider made the node's machine here.
	Knows(nodeID string) bool
}

var _ Knower = (*Local)(nil)

// Knows implements Knower: the node's directory exists under DataDir.
func (l *Local) Knows(nodeID string) bool {
	if !safeNodeID(nodeID) {
		return false
	}
	_, err := os.Stat(filepath.Join(l.cfg.DataDir, nodeID))
	return err == nil
}
