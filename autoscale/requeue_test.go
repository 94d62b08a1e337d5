package autoscale

import (
	"testing"

	"github.com/amld/amld/api"
)

func TestRunOnAnEvictedNodeGetsItsReplacementDuringTheNotice(t *testing.T) {
	c := cluster(0, 2)
	r := live("r-1", whole, "n-1")
	r.Attempts[0].StopReason = "preempted: node n-1 evicted"
	in := Input{Now: t0, Target: c, Size: cpu2, Nodes: []*api.Node{nodeIn("n-1", api.NodePreempted)}, Runs: []*api.Run{r}}
	d := Decide(Config{}, in)
	if d.Create != 1 || len(d.Delete) != 0 {
		t.Fatalf("create %d delete %v, want one replacement and the evicted node kept until its run stops", d.Create, d.Delete)
	}
	// A run being canceled needs no node.
	r.State = api.RunCancelRequested
	if d := Decide(Config{}, in); d.Create != 0 {
		t.Fatalf("create %d for a canceled run", d.Create)
	}
}
