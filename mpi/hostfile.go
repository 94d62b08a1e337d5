package mpi

import (
	"fmt"
	"hash/fnv"
	"strings"
)

// Layout is how an MPI run's ranks sit on its nodes: Nodes in rank order
// (node IDs, used as host names in the hostfile), Slots processes each.
// mpirun fills each node's slots before moving to the next, so rank r runs
// on node r / Slots.
type Layout struct {
	Nodes []string
	Slots int
}

// Size is the number of ranks: len(Nodes) * Slots.
func (l Layout) Size() int { return len(l.Nodes) * l.Slots }

// Hostfile is the Open MPI hostfile of the layout: one "NAME slots=P" line
// per node, in rank order.
func (l Layout) Hostfile() string {
	var b strings.Builder
	for _, n := range l.Nodes {
		fmt.Fprintf(&b, "%s slots=%d\n", n, l.Slots)
	}
	return b.String()
}

// NodeOfRank returns the node that runs rank r, or "" when r is out of range.
func (l Layout) NodeOfRank(r int) string {
	if l.Slots <= 0 || r < 0 || r >= l.Size() {
		return ""
	}
	return l.Nodes[r/l.Slots]
}

// TempPrefix is how the names of the temp dirs (under os.TempDir()) of the
// MPI attempts of the agent with this absolute work dir start:
// aml-<hash of workDir>-. Daemons' TMPDIRs must be short (Open MPI puts
// Unix sockets there), so they cannot live in the work dir; a restarted
// agent removes those an earlier one left when it was killed, and so does
// a provider that removes a dead agent's node.
func TempPrefix(workDir string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(workDir))
	return fmt.Sprintf("aml-%08x-", h.Sum32())
}
