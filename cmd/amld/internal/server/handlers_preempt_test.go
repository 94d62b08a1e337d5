package server

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/nodes"
	"github.com/amld/amld/raftstore"
)

var _ nodes.Evicter = (*fakeProvider)(nil)

// Evict records "evict:<node>" among the deletions.
func (p *fakeProvider) Evict(_ context.Context, nodeID string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.deleted = append(p.deleted, "evict:"+nodeID)
	return nil
}

// waitState waits (on state changes, not by sleeping) until cond holds.
func waitState(t *testing.T, ts *testServer, what string, cond func(*raftstore.State) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st := ts.srv.store.State()
	for !cond(st) {
		if ctx.Err() != nil {
			t.Fatalf("timed out waiting for %s", what)
		}
		st = ts.srv.store.WaitForIndex(ctx, st.Index())
	}
}

func wantStatus(t *testing.T, err error, status int, contains string) {
	t.Helper()
	if api.StatusOf(err) != status || !strings.Contains(err.Error(), contains) {
		t.Fatalf("got %v (status %d), want %d mentioning %q", err, api.StatusOf(err), status, contains)
	}
}

func TestSimulatedEvictionStopsRequeuesThenTakesTheMachine(t *testing.T) {
	ts := startTestServer(t)
	ctx := context.Background()
	c := ts.client
	spot := api.TargetSpec{Name: "spot", VMSize: "cpu-2", MaxNodes: 1, VMPriority: api.VMPriorityLowPriority}
	if _, err := c.CreateTarget(ctx, spot); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTarget(ctx, api.TargetSpec{Name: "steady", VMSize: "cpu-2", MaxNodes: 1}); err != nil {
		t.Fatal(err)
	}
	// An agent joins by hand.
	reg, err := c.WithToken(ts.srv.JoinToken()).Register(ctx, api.RegisterRequest{
		Target: "spot", Hostname: "h1", Address: "127.0.0.1:1", Version: "test", Runtimes: []string{"process"},
	})
	if err != nil {
		t.Fatal(err)
	}
	node := c.WithToken(reg.NodeToken)
	id := reg.NodeID

	_, err = c.SimulateEviction(ctx, "steady", api.EvictionRequest{NodeID: "n-x"})
	wantStatus(t, err, 409, "only the nodes of lowpriority clusters")
	_, err = c.SimulateEviction(ctx, "spot", api.EvictionRequest{})
	wantStatus(t, err, 400, "node_id")
	_, err = c.SimulateEviction(ctx, "spot", api.EvictionRequest{NodeID: "n-nope"})
	wantStatus(t, err, 404, "n-nope")
	big := api.MaxPreemptionGraceSeconds + 1
	_, err = c.SimulateEviction(ctx, "spot", api.EvictionRequest{NodeID: id, GraceSeconds: &big})
	wantStatus(t, err, 400, "grace_seconds")
	_, err = c.SimulateEviction(ctx, "nope", api.EvictionRequest{NodeID: id})
	wantStatus(t, err, 404, "nope")

	run, err := c.SubmitRun(ctx, api.RunSpec{Target: "spot", Command: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, ts, "the run placed", func(st *raftstore.State) bool { return st.Run(run.ID).LiveAttempt() != nil })
	key := api.AttemptKey{RunID: run.ID, Attempt: 1}
	if err := node.ReportStatus(ctx, api.AttemptStatus{AttemptKey: key, State: api.AttemptRunning}); err != nil {
		t.Fatal(err)
	}
	ckpt := []byte("\x1f\x8b fake checkpoint")
	if _, err := node.UploadCheckpoint(ctx, key, ckpt); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := node.DownloadCheckpoint(ctx, key, &got); err != nil || !bytes.Equal(got.Bytes(), ckpt) {
		t.Fatalf("download checkpoint: %v, %q", err, got.Bytes())
	}

	grace := 7
	ev, err := c.SimulateEviction(ctx, "spot", api.EvictionRequest{NodeID: id, GraceSeconds: &grace})
	if err != nil {
		t.Fatal(err)
	}
	if ev.GraceSeconds != 7 || !slices.Equal(ev.Runs, []string{run.ID}) {
		t.Fatalf("eviction %+v", ev)
	}
	_, err = c.SimulateEviction(ctx, "spot", api.EvictionRequest{NodeID: id})
	wantStatus(t, err, 409, "already being evicted")
	asg, err := node.Assignments(ctx, id, api.Wait{})
	if err != nil || len(asg.Assignments) != 1 {
		t.Fatalf("assignments %+v, %v", asg, err)
	}
	if a := asg.Assignments[0]; !a.Stop || a.GraceSeconds != 7 || !strings.HasPrefix(a.StopReason, "preempted: node "+id+" evicted") {
		t.Fatalf("assignment %+v: want a stop with the notice", a)
	}
	r, _, _ := c.GetRun(ctx, run.ID, api.Wait{})
	if r.State != api.RunRunning || !strings.HasPrefix(r.Reason, "stopping (grace 7s): preempted") {
		t.Fatalf("run %s %q while it stops", r.State, r.Reason)
	}

	code := 143
	if err := node.ReportStatus(ctx, api.AttemptStatus{AttemptKey: key, State: api.AttemptExited, ExitCode: &code, Stopped: true}); err != nil {
		t.Fatal(err)
	}
	waitState(t, ts, "the evicted node removed", func(st *raftstore.State) bool { return st.Node(id) == nil })
	ts.prov.mu.Lock()
	deleted := slices.Clone(ts.prov.deleted)
	ts.prov.mu.Unlock()
	if !slices.Contains(deleted, "evict:"+id) {
		t.Errorf("provider calls %v: want the machine evicted", deleted)
	}
	r, _, _ = c.GetRun(ctx, run.ID, api.Wait{})
	if r.Preemptions != 1 || r.Retries != 0 || !strings.HasPrefix(r.Attempts[0].Reason, "preempted: node "+id) {
		t.Fatalf("run preemptions %d retries %d attempt reason %q", r.Preemptions, r.Retries, r.Attempts[0].Reason)
	}
	// The node's late calls are refused.
	if _, err := node.UploadCheckpoint(ctx, key, []byte("late")); api.StatusOf(err) < 400 {
		t.Fatalf("late checkpoint upload: %v", err)
	}
}

func TestPreemptionGraceIsValidatedAndResolved(t *testing.T) {
	sizes := testSizes(t)
	for _, g := range []int{-1, api.MaxPreemptionGraceSeconds + 1} {
		_, err := validateTargetSpec(api.TargetSpec{Name: "spot", VMSize: "cpu-2", MaxNodes: 1, PreemptionGraceSeconds: &g}, sizes, []string{"local"}, "local")
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Field != "preemption_grace_seconds" {
			t.Errorf("grace %d: %v, want an error naming preemption_grace_seconds", g, err)
		}
		if err := validateTargetUpdate(&api.Target{TargetSpec: api.TargetSpec{MaxNodes: 1}}, api.TargetUpdate{PreemptionGraceSeconds: &g}); err == nil {
			t.Errorf("update to grace %d accepted", g)
		}
	}
	s := &Server{cfg: DefaultConfig()}
	if got := s.preemptionGrace(&api.Target{}); got != api.DefaultPreemptionGraceSeconds {
		t.Errorf("default grace %d", got)
	}
	five := 5
	if got := s.preemptionGrace(&api.Target{TargetSpec: api.TargetSpec{PreemptionGraceSeconds: &five}}); got != 5 {
		t.Errorf("target grace %d", got)
	}
	cfg := DefaultConfig()
	cfg.PreemptionGrace = 11 * time.Minute
	cfg.DataDir, cfg.Providers = "/tmp/x", map[string]nodes.Provider{"local": &fakeProvider{}}
	cfg.DefaultProvider = "local"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "preemption grace") {
		t.Errorf("Validate with an 11m grace: %v", err)
	}
}
