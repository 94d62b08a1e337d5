package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

func TestSimulateEvictionSendsTheNodeAndGrace(t *testing.T) {
	f := newFakeHead(t)
	f.handle("POST /v1/targets/{name}/simulate-eviction", &api.Eviction{
		Target: "spot", NodeID: "n-1", GraceSeconds: 5, Deadline: time.Now(), Runs: []string{"r-1"},
	})
	res := f.runCLI(t.Context(), "compute", "simulate-eviction", "spot", "--node", "n-1", "--grace-seconds", "5")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	var got api.EvictionRequest
	if err := json.Unmarshal(f.body("POST /v1/targets/spot/simulate-eviction"), &got); err != nil {
		t.Fatal(err)
	}
	if got.NodeID != "n-1" || got.GraceSeconds == nil || *got.GraceSeconds != 5 {
		t.Errorf("sent %+v", got)
	}
	if !strings.Contains(res.stdout, "Evicting node n-1 of spot: 5s notice") || !strings.Contains(res.stdout, "requeuing r-1") {
		t.Errorf("stdout %q", res.stdout)
	}
}

func TestPreemptionFlagsAreCheckedAndSent(t *testing.T) {
	f := newFakeHead(t)
	f.handle("PATCH /v1/targets/{name}", &api.Target{})
	if res := f.runCLI(t.Context(), "compute", "update", "spot", "--preemption-grace-seconds", "12"); res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if got := string(f.body("PATCH /v1/targets/spot")); strings.TrimSpace(got) != `{"preemption_grace_seconds":12}` {
		t.Errorf("sent %s", got)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"compute", "simulate-eviction", "spot"}, "--node is required"},
		{[]string{"compute", "simulate-eviction", "spot", "--node", "n-1", "--grace-seconds", "601"}, "--grace-seconds must be 0..600"},
		{[]string{"compute", "update", "spot", "--preemption-grace-seconds", "-1"}, "--preemption-grace-seconds must be 0..600"},
		{[]string{"compute", "create", "cluster", "--name", "c", "--max-nodes", "2", "--preemption-grace-seconds", "9999"}, "--preemption-grace-seconds (preemption_grace_seconds)"},
	} {
		if res := f.runCLI(t.Context(), tc.args...); res.code != 2 || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, res.code, res.stderr, tc.want)
		}
	}
}
