package raftstore

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/amld/amld/api"
)

func TestRunKeyIsKeptApartAndDroppedWhenTheRunEnds(t *testing.T) {
	h := newHarness(t)
	h.must(MsgBootstrap, &BootstrapRequest{ClusterID: "c-1", AdminTokenHash: "admin-h", JoinTokenHash: "join-h", Time: h.tick()})
	h.cluster("cpu", 4)
	h.readyNode("n-1", "cpu", size4)
	h.readyNode("n-2", "cpu", size4)
	h.must(MsgRunSubmit, &RunSubmitRequest{
		Run:    &api.Run{ID: "mpi", RunSpec: api.RunSpec{Target: "cpu", Command: []string{"./a"}, NodeCount: 2}, Request: half, SubmittedAt: h.tick()},
		SSHKey: &RunKey{RunID: "ignored", Private: "PRIVATE-KEY", Public: "ssh-ed25519 AAAA"},
	})
	k := h.st().RunKey("mpi")
	if k == nil || k.RunID != "mpi" || k.Private != "PRIVATE-KEY" {
		t.Fatalf("RunKey(mpi) = %+v; want the submitted key under the run's ID", k)
	}
	b, _ := json.Marshal(h.st().Run("mpi"))
	if strings.Contains(string(b), "PRIVATE-KEY") {
		t.Fatalf("the run's JSON shows its private key: %s", b)
	}
	h.place("mpi", "n-1", "n-2")
	h.mustReport("mpi", "n-1", 0, running)
	if h.st().RunKey("mpi") == nil {
		t.Fatalf("the key is gone while the run runs")
	}
	h.mustReport("mpi", "n-1", 0, exited(0))
	if r := h.st().Run("mpi"); r.State != api.RunCompleted {
		t.Fatalf("run is %s, want Completed", r.State)
	}
	if k := h.st().RunKey("mpi"); k != nil {
		t.Errorf("the key of an ended run is still kept: %+v", k)
	}
}
