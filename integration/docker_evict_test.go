package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// TestDockerSimulatedEvictionRequeuesAndResumes evicts a node of a
// lowpriority docker-provider cluster with notice: the run's container gets
// SIGTERM, its checkpoint is kept, the node container is taken, and the run
// resumes from the checkpoint on a new node.
func TestDockerSimulatedEvictionRequeuesAndResumes(t *testing.T) {
	h := startDockerHead(t)
	c := h.client()
	if _, err := c.CreateTarget(ctx(t), api.TargetSpec{
		Name: "dk-spot", VMSize: "cpu-1", MaxNodes: 2, IdleSecondsBeforeScaledown: intp(60),
		Provider: "docker", VMPriority: api.VMPriorityLowPriority,
	}); err != nil {
		t.Fatal(err)
	}
	script := `n=$(cat "$AML_CHECKPOINT_DIR/n" 2>/dev/null || echo 0); echo "resume $n"; i=$n
while [ "$i" -lt 12 ]; do i=$((i+1)); echo "$i" > "$AML_CHECKPOINT_DIR/n"; echo "step $i"; sleep 0.5; done; echo done`
	ids := submitAll(t, c, imageRun("dk-spot", script))
	r := waitRunState(t, c, 2*time.Minute, ids[0], api.RunRunning)
	waitLog(t, c, 60*time.Second, ids[0], 1, "step 3")
	first := r.Attempts[0].Allocations[0].NodeID

	out, errOut, code := h.ctl("compute", "simulate-eviction", "dk-spot", "--node", first, "--grace-seconds", "5")
	if code != 0 {
		t.Fatalf("simulate-eviction: exit %d\n%s%s", code, out, errOut)
	}
	r = waitTerminal(t, c, 2*time.Minute, ids)[ids[0]]
	completedOnce(t, r)
	if len(r.Attempts) < 2 || r.Preemptions < 1 || r.Retries != 0 {
		t.Fatalf("run %s: %d attempts, %d preemptions, %d retries; want a requeue counted as a preemption", r.ID, len(r.Attempts), r.Preemptions, r.Retries)
	}
	if a1 := r.Attempts[0]; !strings.HasPrefix(a1.Reason, "preempted") {
		t.Errorf("attempt 1 reason = %q, want preempted", a1.Reason)
	}
	last := r.Attempts[len(r.Attempts)-1]
	if last.Allocations[0].NodeID == first {
		t.Errorf("the last attempt ran on the evicted node %s", first)
	}
	if log := fullLog(t, c, ids[0], last.Number); strings.Contains(log, "resume 0") || !strings.Contains(log, "done") {
		for _, a := range r.Attempts {
			t.Logf("attempt %d on %s: %s; log:\n%s", a.Number, a.Allocations[0].NodeID, a.Reason, fullLog(t, c, ids[0], a.Number))
		}
		t.Errorf("the last attempt did not resume from the checkpoint:\n%s", log)
	}
	waitFor(t, 60*time.Second, "the evicted node's container to be gone", func() (bool, string) {
		left := dockerLines(t, "ps", "-aq", "--filter", "name=amld-node-"+first)
		return len(left) == 0, fmt.Sprint(left)
	})
}
