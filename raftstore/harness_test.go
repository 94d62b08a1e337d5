package raftstore

import (
	"bytes"
	"errors"
	"time"

	"github.com/amld/amld/api"
	"github.com/hashicorp/raft"
)

// tb is what the helpers need of *testing.T, *testing.B and *rapid.T.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// harness drives an FSM with raft.Log entries, as raft would, and keeps
// the log so it can be replayed.
type harness struct {
	t     tb
	f     *FSM
	index uint64
	now   time.Time
	log   []*raft.Log
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func newHarness(t tb) *harness {
	return &harness{t: t, f: NewFSM(nil), now: t0}
}

// tick advances the clock the proposer stamps requests with.
func (h *harness) tick() time.Time {
	h.now = h.now.Add(time.Second)
	return h.now
}

// apply appends a command to the log and applies it.
func (h *harness) apply(t MsgType, req any) error {
	h.t.Helper()
	b, err := EncodeCommand(t, req)
	if err != nil {
		h.t.Fatalf("encode %v: %v", t, err)
	}
	h.index++
	l := &raft.Log{Index: h.index, Term: 1, Type: raft.LogCommand, Data: b}
	h.log = append(h.log, l)
	if resp := h.f.Apply(l); resp != nil {
		err, ok := resp.(error)
		if !ok {
			h.t.Fatalf("apply %v: response %T is not an error", t, resp)
		}
		return err
	}
	return nil
}

func (h *harness) must(t MsgType, req any) {
	h.t.Helper()
	if err := h.apply(t, req); err != nil {
		h.t.Fatalf("apply %v: %v", t, err)
	}
}

func (h *harness) st() *State { return h.f.State() }

func (h *harness) run(id string) *api.Run {
	h.t.Helper()
	r := h.st().Run(id)
	if r == nil {
		h.t.Fatalf("run %s not found", id)
	}
	return r
}

func (h *harness) node(id string) *api.Node {
	h.t.Helper()
	n := h.st().Node(id)
	if n == nil {
		h.t.Fatalf("node %s not found", id)
	}
	return n
}

var (
	size4 = api.Resources{CPUs: 4, MemoryMB: 8192}
	half  = api.Resources{CPUs: 2, MemoryMB: 4096}
)

// cluster creates a cluster target.
func (h *harness) cluster(name string, maxNodes int) {
	h.t.Helper()
	h.must(MsgTargetCreate, &TargetCreateRequest{Target: &api.Target{
		TargetSpec: api.TargetSpec{Name: name, Type: api.KindCluster, VMSize: "cpu-4", MaxNodes: maxNodes,
			VMPriority: api.VMPriorityDedicated, Provider: "local"},
		CreatedAt: h.tick(),
	}})
}

// readyNode creates a node and registers its agent, with GPUs named by
// their UUIDs.
func (h *harness) readyNode(id, target string, capacity api.Resources, gpus ...string) {
	h.t.Helper()
	h.must(MsgNodeCreate, &NodeCreateRequest{Node: &api.Node{ID: id, Target: target, VMSize: "cpu-4", CreatedAt: h.tick()}})
	var devs []api.GPU
	for i, u := range gpus {
		devs = append(devs, api.GPU{Index: i, UUID: u, Model: "H100"})
	}
	capacity.GPUs = len(gpus)
	h.must(MsgNodeRegister, &NodeRegisterRequest{
		NodeID:    id,
		Register:  api.RegisterRequest{NodeID: id, Hostname: id, Address: id + ":7000", Capacity: capacity, GPUs: devs, Version: "test"},
		Capacity:  capacity,
		TokenHash: "tok-" + id,
		Time:      h.tick(),
	})
}

// submit queues a run of one node asking for half a node; mod changes it.
func (h *harness) submit(id, target string, mod func(*api.Run)) {
	h.t.Helper()
	r := &api.Run{
		RunSpec:     api.RunSpec{Target: target, Command: []string{"python", "train.py"}, NodeCount: 1},
		ID:          id,
		Owner:       "alice",
		Request:     half,
		SubmittedAt: h.tick(),
	}
	if mod != nil {
		mod(r)
	}
	h.must(MsgRunSubmit, &RunSubmitRequest{Run: r})
}

// place commits a plan placing the run on nodes with its request.
func (h *harness) place(runID string, nodes ...string) {
	h.t.Helper()
	req := h.run(runID).Request
	p := Placement{RunID: runID}
	for _, n := range nodes {
		p.Allocations = append(p.Allocations, api.Allocation{NodeID: n, Resources: req})
	}
	h.must(MsgPlanApply, &PlanApplyRequest{Placements: []Placement{p}, Time: h.tick()})
}

// report sends an agent's attempt status for the run's current attempt.
func (h *harness) report(runID, nodeID string, rank int, s api.AttemptStatus) error {
	h.t.Helper()
	s.RunID = runID
	s.NodeIndex = rank
	if s.Attempt == 0 {
		s.Attempt = len(h.run(runID).Attempts)
	}
	return h.apply(MsgAttemptStatus, &AttemptStatusRequest{NodeID: nodeID, Status: s, Time: h.tick()})
}

func (h *harness) mustReport(runID, nodeID string, rank int, s api.AttemptStatus) {
	h.t.Helper()
	if err := h.report(runID, nodeID, rank, s); err != nil {
		h.t.Fatalf("report %s on %s: %v", s.State, nodeID, err)
	}
}

func exited(code int) api.AttemptStatus {
	return api.AttemptStatus{State: api.AttemptExited, ExitCode: &code}
}

var running = api.AttemptStatus{State: api.AttemptRunning}

// dump is the state's snapshot stream: every record of every table.
func dump(t tb, st *State) string {
	t.Helper()
	var b bytes.Buffer
	if err := writeSnapshot(&b, st); err != nil {
		t.Fatalf("dump: %v", err)
	}
	return b.String()
}

// wantAPIError checks that err is an *api.Error with this code.
func wantAPIError(t tb, err error, code string) *api.Error {
	t.Helper()
	var e *api.Error
	if !errors.As(err, &e) {
		t.Fatalf("got error %v (%T), want an *api.Error %s", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("got %s %q, want code %s", e.Code, e.Message, code)
	}
	return e
}

func checkRun(t tb, r *api.Run, state, reason string) {
	t.Helper()
	if r.State != state || r.Reason != reason {
		t.Fatalf("run %s is %s (%q), want %s (%q)", r.ID, r.State, r.Reason, state, reason)
	}
}
