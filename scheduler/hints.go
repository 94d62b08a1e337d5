package scheduler

import "github.com/amld/amld/api"

// Hints remembers the reason a round gave the queued runs it left waiting,
// per target, ask (request, node count and runtime) and priority, leaving
// out each queue's blocked head, whose reason is its own. A run submitted
// after the round that asks the same of the same target at the same
// priority queues behind such a run; where nothing else changed, the next
// round leaves it waiting too, for the same reason (room only shrinks
// along a queue, and the reason depends on the ask, the blocked head and
// the nodes alone). The submit path stores that reason with the new run,
// so that the next round finds it already right and writes nothing for
// it, and the leader need not run that round at all (raftstore's
// State.SchedulingChanges). During a burst of submits into a full target
// that halves the writes of runs and spares most rounds.
type Hints struct {
	reasons map[hintKey]string
}

// hintKey is what a hinted reason depends on.
type hintKey struct {
	target   string
	ask      ask
	priority int
}

// Reason returns the reason the round gave waiting runs that ask what r
// asks of r.Target at r's priority, or "" when it gave none. A nil Hints
// has none.
func (h *Hints) Reason(r *api.Run) string {
	if h == nil {
		return ""
	}
	return h.reasons[hintKey{r.Target, askOf(r), r.Priority}]
}

// add records why, the reason given to a waiting run of target that asks
// k at priority prio.
func (h *Hints) add(k hintKey, why string) {
	if h.reasons == nil {
		h.reasons = map[hintKey]string{}
	}
	h.reasons[k] = why
}
