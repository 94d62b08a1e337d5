package scheduler

import (
	"testing"

	"github.com/amld/amld/api"
)

func TestAVictimBeingStoppedIsNotPreemptedAgainNorJoinedByAnother(t *testing.T) {
	whole := res(4, 1024, 0)
	low := running("low", cc, 0, whole, 1, "n1")
	low.Attempts[0].StopReason = "preempted by run urgent"
	st := state([]*api.Target{requeueCluster(2)}, twoBusyNodes(),
		low,
		running("mid", cc, 1, whole, 2, "n2"),
		queued("urgent", cc, 5, 9, whole, 1))
	p := Schedule(st)
	if len(p.Preemptions) != 0 || len(p.Placements) != 0 {
		t.Fatalf("preemptions %v placements %v: the stopping victim frees the room; nothing more to do", p.Preemptions, p.Placements)
	}
}
