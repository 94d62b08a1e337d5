package scheduler

import (
	"fmt"
	"slices"

	"github.com/amld/amld/api"
)

// checker answers one question about one node for one run: may the run
// have a share of this node now?
type checker struct {
	name string
	ok   func(ns *nodeState, r *api.Run) bool
}

// checks is the whole chain, in the order a node is asked. The first two
// hold for a whole round: a round lists, per target, only that target's
// ready nodes (see newRound), so placement asks only fitChecks.
var checks = []checker{
	{"ready", nodeReady},
	{"target", sameTarget},
	{"runtime", hasRunRuntime},
	{"resources", fitsResources},
	{"gpus", gpusFree},
}

// fitChecks change as work is placed; placement asks them of every node it
// tries.
var fitChecks = checks[2:]

// nodeReady: the node is idle or running (registered and healthy).
func nodeReady(ns *nodeState, _ *api.Run) bool { return ns.node.Ready() }

// sameTarget: the node belongs to the run's target.
func sameTarget(ns *nodeState, r *api.Run) bool { return ns.node.Target == r.Target }

// hasRunRuntime: the node has the runtime the run needs (docker for a run
// with an image).
func hasRunRuntime(ns *nodeState, r *api.Run) bool { return hasRuntime(ns.node, RuntimeOf(r)) }

// RuntimeOf names the node runtime run r needs beyond the process runtime
// every node has: "docker" for a run with an image, else "".
func RuntimeOf(r *api.Run) string {
	if r.Environment.Image != "" {
		return "docker"
	}
	return ""
}

// hasRuntime reports whether node n's agent reported runtime rt ("" always
// holds).
func hasRuntime(n *api.Node, rt string) bool {
	return rt == "" || slices.Contains(n.Runtimes, rt)
}

// fitsResources: the run's per-node request fits the node's free cpus,
// memory and GPU count.
func fitsResources(ns *nodeState, r *api.Run) bool { return r.Request.Fits(ns.free) }

// gpusFree: the node has as many free GPU UUIDs as the run asks for.
func gpusFree(ns *nodeState, r *api.Run) bool { return r.Request.GPUs <= len(ns.gpus) }

// failedCheck returns the name of the first check the node fails for the
// run, or "" when it passes them all.
func failedCheck(checks []checker, ns *nodeState, r *api.Run) string {
	for _, c := range checks {
		if !c.ok(ns, r) {
			return c.name
		}
	}
	return ""
}

// feasible reports whether the node passes every check for the run.
func feasible(checks []checker, ns *nodeState, r *api.Run) bool {
	for _, c := range checks {
		if !c.ok(ns, r) {
			return false
		}
	}
	return true
}

// NeverFits says why run r can never start on target t whose nodes have
// vm_size size, even with the target empty and at max_nodes; it returns ""
// when r could fit. A zero size (unknown catalogue entry) skips the
// per-node check, and max_nodes <= 0 skips the node-count check. The
// submit path uses it to refuse such runs; the scheduler uses it so that
// they do not block their queue.
func NeverFits(r *api.Run, t *api.Target, size api.VMSize) string {
	n := max(r.NodeCount, 1)
	if q := r.Request; q.CPUs < 0 || q.MemoryMB < 0 || q.GPUs < 0 {
		return fmt.Sprintf("asks for a negative amount (%s)", q)
	}
	if t.MaxNodes > 0 && n > t.MaxNodes {
		return fmt.Sprintf("needs %d nodes but %s allows at most max_nodes=%d", n, t.Name, t.MaxNodes)
	}
	if size != (api.VMSize{}) && !r.Request.Fits(size.Resources()) {
		return fmt.Sprintf("asks for %s per node but a node of %s has %s", r.Request, size.Name, size.Resources())
	}
	return ""
}
