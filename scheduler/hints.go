package scheduler

import "github.com/amld/amld/api"

// Hints remembers the reason a round gave the queued runs it left waiting,
// per target and per ask (request, node count and runtime), leaving out
// each queue's blocked head, whose reason is its own. A run submitted
// before the next round that asks the same of the same target will almost
// always be given that reason too: the submit path stores it with the new
// run, so that the next round finds the reason already right and writes
// nothing for it. During a burst of submits into a full target that halves
// the writes of runs. A wrong guess lasts one round: the next one corrects
// it like any other stale reason.
type Hints struct {
	reasons map[hintKey]string
}

// hintKey is what a hinted reason depends on.
type hintKey struct {
	target string
	ask    ask
}

// Reason returns the reason the round gave queued runs that ask what r
// asks of r.Target, or "" when it gave none. A nil Hints has none.
func (h *Hints) Reason(r *api.Run) string {
	if h == nil {
		return ""
	}
	return h.reasons[hintKey{r.Target, askOf(r)}]
}

// add records why, the reason given to a waiting run of target that asks k.
func (h *Hints) add(target string, k ask, why string) {
	if h.reasons == nil {
		h.reasons = map[hintKey]string{}
	}
	h.reasons[hintKey{target, k}] = why
}
