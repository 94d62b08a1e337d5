package raftstore

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/amld/amld/api"
	"github.com/hashicorp/raft"
)

// fakeSink is a raft.SnapshotSink in memory; it fails writes past failAt
// bytes when failAt > 0.
type fakeSink struct {
	bytes.Buffer
	failAt   int
	closed   bool
	canceled bool
}

var _ raft.SnapshotSink = (*fakeSink)(nil)

func (s *fakeSink) Write(p []byte) (int, error) {
	if s.failAt > 0 && s.Len()+len(p) > s.failAt {
		return 0, errors.New("disk full")
	}
	return s.Buffer.Write(p)
}
func (s *fakeSink) ID() string    { return "fake" }
func (s *fakeSink) Close() error  { s.closed = true; return nil }
func (s *fakeSink) Cancel() error { s.canceled = true; return nil }

// scenario fills every table: users, targets, nodes in several states,
// runs queued, running, retried, completed, failed and canceled, logs and
// blobs.
func scenario(h *harness) {
	h.must(MsgBootstrap, &BootstrapRequest{ClusterID: "c-1", AdminTokenHash: "admin-h", JoinTokenHash: "join-h", Time: h.tick()})
	h.must(MsgUserCreate, &UserCreateRequest{User: api.User{Name: "alice", Role: api.RoleUser, CreatedAt: h.tick()}, TokenHash: "alice-h"})
	h.cluster("cpu", 4)
	h.cluster("gpu", 2)
	h.must(MsgTargetScale, &TargetScaleRequest{Name: "cpu", TargetNodeCount: 3, Reason: "demand", Time: h.tick()})
	h.must(MsgProvisioningResult, &ProvisioningResultRequest{Name: "gpu", Time: h.tick(),
		Error: &api.ProvisioningError{Code: "quota", Message: "no GPUs left"}})
	h.readyNode("n-1", "cpu", size4)
	h.readyNode("n-2", "cpu", size4)
	h.readyNode("g-1", "gpu", size4, "GPU-1", "GPU-2")
	h.must(MsgNodeCreate, &NodeCreateRequest{Node: &api.Node{ID: "n-3", Target: "cpu", CreatedAt: h.tick()}})
	for i, id := range []string{"done", "failed", "retry", "gang", "queued", "canceled", "gpu"} {
		target := "cpu"
		if id == "gpu" {
			target = "gpu"
		}
		h.submit(id, target, func(r *api.Run) {
			r.Priority = i % 3
			r.Env = map[string]string{"B": "2", "A": "1"}
			if id == "retry" {
				r.MaxRetries = 2
			}
			if id == "gang" {
				r.NodeCount = 2
				r.Distribution = api.DistributionNone
			}
		})
	}
	h.must(MsgRunSubmit, &RunSubmitRequest{Run: &api.Run{ID: "mpi", RunSpec: api.RunSpec{Target: "cpu", Command: []string{"./a"}, NodeCount: 2},
		Request: half, SubmittedAt: h.tick()}, SSHKey: &RunKey{Private: "private", Public: "public"}})
	h.place("done", "n-1")
	h.mustReport("done", "n-1", 0, running)
	h.mustReport("done", "n-1", 0, exited(0))
	h.place("failed", "n-1")
	h.mustReport("failed", "n-1", 0, exited(1))
	h.place("retry", "n-2")
	h.mustReport("retry", "n-2", 0, exited(2))
	h.place("gang", "n-1", "n-2")
	h.mustReport("gang", "n-1", 0, running)
	if err := h.apply(MsgLogAppend, &LogAppendRequest{NodeID: "n-1", Log: api.LogAppend{
		AttemptKey: api.AttemptKey{RunID: "gang", Attempt: 1}, Data: []byte("epoch 1\n")}}); err != nil {
		h.t.Fatal(err)
	}
	if err := h.apply(MsgLogAppend, &LogAppendRequest{NodeID: "n-1", Log: api.LogAppend{
		AttemptKey: api.AttemptKey{RunID: "gang", Attempt: 1}, Offset: 8, Data: []byte("epoch 2\n")}}); err != nil {
		h.t.Fatal(err)
	}
	h.must(MsgRunCancel, &RunCancelRequest{RunID: "canceled", Time: h.tick()})
	h.must(MsgPlanApply, &PlanApplyRequest{Time: h.tick(),
		Placements: []Placement{{RunID: "gpu", Allocations: []api.Allocation{
			{NodeID: "g-1", Resources: api.Resources{CPUs: 1, GPUs: 1}, GPUUUIDs: []string{"GPU-2"}}}}},
		Reasons: []WaitReason{{RunID: "queued", Reason: "waiting for 1 node of cpu"}},
	})
	h.must(MsgBlobPut, &BlobPutRequest{Blob: &Blob{ID: "src-1", SHA256: "abc", Data: []byte{0, 1, 2, 255}, CreatedAt: h.tick()}})
	h.must(MsgNodeDown, &NodeDownRequest{NodeID: "n-3", State: api.NodeUnusable, Reason: "missed its deadline", Time: h.tick()})
	h.must(MsgHostAttach, &HostAttachRequest{Host: testHost("dsvm", api.HostRemote, "SHA256:aaa"), Target: remoteTarget("dsvm"), Time: h.tick()})
	h.must(MsgHeadUpsert, &HeadUpsertRequest{Head: Head{ID: "h1", APIAddr: "https://10.0.0.1:7070", RaftAddr: "10.0.0.1:7071", Since: h.tick()}})
	h.must(MsgSecretsPut, &SecretsPutRequest{Secrets: Secrets{CACertPEM: "pem", SealedCAKey: []byte{1}, SealedJoinToken: []byte{2}}})
}

func TestSnapshotRoundTripRestoresEveryTable(t *testing.T) {
	h := newHarness(t)
	scenario(h)
	want := dump(t, h.st())
	for _, table := range tableOrder {
		if !strings.Contains(want, `{"t":"`+table+`"`) {
			t.Fatalf("the scenario leaves table %s empty", table)
		}
	}

	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Changes after the capture are not in the snapshot.
	h.submit("later", "cpu", nil)
	sink := &fakeSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if !sink.closed || sink.canceled {
		t.Fatalf("sink closed=%v canceled=%v", sink.closed, sink.canceled)
	}

	f2 := NewFSM(nil)
	if err := f2.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, f2.State()); got != want {
		t.Fatalf("restored state differs:\n got %s\nwant %s", got, want)
	}
	st := f2.State()
	if st.Index() != h.index-1 {
		t.Fatalf("restored index %d, want %d", st.Index(), h.index-1)
	}
	// The indexes came back too, not just the rows.
	if got := runIDs(st.PendingRuns()); strings.Join(got, ",") != "retry,gang,queued,gpu,mpi" {
		t.Fatalf("pending after restore: %v", got)
	}
	if got := runIDs(st.RunsOnNode("n-1")); strings.Join(got, ",") != "gang" {
		t.Fatalf("runs on n-1 after restore: %v", got)
	}
	if data, _, _ := st.Log("gang", 1, 0, 3); string(data) != "ch 1\nepoch 2\n" {
		t.Fatalf("log after restore %q", data)
	}
	if len(st.NodesOfTarget("cpu")) != 3 || st.Credential("tok-g-1") == nil || string(st.Blob("src-1").Data) != "\x00\x01\x02\xff" {
		t.Fatal("nodes, credentials or blobs lost")
	}

	// The restored FSM goes on from the snapshot's index like the original.
	for _, l := range h.log[st.Index():] {
		f2.Apply(l)
	}
	if got, want := dump(t, f2.State()), dump(t, h.st()); got != want {
		t.Fatalf("the restored FSM diverged after replaying the log tail:\n got %s\nwant %s", got, want)
	}
}

func TestPersistCancelsTheSinkOnError(t *testing.T) {
	h := newHarness(t)
	scenario(h)
	snap, _ := h.f.Snapshot()
	sink := &fakeSink{failAt: 1000}
	if err := snap.Persist(sink); err == nil {
		t.Fatal("Persist succeeded on a failing sink")
	}
	if !sink.canceled || sink.closed {
		t.Fatalf("sink closed=%v canceled=%v, want canceled only", sink.closed, sink.canceled)
	}
}

func TestRestoreRefusesBrokenSnapshots(t *testing.T) {
	h := newHarness(t)
	scenario(h)
	good := dump(t, h.st())
	lines := strings.SplitAfter(good, "\n")
	cases := map[string]string{
		"empty":         "",
		"cut short":     strings.Join(lines[:len(lines)/2], ""),
		"no trailer":    strings.Join(lines[:len(lines)-2], ""),
		"wrong count":   strings.Join(lines[:len(lines)-2], "") + `{"t":"end","count":1}` + "\n",
		"unknown table": lines[0] + `{"t":"cats","v":{}}` + "\n",
		"bad record":    lines[0] + `{"t":"runs","v":[1]}` + "\n",
		"wrong format":  `{"format":"other","version":1}` + "\n",
		"garbage":       "\x00\x01garbage",
	}
	for name, data := range cases {
		f := NewFSM(nil)
		h2 := &harness{t: t, f: f, now: t0}
		h2.cluster("keep", 1)
		before := dump(t, f.State())
		if err := f.Restore(io.NopCloser(strings.NewReader(data))); err == nil {
			t.Errorf("%s: restored", name)
		}
		if dump(t, f.State()) != before {
			t.Errorf("%s: a failed restore changed the state", name)
		}
	}
}

func TestSameLogGivesSameState(t *testing.T) {
	h := newHarness(t)
	scenario(h)
	// Refused commands are in the log too; they must be refused the same way.
	_ = h.apply(MsgTargetCreate, &TargetCreateRequest{Target: &api.Target{TargetSpec: api.TargetSpec{Name: "cpu"}}})
	_ = h.apply(MsgRunCancel, &RunCancelRequest{RunID: "done", Time: h.tick()})
	want := dump(t, h.st())

	for i := range 2 {
		f := NewFSM(nil)
		var errs []string
		for _, l := range h.log {
			if resp := f.Apply(l); resp != nil {
				errs = append(errs, resp.(error).Error())
			}
		}
		if got := dump(t, f.State()); got != want {
			t.Fatalf("replay %d differs:\n got %s\nwant %s", i, got, want)
		}
		if len(errs) != 2 {
			t.Fatalf("replay %d refused %v, want the 2 refused commands", i, errs)
		}
	}
}

func TestNonCommandEntriesAreIgnored(t *testing.T) {
	f := NewFSM(nil)
	if resp := f.Apply(&raft.Log{Index: 1, Type: raft.LogNoop}); resp != nil {
		t.Fatalf("noop: %v", resp)
	}
	if resp := f.Apply(&raft.Log{Index: 2, Type: raft.LogCommand, Data: []byte{99, '{', '}'}}); resp == nil {
		t.Fatal("an unknown command type was accepted")
	} else if err, ok := resp.(error); !ok || !errors.Is(err, ErrUnknownCommand) {
		t.Fatalf("unknown command: %v", resp)
	}
	if f.State().Index() != 2 {
		t.Fatalf("index %d after a refused entry, want 2", f.State().Index())
	}
}
