package main

import (
	"fmt"
	"io"

	"github.com/amld/amld/api"
)

// printNodeGPUs writes the GPUs of the nodes, one row each with the run
// holding it ("-" when free), after `compute list-nodes`'s node table.
// Nodes without GPUs add nothing; with none at all nothing is written.
func printNodeGPUs(out io.Writer, ns []*api.NodeView) error {
	has := false
	for _, n := range ns {
		has = has || len(n.GPUs) > 0
	}
	if !has {
		return nil
	}
	fmt.Fprintln(out)
	w := newTable(out)
	row(w, "NODE", "GPU", "UUID", "MODEL", "MEMORY", "IN USE BY")
	for _, n := range ns {
		for _, g := range n.GPUs {
			row(w, n.ID, g.Index, g.UUID, orDash(g.Model), fmt.Sprintf("%d MiB", g.MemoryMB), orDash(n.GPURuns[g.UUID]))
		}
	}
	return w.Flush()
}
