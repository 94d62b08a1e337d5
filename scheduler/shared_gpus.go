package scheduler

import "slices"

// sharedGPUs maps each GPU UUID that more than one ready node lists to
// those nodes. Nodes share GPUs when they run on one machine (the local
// provider's agents all see their machine's devices): a UUID handed out on
// one of them is gone from the others too. Usually empty.
type sharedGPUs map[string][]*nodeState

// findShared indexes the UUIDs listed by more than one ready node, over
// every target of the round.
func findShared(targets []*targetState) sharedGPUs {
	var first map[string]*nodeState
	var s sharedGPUs
	for _, ts := range targets {
		for _, ns := range ts.nodes {
			for _, g := range ns.node.GPUs {
				if first == nil {
					first = map[string]*nodeState{}
				}
				prev, ok := first[g.UUID]
				switch {
				case !ok:
					first[g.UUID] = ns
				case prev == ns:
				default:
					if s == nil {
						s = sharedGPUs{}
					}
					if len(s[g.UUID]) == 0 {
						s[g.UUID] = []*nodeState{prev}
					}
					if !slices.Contains(s[g.UUID], ns) {
						s[g.UUID] = append(s[g.UUID], ns)
					}
				}
			}
		}
	}
	return s
}

// take removes uuids, just handed out on node from, from the free lists of
// the other nodes that share them.
func (s sharedGPUs) take(from *nodeState, uuids []string) {
	if len(s) == 0 {
		return
	}
	for _, u := range uuids {
		for _, ns := range s[u] {
			if ns != from && slices.Contains(ns.gpus, u) {
				ns.gpus = slices.DeleteFunc(slices.Clone(ns.gpus), func(x string) bool { return x == u })
			}
		}
	}
}

// distinctGPUs counts the distinct UUIDs the nodes list, and the distinct
// free ones among them.
func distinctGPUs(nodes []*nodeState) (listed, free int) {
	all, fr := map[string]bool{}, map[string]bool{}
	for _, ns := range nodes {
		for _, g := range ns.node.GPUs {
			all[g.UUID] = true
		}
		for _, u := range ns.gpus {
			fr[u] = true
		}
	}
	return len(all), len(fr)
}
