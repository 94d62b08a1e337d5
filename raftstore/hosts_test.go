package raftstore

import (
	"strings"
	"testing"

	"github.com/amld/amld/api"
)

func testHost(name, kind, fp string) *Host {
	return &Host{Host: api.Host{Name: name, Kind: kind, Address: "127.0.0.1", SSHPort: 22, Username: "u",
		Auth: api.AuthKey, HostKeyFingerprint: fp}, Sealed: []byte("sealed"), KeyID: "k1"}
}

func remoteTarget(name string) *api.Target {
	return &api.Target{TargetSpec: api.TargetSpec{Name: name, Type: api.KindRemote, MinNodes: 1, MaxNodes: 1, Provider: api.ProviderSSH}}
}

func TestHostAttachRefusesTheSameMachineTwice(t *testing.T) {
	h := newHarness(t)
	h.must(MsgHostAttach, &HostAttachRequest{Host: testHost("dsvm", api.HostRemote, "SHA256:aaa"), Target: remoteTarget("dsvm"), Time: h.tick()})
	hs := h.st().Host("dsvm")
	if hs == nil || hs.State != api.HostAttached || hs.Target != "dsvm" || string(hs.Sealed) != "sealed" {
		t.Fatalf("host %+v", hs)
	}
	if tg := h.st().Target("dsvm"); tg == nil || tg.Host != "dsvm" || tg.Type != api.KindRemote {
		t.Fatalf("target %+v", tg)
	}
	// The same host key under another name names the first attachment.
	err := h.apply(MsgHostAttach, &HostAttachRequest{Host: testHost("other", api.HostRemote, "SHA256:aaa"), Target: remoteTarget("other"), Time: h.tick()})
	e := wantAPIError(t, err, api.CodeConflict)
	if !strings.Contains(e.Message, "already attached as dsvm") {
		t.Fatalf("message %q", e.Message)
	}
	if h.st().Target("other") != nil || h.st().Host("other") != nil {
		t.Fatal("a refused attach changed the state")
	}
	// Names are shared with targets.
	h.cluster("cpu", 2)
	wantAPIError(t, h.apply(MsgHostAttach, &HostAttachRequest{Host: testHost("cpu", api.HostPool, "SHA256:bbb"), Time: h.tick()}), api.CodeConflict)
	// A pool host has no target; a remote one must have one.
	wantAPIError(t, h.apply(MsgHostAttach, &HostAttachRequest{Host: testHost("p1", api.HostPool, "SHA256:ccc"), Target: remoteTarget("p1")}), api.CodeInvalid)
	wantAPIError(t, h.apply(MsgHostAttach, &HostAttachRequest{Host: testHost("r1", api.HostRemote, "SHA256:ccc")}), api.CodeInvalid)
	noSecret := testHost("p2", api.HostPool, "SHA256:ddd")
	noSecret.Sealed = nil
	wantAPIError(t, h.apply(MsgHostAttach, &HostAttachRequest{Host: noSecret}), api.CodeInvalid)
}

func TestHostDetachDeletesTheRemoteTargetThenRemoves(t *testing.T) {
	h := newHarness(t)
	h.must(MsgHostAttach, &HostAttachRequest{Host: testHost("dsvm", api.HostRemote, "SHA256:aaa"), Target: remoteTarget("dsvm"), Time: h.tick()})
	h.must(MsgNodeCreate, &NodeCreateRequest{Node: &api.Node{ID: "n-1", Target: "dsvm", Host: "dsvm", ProviderID: "ssh:dsvm", CreatedAt: h.tick()}})
	wantAPIError(t, h.apply(MsgHostRemove, &HostRemoveRequest{Name: "dsvm"}), api.CodeFailedPre)

	h.must(MsgHostDetach, &HostDetachRequest{Name: "dsvm", Time: h.tick()})
	if s := h.st().Host("dsvm").State; s != api.HostDetaching {
		t.Fatalf("host state %s", s)
	}
	if s := h.st().Target("dsvm").ProvisioningState; s != api.ProvisioningDeleting {
		t.Fatalf("target state %s", s)
	}
	// Still a node and a target on it.
	wantAPIError(t, h.apply(MsgHostRemove, &HostRemoveRequest{Name: "dsvm"}), api.CodeFailedPre)
	h.must(MsgNodeRemove, &NodeRemoveRequest{NodeID: "n-1", Time: h.tick()})
	wantAPIError(t, h.apply(MsgHostRemove, &HostRemoveRequest{Name: "dsvm"}), api.CodeFailedPre)
	h.must(MsgTargetRemove, &TargetRemoveRequest{Name: "dsvm"})
	h.must(MsgHostRemove, &HostRemoveRequest{Name: "dsvm"})
	if h.st().Host("dsvm") != nil {
		t.Fatal("host still there")
	}
	// Now the machine may be attached again, under any name.
	h.must(MsgHostAttach, &HostAttachRequest{Host: testHost("dsvm2", api.HostRemote, "SHA256:aaa"), Target: remoteTarget("dsvm2"), Time: h.tick()})
}

func TestInstanceHoldsItsPoolHost(t *testing.T) {
	h := newHarness(t)
	h.must(MsgHostAttach, &HostAttachRequest{Host: testHost("p1", api.HostPool, "SHA256:aaa"), Time: h.tick()})
	inst := func(name string) *api.Target {
		return &api.Target{TargetSpec: api.TargetSpec{Name: name, Type: api.KindInstance, VMSize: "cpu-2", MinNodes: 1, MaxNodes: 1, Provider: api.ProviderSSH}, Host: "p1", Owner: "alice"}
	}
	h.must(MsgTargetCreate, &TargetCreateRequest{Target: inst("ci-alice")})
	wantAPIError(t, h.apply(MsgTargetCreate, &TargetCreateRequest{Target: inst("ci-bob")}), api.CodeConflict)
	e := wantAPIError(t, h.apply(MsgHostDetach, &HostDetachRequest{Name: "p1", Time: h.tick()}), api.CodeFailedPre)
	if !strings.Contains(e.Message, "holds instance ci-alice") {
		t.Fatalf("message %q", e.Message)
	}
	missing := inst("ci-carol")
	missing.Host = "nope"
	wantAPIError(t, h.apply(MsgTargetCreate, &TargetCreateRequest{Target: missing}), api.CodeFailedPre)
}

func TestTargetPowerAndNodeProvider(t *testing.T) {
	h := newHarness(t)
	h.cluster("cpu", 2)
	wantAPIError(t, h.apply(MsgTargetPower, &TargetPowerRequest{Name: "cpu", Stopped: true, Time: h.tick()}), api.CodeFailedPre)
	h.must(MsgTargetCreate, &TargetCreateRequest{Target: &api.Target{TargetSpec: api.TargetSpec{Name: "ci", Type: api.KindInstance, VMSize: "cpu-4", MinNodes: 1, MaxNodes: 1}}})
	h.must(MsgTargetPower, &TargetPowerRequest{Name: "ci", Stopped: true, Reason: "stopped by alice", Time: h.tick()})
	if tg := h.st().Target("ci"); !tg.Stopped || tg.StopReason != "stopped by alice" || tg.UpdatedAt != h.now {
		t.Fatalf("stopped target %+v", tg)
	}
	h.must(MsgTargetPower, &TargetPowerRequest{Name: "ci", Stopped: false, Reason: "ignored", Time: h.tick()})
	if tg := h.st().Target("ci"); tg.Stopped || tg.StopReason != "" {
		t.Fatalf("started target %+v", tg)
	}
	h.must(MsgNodeCreate, &NodeCreateRequest{Node: &api.Node{ID: "n-1", Target: "ci", CreatedAt: h.tick()}})
	h.must(MsgNodeProvider, &NodeProviderRequest{NodeID: "n-1", ProviderID: "pid:42"})
	if p := h.node("n-1").ProviderID; p != "pid:42" {
		t.Fatalf("provider id %q", p)
	}
	wantAPIError(t, h.apply(MsgNodeProvider, &NodeProviderRequest{NodeID: "n-9", ProviderID: "x"}), api.CodeNotFound)
}

func TestHostsSurviveASnapshot(t *testing.T) {
	h := newHarness(t)
	h.must(MsgHostAttach, &HostAttachRequest{Host: testHost("dsvm", api.HostRemote, "SHA256:aaa"), Target: remoteTarget("dsvm"), Time: h.tick()})
	var buf strings.Builder
	if err := writeSnapshot(&buf, h.st()); err != nil {
		t.Fatal(err)
	}
	db, _, err := readSnapshot(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	st := &State{db: db}
	if hs := st.Host("dsvm"); hs == nil || string(hs.Sealed) != "sealed" || hs.HostKeyFingerprint != "SHA256:aaa" {
		t.Fatalf("restored host %+v", hs)
	}
}

func TestHostMessagesHaveRequestsAndNames(t *testing.T) {
	for mt := MsgHostAttach; mt <= MsgNodeProvider; mt++ {
		newReq, ok := commandTypes[mt]
		if !ok || strings.HasPrefix(mt.String(), "MsgType(") {
			t.Fatalf("message type %d has no request or name", mt)
		}
		if _, err := EncodeCommand(mt, newReq()); err != nil {
			t.Fatalf("%v: %v", mt, err)
		}
	}
}
