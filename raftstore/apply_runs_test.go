package raftstore

import (
	"slices"
	"strings"
	"testing"

	"github.com/amld/amld/api"
)

func runIDs(runs []*api.Run) []string {
	var ids []string
	for _, r := range runs {
		ids = append(ids, r.ID)
	}
	return ids
}

func TestRunCompletesAfterExitZero(t *testing.T) {
	h := newHarness(t)
	h.cluster("cpu", 4)
	h.readyNode("n-1", "cpu", size4)
	h.submit("r-1", "cpu", nil)
	submitIndex := h.index

	r := h.run("r-1")
	checkRun(t, r, api.RunQueued, "waiting for the scheduler")
	if r.QueueSeq != queueSeq(submitIndex, 0) || r.CreateIndex != submitIndex {
		t.Fatalf("QueueSeq %d CreateIndex %d, want %d and %d", r.QueueSeq, r.CreateIndex, queueSeq(submitIndex, 0), submitIndex)
	}
	if got := runIDs(h.st().PendingRuns()); !slices.Equal(got, []string{"r-1"}) {
		t.Fatalf("pending %v", got)
	}

	h.place("r-1", "n-1")
	r = h.run("r-1")
	checkRun(t, r, api.RunPreparing, "")
	if a := r.Current(); a.Number != 1 || a.PlacedAt != h.now || a.Nodes[0].State != api.AttemptPreparing {
		t.Fatalf("attempt %+v", a)
	}
	if n := h.node("n-1"); n.State != api.NodeRunning || !n.IdleSince.IsZero() || n.StateChangedAt != h.now {
		t.Fatalf("node after placement: %s idle since %v changed %v", n.State, n.IdleSince, n.StateChangedAt)
	}
	if got := runIDs(h.st().RunsOnNode("n-1")); !slices.Equal(got, []string{"r-1"}) {
		t.Fatalf("runs on n-1: %v", got)
	}

	h.mustReport("r-1", "n-1", 0, running)
	startedAt := h.now
	r = h.run("r-1")
	checkRun(t, r, api.RunRunning, "")
	if r.StartedAt != startedAt || r.Current().StartedAt != startedAt || r.Current().Nodes[0].Started != startedAt {
		t.Fatalf("start times not stamped: %+v", r)
	}

	h.mustReport("r-1", "n-1", 0, api.AttemptStatus{State: api.AttemptFinalizing})
	checkRun(t, h.run("r-1"), api.RunFinalizing, "")

	st := exited(0)
	st.OutputsID = "blob-out"
	h.mustReport("r-1", "n-1", 0, st)
	r = h.run("r-1")
	checkRun(t, r, api.RunCompleted, "")
	a := r.Current()
	if r.ExitCode == nil || *r.ExitCode != 0 || r.EndedAt != h.now {
		t.Fatalf("run exit %v ended %v", r.ExitCode, r.EndedAt)
	}
	if !a.Ended || a.EndedAt != h.now || a.ExitCode == nil || *a.ExitCode != 0 || a.OutputsID != "blob-out" {
		t.Fatalf("attempt not ended right: %+v", a)
	}
	if n := h.node("n-1"); n.State != api.NodeIdle || n.IdleSince != h.now {
		t.Fatalf("node after run: %s idle since %v", n.State, n.IdleSince)
	}
	if len(h.st().PendingRuns()) != 0 || len(h.st().RunsOnNode("n-1")) != 0 {
		t.Fatal("a finished run is still pending or on its node")
	}
	tg := h.st().Target("cpu")
	if tg.CurrentNodeCount != 1 || tg.NodeStateCounts.Idle != 1 || tg.NodeStateCounts.Running != 0 {
		t.Fatalf("target counts %d %+v", tg.CurrentNodeCount, tg.NodeStateCounts)
	}
}

func TestFailedRunRetriesAtItsPlaceThenFails(t *testing.T) {
	h := newHarness(t)
	h.cluster("cpu", 4)
	h.readyNode("n-1", "cpu", size4)
	h.submit("r-1", "cpu", func(r *api.Run) { r.MaxRetries = 1 })
	h.submit("r-2", "cpu", nil)
	seq := h.run("r-1").QueueSeq

	h.place("r-1", "n-1")
	h.mustReport("r-1", "n-1", 0, running)
	h.mustReport("r-1", "n-1", 0, exited(3))
	r := h.run("r-1")
	checkRun(t, r, api.RunQueued, "retrying after exit code 3 (retry 1 of 1)")
	if r.QueueSeq != seq || r.Retries != 1 || r.Preemptions != 0 {
		t.Fatalf("requeued with seq %d (want %d) retries %d preemptions %d", r.QueueSeq, seq, r.Retries, r.Preemptions)
	}
	if a := r.Current(); !a.Ended || a.Reason != "exit code 3 on node n-1 (rank 0)" || *a.ExitCode != 3 {
		t.Fatalf("attempt %+v", a)
	}
	if got := runIDs(h.st().PendingRuns()); !slices.Equal(got, []string{"r-1", "r-2"}) {
		t.Fatalf("pending %v, want r-1 back ahead of r-2", got)
	}
	if h.node("n-1").State != api.NodeIdle {
		t.Fatal("node not idle after the attempt ended")
	}

	h.place("r-1", "n-1")
	if n := h.run("r-1").Current().Number; n != 2 {
		t.Fatalf("second attempt numbered %d", n)
	}
	h.mustReport("r-1", "n-1", 0, exited(3))
	r = h.run("r-1")
	checkRun(t, r, api.RunFailed, "exit code 3 on node n-1 (rank 0) (after 1 retries)")
	if r.ExitCode == nil || *r.ExitCode != 3 || r.EndedAt != h.now {
		t.Fatalf("failed run exit %v ended %v", r.ExitCode, r.EndedAt)
	}
}

func TestTimedOutRunFailsWithoutRetry(t *testing.T) {
	h := newHarness(t)
	h.cluster("cpu", 4)
	h.readyNode("n-1", "cpu", size4)
	h.submit("r-1", "cpu", func(r *api.Run) { r.MaxRetries = 3; r.MaxRunDurationSeconds = 60 })
	h.place("r-1", "n-1")
	h.mustReport("r-1", "n-1", 0, running)
	s := exited(137)
	s.TimedOut = true
	h.mustReport("r-1", "n-1", 0, s)
	r := h.run("r-1")
	checkRun(t, r, api.RunFailed, "exceeded max_run_duration_seconds=60")
	if r.Retries != 0 {
		t.Fatalf("a time-out spent a retry")
	}
}

func TestLostAttemptRequeuesWithoutSpendingRetries(t *testing.T) {
	h := newHarness(t)
	h.cluster("cpu", 4)
	h.readyNode("n-1", "cpu", size4)
	h.submit("r-1", "cpu", func(r *api.Run) { r.MaxRetries = 1 })
	h.place("r-1", "n-1")
	h.mustReport("r-1", "n-1", 0, running)
	h.mustReport("r-1", "n-1", 0, api.AttemptStatus{State: api.AttemptExited, Lost: true, Reason: "agent restarted"})
	r := h.run("r-1")
	checkRun(t, r, api.RunQueued, "requeued: lost on node n-1 (rank 0): agent restarted")
	if r.Retries != 0 || r.Preemptions != 1 {
		t.Fatalf("retries %d preemptions %d", r.Retries, r.Preemptions)
	}
}

func TestStaleAttemptReportsAreRefused(t *testing.T) {
	h := newHarness(t)
	h.cluster("cpu", 4)
	h.readyNode("n-1", "cpu", size4)
	h.readyNode("n-2", "cpu", size4)
	h.submit("r-1", "cpu", nil)
	h.place("r-1", "n-1")
	h.mustReport("r-1", "n-1", 0, running)

	// A node that does not hold the rank.
	err := h.report("r-1", "n-2", 0, exited(0))
	wantAPIError(t, err, api.CodeFailedPre)
	// A rank out of range.
	wantAPIError(t, h.report("r-1", "n-1", 1, exited(0)), api.CodeFailedPre)

	// The node is lost; the run is placed again elsewhere.
	h.must(MsgNodeDown, &NodeDownRequest{NodeID: "n-1", State: api.NodeUnusable, Reason: "missed heartbeats for 10s", Time: h.tick()})
	h.place("r-1", "n-2")
	before := dump(t, h.st())

	// The old node comes back and reports on attempt 1.
	s := exited(0)
	s.Attempt = 1
	e := wantAPIError(t, h.report("r-1", "n-1", 0, s), api.CodeFailedPre)
	if e.Message != "attempt 1 of run r-1 is no longer current" {
		t.Fatalf("message %q", e.Message)
	}
	// Its logs for attempt 1 are refused too.
	err = h.apply(MsgLogAppend, &LogAppendRequest{NodeID: "n-1", Log: api.LogAppend{
		AttemptKey: api.AttemptKey{RunID: "r-1", Attempt: 1}, Data: []byte("late\n")}})
	wantAPIError(t, err, api.CodeFailedPre)
	// So are logs for the new attempt from a node that does not hold it.
	err = h.apply(MsgLogAppend, &LogAppendRequest{NodeID: "n-1", Log: api.LogAppend{
		AttemptKey: api.AttemptKey{RunID: "r-1", Attempt: 2}, Data: []byte("x\n")}})
	wantAPIError(t, err, api.CodeFailedPre)
	if after := dump(t, h.st()); after[strings.IndexByte(after, '\n'):] != before[strings.IndexByte(before, '\n'):] {
		t.Fatal("refused commands changed the state")
	}
	// Reports on an unknown run are 404.
	wantAPIError(t, h.apply(MsgAttemptStatus, &AttemptStatusRequest{NodeID: "n-2",
		Status: api.AttemptStatus{AttemptKey: api.AttemptKey{RunID: "nope", Attempt: 1}, State: api.AttemptRunning}}), api.CodeNotFound)
}

func TestRepeatedAndBackwardReportsChangeNothing(t *testing.T) {
	h := newHarness(t)
	h.cluster("cpu", 4)
	h.readyNode("n-1", "cpu", size4)
	h.submit("r-1", "cpu", nil)
	h.place("r-1", "n-1")
	h.mustReport("r-1", "n-1", 0, api.AttemptStatus{State: api.AttemptFinalizing})
	before := h.run("r-1")
	h.mustReport("r-1", "n-1", 0, running)
	h.mustReport("r-1", "n-1", 0, api.AttemptStatus{State: api.AttemptFinalizing})
	if h.run("r-1") != before {
		t.Fatal("a late or repeated report changed the run")
	}
	wantAPIError(t, h.report("r-1", "n-1", 0, api.AttemptStatus{State: api.AttemptExited}), api.CodeInvalid)
	wantAPIError(t, h.report("r-1", "n-1", 0, api.AttemptStatus{State: "dancing"}), api.CodeInvalid)
}

func TestCancel(t *testing.T) {
	h := newHarness(t)
	h.cluster("cpu", 4)
	h.readyNode("n-1", "cpu", size4)
	h.submit("queued", "cpu", nil)
	h.submit("busy", "cpu", func(r *api.Run) { r.MaxRetries = 5 })
	h.place("busy", "n-1")
	h.mustReport("busy", "n-1", 0, running)

	h.must(MsgRunCancel, &RunCancelRequest{RunID: "queued", Time: h.tick()})
	r := h.run("queued")
	checkRun(t, r, api.RunCanceled, "canceled by user")
	if r.EndedAt != h.now {
		t.Fatalf("EndedAt %v", r.EndedAt)
	}

	h.must(MsgRunCancel, &RunCancelRequest{RunID: "busy", Time: h.tick()})
	checkRun(t, h.run("busy"), api.RunCancelRequested, "cancel requested")
	if len(h.st().RunsOnNode("n-1")) != 1 {
		t.Fatal("a cancel-requested run lost its node before its agent stopped it")
	}
	h.must(MsgRunCancel, &RunCancelRequest{RunID: "busy", Time: h.tick()}) // asked twice: fine
	// The agent kills it; the non-zero exit does not retry.
	h.mustReport("busy", "n-1", 0, exited(137))
	checkRun(t, h.run("busy"), api.RunCanceled, "canceled")
	if h.node("n-1").State != api.NodeIdle {
		t.Fatal("node still busy")
	}

	e := wantAPIError(t, h.apply(MsgRunCancel, &RunCancelRequest{RunID: "busy", Time: h.tick()}), api.CodeFailedPre)
	if !strings.Contains(e.Message, api.RunCanceled) {
		t.Fatalf("message %q does not name the state", e.Message)
	}
	wantAPIError(t, h.apply(MsgRunCancel, &RunCancelRequest{RunID: "nope"}), api.CodeNotFound)
}

func TestCancelRequestedRunOnDownNodeIsCanceled(t *testing.T) {
	h := newHarness(t)
	h.cluster("cpu", 4)
	h.readyNode("n-1", "cpu", size4)
	h.submit("r-1", "cpu", nil)
	h.place("r-1", "n-1")
	h.must(MsgRunCancel, &RunCancelRequest{RunID: "r-1", Time: h.tick()})
	h.must(MsgNodeDown, &NodeDownRequest{NodeID: "n-1", State: api.NodeUnusable, Reason: "gone", Time: h.tick()})
	r := h.run("r-1")
	checkRun(t, r, api.RunCanceled, "canceled")
	if r.Preemptions != 0 {
		t.Fatal("a canceled run counted a preemption")
	}
}

func TestSubmitRefusals(t *testing.T) {
	h := newHarness(t)
	h.cluster("cpu", 4)
	h.submit("r-1", "cpu", nil)
	err := h.apply(MsgRunSubmit, &RunSubmitRequest{Run: &api.Run{ID: "r-2", RunSpec: api.RunSpec{Target: "gpu"}}})
	wantAPIError(t, err, api.CodeNotFound)
	err = h.apply(MsgRunSubmit, &RunSubmitRequest{Run: &api.Run{ID: "r-1", RunSpec: api.RunSpec{Target: "cpu"}}})
	wantAPIError(t, err, api.CodeConflict)
	wantAPIError(t, h.apply(MsgRunSubmit, &RunSubmitRequest{}), api.CodeInvalid)
	h.must(MsgTargetDelete, &TargetDeleteRequest{Name: "cpu", Time: h.tick()})
	err = h.apply(MsgRunSubmit, &RunSubmitRequest{Run: &api.Run{ID: "r-3", RunSpec: api.RunSpec{Target: "cpu"}}})
	wantAPIError(t, err, api.CodeFailedPre)
}

func TestPlanApplySkipsPlacementsThatNoLongerFit(t *testing.T) {
	h := newHarness(t)
	h.cluster("cpu", 4)
	h.cluster("other", 4)
	h.readyNode("n-1", "cpu", size4, "GPU-a", "GPU-b")
	h.readyNode("n-2", "cpu", size4)
	h.readyNode("o-1", "other", size4)
	h.must(MsgNodeCreate, &NodeCreateRequest{Node: &api.Node{ID: "n-prep", Target: "cpu", CreatedAt: h.tick()}})
	for _, id := range []string{"a", "b", "c", "gang", "wrong-target", "not-ready", "unknown", "gpu1", "gpu2", "gpu-ghost"} {
		h.submit(id, "cpu", func(r *api.Run) {
			if id == "gang" {
				r.NodeCount = 2
			}
		})
	}
	alloc := func(node string, gpus ...string) api.Allocation {
		return api.Allocation{NodeID: node, Resources: api.Resources{CPUs: 1, MemoryMB: 1024, GPUs: len(gpus)}, GPUUUIDs: gpus}
	}
	big := api.Allocation{NodeID: "n-1", Resources: half}
	h.must(MsgPlanApply, &PlanApplyRequest{
		Time: h.tick(),
		Placements: []Placement{
			{RunID: "a", Allocations: []api.Allocation{big}},
			{RunID: "b", Allocations: []api.Allocation{big}},
			{RunID: "c", Allocations: []api.Allocation{big}},                           // n-1 is full now
			{RunID: "a", Allocations: []api.Allocation{alloc("n-2")}},                  // a is no longer Queued
			{RunID: "gang", Allocations: []api.Allocation{alloc("n-2")}},               // one node short
			{RunID: "gang", Allocations: []api.Allocation{alloc("n-2"), alloc("n-2")}}, // same node twice
			{RunID: "wrong-target", Allocations: []api.Allocation{alloc("o-1")}},
			{RunID: "not-ready", Allocations: []api.Allocation{alloc("n-prep")}},
			{RunID: "unknown", Allocations: []api.Allocation{alloc("n-404")}},
			{RunID: "ghost-run", Allocations: []api.Allocation{alloc("n-2")}},
			{RunID: "gpu-ghost", Allocations: []api.Allocation{alloc("n-2", "GPU-a")}}, // GPU of another node
		},
		Reasons: []WaitReason{{RunID: "c", Reason: "waiting for 1 node of cpu"}, {RunID: "a", Reason: "ignored: a is placed"}},
	})
	for id, want := range map[string]string{
		"a": api.RunPreparing, "b": api.RunPreparing, "c": api.RunQueued, "gang": api.RunQueued,
		"wrong-target": api.RunQueued, "not-ready": api.RunQueued, "unknown": api.RunQueued, "gpu-ghost": api.RunQueued,
	} {
		if r := h.run(id); r.State != want {
			t.Errorf("run %s is %s, want %s", id, r.State, want)
		}
	}
	if r := h.run("a"); len(r.Attempts) != 1 || r.Current().Allocations[0].NodeID != "n-1" || r.Reason != "" {
		t.Errorf("a placed twice or reason set: %+v", r.Attempts)
	}
	checkRun(t, h.run("c"), api.RunQueued, "waiting for 1 node of cpu")

	// GPUs by UUID: one holder each. n-1 has no CPU room left, so use a
	// fresh plan after freeing it.
	h.must(MsgRunCancel, &RunCancelRequest{RunID: "a", Time: h.tick()})
	h.mustReport("a", "n-1", 0, exited(0))
	h.must(MsgPlanApply, &PlanApplyRequest{Time: h.tick(), Placements: []Placement{
		{RunID: "gpu1", Allocations: []api.Allocation{alloc("n-1", "GPU-a")}},
		{RunID: "gpu2", Allocations: []api.Allocation{alloc("n-1", "GPU-a")}}, // taken by gpu1
	}})
	checkRun(t, h.run("gpu1"), api.RunPreparing, "")
	if h.run("gpu2").State != api.RunQueued {
		t.Fatal("a GPU was handed to two runs")
	}
	h.must(MsgPlanApply, &PlanApplyRequest{Time: h.tick(), Placements: []Placement{
		{RunID: "gpu2", Allocations: []api.Allocation{alloc("n-1", "GPU-b")}},
	}})
	checkRun(t, h.run("gpu2"), api.RunPreparing, "")
}

func TestGangEndsPerDistribution(t *testing.T) {
	type report struct {
		rank int
		code int
	}
	cases := []struct {
		name         string
		distribution string
		reports      []report
		endsAfter    int // reports until the attempt ends
		state        string
		reason       string
	}{
		{"mpi ends when node 0 exits", api.DistributionMPI, []report{{1, 0}, {0, 0}}, 2, api.RunCompleted, "exit code 0"},
		{"mpi node 0 first ends at once", api.DistributionMPI, []report{{0, 0}}, 1, api.RunCompleted, "exit code 0"},
		{"default is mpi", "", []report{{0, 0}}, 1, api.RunCompleted, "exit code 0"},
		{"none waits for every node", api.DistributionNone, []report{{0, 0}, {1, 0}}, 2, api.RunCompleted, "exit code 0"},
		{"any failure ends a gang", api.DistributionNone, []report{{1, 2}}, 1, api.RunFailed, "exit code 2 on node n-2 (rank 1)"},
		{"mpi rank failure ends it", api.DistributionMPI, []report{{1, 9}}, 1, api.RunFailed, "exit code 9 on node n-2 (rank 1)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.cluster("cpu", 4)
			h.readyNode("n-1", "cpu", size4)
			h.readyNode("n-2", "cpu", size4)
			h.submit("r", "cpu", func(r *api.Run) { r.NodeCount = 2; r.Distribution = tc.distribution })
			h.place("r", "n-1", "n-2")
			nodes := []string{"n-1", "n-2"}
			for i, rep := range tc.reports {
				h.mustReport("r", nodes[rep.rank], rep.rank, running)
				if ended := h.run("r").Current().Ended; ended {
					t.Fatalf("attempt ended before report %d", i)
				}
				h.mustReport("r", nodes[rep.rank], rep.rank, exited(rep.code))
				if ended := h.run("r").Current().Ended; ended != (i+1 >= tc.endsAfter) {
					t.Fatalf("after report %d the attempt ended=%v", i+1, ended)
				}
			}
			r := h.run("r")
			if r.State != tc.state || r.Current().Reason != tc.reason {
				t.Fatalf("run %s, attempt reason %q; want %s, %q", r.State, r.Current().Reason, tc.state, tc.reason)
			}
			for _, n := range nodes {
				if h.node(n).State != api.NodeIdle {
					t.Fatalf("node %s still %s after the attempt ended", n, h.node(n).State)
				}
			}
			// Reports from the other rank after the end are fenced off.
			if len(tc.reports) == 1 {
				other := 1 - tc.reports[0].rank
				wantAPIError(t, h.report("r", nodes[other], other, exited(0)), api.CodeFailedPre)
			}
		})
	}
}

func TestPriorityPreemptionRequeues(t *testing.T) {
	h := newHarness(t)
	h.cluster("cpu", 1)
	h.readyNode("n-1", "cpu", size4)
	h.submit("low", "cpu", nil)
	h.submit("high", "cpu", func(r *api.Run) { r.Priority = 10; r.Request = size4 })
	h.place("low", "n-1")
	h.mustReport("low", "n-1", 0, running)
	h.must(MsgPlanApply, &PlanApplyRequest{
		Time:        h.tick(),
		Preemptions: []Preemption{{RunID: "low", By: "high"}},
		Placements:  []Placement{{RunID: "high", Allocations: []api.Allocation{{NodeID: "n-1", Resources: size4}}}},
	})
	low := h.run("low")
	checkRun(t, low, api.RunQueued, "requeued: preempted by run high")
	if low.Preemptions != 1 || low.Retries != 0 {
		t.Fatalf("preemptions %d retries %d", low.Preemptions, low.Retries)
	}
	checkRun(t, h.run("high"), api.RunPreparing, "")
}

// A submit may carry the wait reason its run starts with (log format 2);
// the reason the run itself came with is never taken.
func TestRunSubmitStartsWithTheProposersReason(t *testing.T) {
	h := newHarness(t)
	h.cluster("cpu", 1)
	h.must(MsgRunSubmit, &RunSubmitRequest{Reason: "waiting for a node: cpu is at max_nodes 1", Run: &api.Run{
		ID: "r-1", RunSpec: api.RunSpec{Target: "cpu", Command: []string{"true"}, NodeCount: 1}, Owner: "alice", Request: half}})
	checkRun(t, h.run("r-1"), api.RunQueued, "waiting for a node: cpu is at max_nodes 1")
	h.submit("r-2", "cpu", func(r *api.Run) { r.Reason = "made up by the caller" })
	checkRun(t, h.run("r-2"), api.RunQueued, reasonSubmitted)
}

// Every applied command counts as a scheduling change but a submit that
// starts with its wait reason and a scale decision; a refused command
// changes nothing.
func TestSchedulingChanges(t *testing.T) {
	h := newHarness(t)
	h.cluster("cpu", 1)
	count := func() uint64 { return h.st().SchedulingChanges() }
	c0 := count()
	h.submit("r-1", "cpu", nil)
	if c := count(); c != c0+1 {
		t.Fatalf("after a plain submit %d, want %d", c, c0+1)
	}
	h.must(MsgRunSubmit, &RunSubmitRequest{Reason: "waiting behind r-1", Run: &api.Run{
		ID: "r-2", RunSpec: api.RunSpec{Target: "cpu", Command: []string{"true"}, NodeCount: 1}, Owner: "alice", Request: half}})
	if c := count(); c != c0+1 {
		t.Fatalf("after a submit with its reason %d, want %d still", c, c0+1)
	}
	if err := h.apply(MsgRunSubmit, &RunSubmitRequest{Run: &api.Run{ID: "r-3", RunSpec: api.RunSpec{Target: "nope"}}}); err == nil {
		t.Fatal("a submit to no target was applied")
	}
	if c := count(); c != c0+1 {
		t.Fatalf("after a refused command %d, want %d still", c, c0+1)
	}
	h.must(MsgTargetScale, &TargetScaleRequest{Name: "cpu", TargetNodeCount: 1, Reason: "2 runs waiting need 1 more node"})
	if c := count(); c != c0+1 {
		t.Fatalf("after a scale %d, want %d still", c, c0+1)
	}
	h.must(MsgRunCancel, &RunCancelRequest{RunID: "r-2"})
	if c := count(); c != c0+2 {
		t.Fatalf("after a cancel %d, want %d", c, c0+2)
	}
}

// Queue lists a target's runs that wait for a placement, higher priority
// first and then in submit order, up to n; runs with a live attempt and
// other targets' runs are not in it.
func TestQueueIsInQueueOrder(t *testing.T) {
	h := newHarness(t)
	h.cluster("cpu", 2)
	h.cluster("gpu", 1)
	h.readyNode("n-1", "cpu", size4)
	for _, r := range []struct {
		id, target string
		prio       int
	}{{"low-1", "cpu", -1}, {"mid-1", "cpu", 0}, {"high", "cpu", 5}, {"mid-2", "cpu", 0}, {"other", "gpu", 9}, {"placed", "cpu", 9}, {"low-2", "cpu", -1}} {
		h.submit(r.id, r.target, func(run *api.Run) { run.Priority = r.prio })
	}
	h.place("placed", "n-1")
	if got, want := runIDs(h.st().Queue("cpu", 0)), []string{"high", "mid-1", "mid-2", "low-1", "low-2"}; !slices.Equal(got, want) {
		t.Fatalf("queue of cpu %v, want %v", got, want)
	}
	if got, want := runIDs(h.st().Queue("cpu", 2)), []string{"high", "mid-1"}; !slices.Equal(got, want) {
		t.Fatalf("first 2 of cpu %v, want %v", got, want)
	}
	if got := runIDs(h.st().Queue("cp", 0)); len(got) != 0 {
		t.Fatalf("queue of a target named by a prefix: %v", got)
	}
	if got, want := runIDs(h.st().LiveRuns()), []string{"placed"}; !slices.Equal(got, want) {
		t.Fatalf("live runs %v, want %v", got, want)
	}
}
