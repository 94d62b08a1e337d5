package scheduler

import (
	"testing"

	"github.com/amld/amld/api"
)

// A run submitted into a full target, carrying the reason the last round
// gave the waiting runs of its ask, needs no reason written by the next
// round; a run of another ask, or one behind a queue of just its blocked
// head, gets no hint.
func TestHintsWordNewRunsLikeTheWaitingRunsOfTheirAsk(t *testing.T) {
	st := state([]*api.Target{cluster(cc, "cpu-2", 1)}, []*api.Node{node("n0", cc, "cpu-2", api.NodeRunning)},
		running("l0", cc, 0, res(2, 128, 0), 1, "n0"))
	st.Runs = append(st.Runs, queued("q1", cc, 0, 10, res(1, 64, 0), 1))
	p := Schedule(st)
	if h := p.Hints.Reason(queued("x", cc, 0, 12, res(1, 64, 0), 1)); h != "" {
		t.Fatalf("hint %q from a queue that is only its blocked head, want none", h)
	}
	st.Runs = append(st.Runs, queued("q2", cc, 0, 11, res(1, 64, 0), 1))
	p = Schedule(st)
	why := reasons(p)
	for _, r := range st.Runs {
		if w, ok := why[r.ID]; ok {
			r.Reason = w
		}
	}
	fresh := queued("q3", cc, 0, 12, res(1, 64, 0), 1)
	fresh.Reason = p.Hints.Reason(fresh)
	if fresh.Reason == "" || fresh.Reason != why["q2"] {
		t.Fatalf("hint %q, want q2's reason %q", fresh.Reason, why["q2"])
	}
	if h := p.Hints.Reason(queued("big", cc, 0, 13, res(2, 64, 0), 1)); h != "" {
		t.Fatalf("hint %q for an ask no waiting run has, want none", h)
	}
	if h := p.Hints.Reason(queued("urgent", cc, 5, 14, res(1, 64, 0), 1)); h != "" {
		t.Fatalf("hint %q for a run of another priority, which may jump the queue; want none", h)
	}
	if h := p.Hints.Reason(&api.Run{RunSpec: api.RunSpec{Target: "other"}, Request: res(1, 64, 0)}); h != "" {
		t.Fatalf("hint %q for another target, want none", h)
	}
	st.Runs = append(st.Runs, fresh)
	if p := Schedule(st); len(p.Reasons) != 0 || len(p.Placements) != 0 {
		t.Fatalf("the round after the hinted submit wrote %v and placed %v, want nothing", reasons(p), placedOn(p))
	}
	var nilHints *Hints
	if nilHints.Reason(fresh) != "" {
		t.Fatal("a nil Hints gave a reason")
	}
}
