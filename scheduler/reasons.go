package scheduler

import (
	"fmt"
	"strings"

	"github.com/amld/amld/api"
)

// reasoner words why queued runs of one target wait, from the target's
// state at the end of the round's walk.
type reasoner struct {
	ts  *targetState
	out outcome
	// counts caches room counts by request, and words capacity reasons by
	// request and node count: both depend on nothing else.
	counts map[roomKey]room
	words  map[ask]string
}

// ask is what a run asks of its target: a request on n nodes that have
// runtime rt.
type ask struct {
	req api.Resources
	n   int
	rt  string
}

// askOf is what r asks.
func askOf(r *api.Run) ask { return ask{r.Request, max(r.NodeCount, 1), RuntimeOf(r)} }

// room counts the ready nodes that could take a request now: fully, and
// counting cpus and memory only.
type room struct {
	all, cpuMem int
}

func newReasoner(ts *targetState, out outcome) *reasoner {
	return &reasoner{ts: ts, out: out, counts: map[roomKey]room{}, words: map[ask]string{}}
}

// roomKey is what room counts depend on.
type roomKey struct {
	req api.Resources
	rt  string
}

// room counts the ready nodes with runtime rt and room for req, reserved
// or not.
func (rs *reasoner) room(req api.Resources, rt string) room {
	key := roomKey{req, rt}
	if c, ok := rs.counts[key]; ok {
		return c
	}
	var c room
	noGPU := req
	noGPU.GPUs = 0
	for _, ns := range rs.ts.nodes {
		if !hasRuntime(ns.node, rt) {
			continue
		}
		free := ns.effFree()
		if req.Fits(free) {
			c.all++
		}
		if noGPU.Fits(free) {
			c.cpuMem++
		}
	}
	rs.counts[key] = c
	return c
}

// reason says in words why r, queued and not placed this round, waits.
func (rs *reasoner) reason(r *api.Run) string {
	n := max(r.NodeCount, 1)
	if r == rs.out.head && len(rs.out.victims) > 0 {
		return fmt.Sprintf("waiting for %s of lower priority to be preempted: %s",
			plural(len(rs.out.victims), "run"), victimList(rs.out.victims))
	}
	c := rs.room(r.Request, RuntimeOf(r))
	if h := rs.out.head; h != nil && h != r && c.all >= n {
		return fmt.Sprintf("waiting behind run %s (higher in the queue), which holds the nodes it needs", h.ID)
	}
	k := askOf(r)
	why, ok := rs.words[k]
	if !ok {
		why = rs.capacity(k, c)
		rs.words[k] = why
	}
	return why
}

// capacity says what r lacks when there is simply no room: which nodes it
// waits for and what the target's nodes are doing.
func (rs *reasoner) capacity(k ask, c room) string {
	ts := rs.ts
	req, n := k.req, k.n
	ready := len(ts.nodes)
	if k.rt != "" {
		with := 0
		for _, ns := range ts.nodes {
			if hasRuntime(ns.node, k.rt) {
				with++
			}
		}
		if with < n && ready > 0 {
			return rs.runtimeReason(k, ready, with)
		}
	}
	if req.GPUs > 0 && ready > 0 && c.cpuMem >= n {
		want := plural(req.GPUs, "GPU")
		if n > 1 {
			want += fmt.Sprintf(" on each of %d nodes", n)
		}
		used, total := ts.gpuUse()
		if total == 0 {
			if ready == 1 {
				return "waiting for " + want + ": the ready node has no GPU"
			}
			return fmt.Sprintf("waiting for %s: none of the %d ready nodes has a GPU", want, ready)
		}
		s := fmt.Sprintf("waiting for %s: %d of %d GPUs on %s in use", want, used, total, plural(ready, "node"))
		if ts.preparing > 0 {
			s += ", " + plural(ts.preparing, "node") + " preparing"
		}
		return s
	}
	// While nodes are to come, a whole-node request waits for nodes; once
	// the nodes are there, it waits for room on them.
	var detail string
	whole := ts.size != (api.VMSize{}) && req == ts.size.Resources()
	switch t := ts.target; {
	case ready+ts.preparing == 0:
		detail = ts.name + " has no nodes yet"
	case ts.preparing > 0:
		detail = plural(ts.preparing, "node") + " preparing"
	case t.MaxNodes > 0 && ready >= t.MaxNodes:
		kind := t.Type
		if kind == "" {
			kind = api.KindCluster
		}
		detail = fmt.Sprintf("%s at max_nodes=%d, %s", kind, t.MaxNodes, ts.stateList())
	case c.all > 0:
		whole = false
		detail = "only " + plural(c.all, "node") + " with room"
	default:
		whole = false
		detail = plural(ready, "node") + " busy"
	}
	return "waiting for " + ts.want(req, n, whole) + ": " + detail
}

// runtimeReason says that too few ready nodes have the runtime k needs.
func (rs *reasoner) runtimeReason(k ask, ready, with int) string {
	ts := rs.ts
	want := "a node"
	if k.n > 1 {
		want = fmt.Sprintf("%d nodes", k.n)
	}
	why := fmt.Sprintf("waiting for %s of %s with the %s runtime (the run has an image): ", want, ts.name, k.rt)
	switch {
	case with == 0 && ready == 1:
		why += "the ready node has no " + k.rt + " runtime (its agent found no engine)"
	case with == 0:
		why += fmt.Sprintf("none of the %d ready nodes has it (their agents found no engine)", ready)
	default:
		why += fmt.Sprintf("%d of the %d ready nodes have it", with, ready)
	}
	if ts.preparing > 0 {
		why += ", " + plural(ts.preparing, "node") + " preparing"
	}
	return why
}

// want names what a run waits for: "1 node of cpu-4" for whole nodes,
// else "a node of cpu-2 with 2 cpu, 4096 MiB free".
func (ts *targetState) want(req api.Resources, n int, whole bool) string {
	label := ts.target.VMSize
	if label == "" {
		label = ts.name
	}
	switch {
	case whole:
		return plural(n, "node") + " of " + label
	case n == 1:
		return fmt.Sprintf("a node of %s with %s free", label, req)
	default:
		return fmt.Sprintf("%d nodes of %s with %s free each", n, label, req)
	}
}

// stateList says what the ready nodes do: "3 running, 1 idle".
func (ts *targetState) stateList() string {
	var parts []string
	if running := len(ts.nodes) - ts.idle; running > 0 {
		parts = append(parts, fmt.Sprintf("%d running", running))
	}
	if ts.idle > 0 {
		parts = append(parts, fmt.Sprintf("%d idle", ts.idle))
	}
	return strings.Join(parts, ", ")
}

// gpuUse counts the GPUs the ready nodes offer that are in use, and all
// of them. A node offers the lesser of its GPU capacity and the devices it
// lists; nodes that share their machine's GPUs (local nodes) offer no more
// than the distinct devices they list.
func (ts *targetState) gpuUse() (used, total int) {
	free := 0
	for _, ns := range ts.nodes {
		total += min(ns.node.Capacity.GPUs, len(ns.node.GPUs))
		free += ns.gpuFree()
	}
	if len(ts.shared) > 0 {
		listed, listedFree := distinctGPUs(ts.nodes)
		total, free = min(total, listed), min(free, listedFree)
	}
	return max(total-free, 0), total
}

// victimList names up to three victims and counts the rest.
func victimList(vs []liveRun) string {
	var ids []string
	for i, v := range vs {
		if i == 3 {
			ids = append(ids, fmt.Sprintf("and %d more", len(vs)-3))
			break
		}
		ids = append(ids, v.run.ID)
	}
	return strings.Join(ids, ", ")
}

// plural writes "1 node", "2 nodes".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
