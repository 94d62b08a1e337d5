package raftstore

import (
	"fmt"
	"slices"
	"testing"

	"github.com/amld/amld/api"
	"pgregory.net/rapid"
)

// TestInvariantsUnderRandomCommands applies random command sequences
// (valid, stale and nonsensical alike) and checks after each one what the
// scheduler and agents rely on: no run placed twice, gangs whole, capacity
// and GPUs never over-committed, node states and target counts derived
// right, the pending index exact; and that replaying the log, one entry
// at a time or in batches, gives the same state.
func TestInvariantsUnderRandomCommands(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		h := newHarness(rt)
		h.cluster("a", 4)
		h.cluster("b", 4)
		nodes := []string{"n-0", "n-1", "n-2", "n-3"}
		runs := []string{"r-0", "r-1", "r-2", "r-3", "r-4", "r-5"}
		pick := func(label string, xs []string) string { return rapid.SampledFrom(xs).Draw(rt, label) }
		steps := rapid.IntRange(1, 60).Draw(rt, "steps")
		for range steps {
			switch rapid.IntRange(0, 9).Draw(rt, "cmd") {
			case 0: // create and/or register a node
				id := pick("node", nodes)
				target := "a"
				if id == "n-3" {
					target = "b"
				}
				_ = h.apply(MsgNodeCreate, &NodeCreateRequest{Node: &api.Node{ID: id, Target: target, CreatedAt: h.tick()}})
				if rapid.Bool().Draw(rt, "register") {
					_ = h.apply(MsgNodeRegister, &NodeRegisterRequest{NodeID: id, TokenHash: "tok-" + id, Time: h.tick(),
						Capacity: api.Resources{CPUs: 4, MemoryMB: 4096, GPUs: 2},
						Register: api.RegisterRequest{GPUs: []api.GPU{{UUID: id + "-g0"}, {UUID: id + "-g1"}}}})
				}
			case 1: // submit
				id := pick("run", runs)
				_ = h.apply(MsgRunSubmit, &RunSubmitRequest{Run: &api.Run{ID: id,
					RunSpec: api.RunSpec{Target: pick("target", []string{"a", "b"}), NodeCount: rapid.IntRange(0, 3).Draw(rt, "count"),
						MaxRetries:   rapid.IntRange(0, 1).Draw(rt, "retries"),
						Distribution: pick("dist", []string{"", api.DistributionMPI, api.DistributionNone})},
					Request: api.Resources{CPUs: rapid.IntRange(0, 5).Draw(rt, "cpus"), MemoryMB: 1024}}})
			case 2, 3: // a plan, possibly stale or wrong
				var p Placement
				p.RunID = pick("run", runs)
				for range rapid.IntRange(0, 3).Draw(rt, "allocs") {
					al := api.Allocation{NodeID: pick("node", nodes), Resources: api.Resources{CPUs: rapid.IntRange(0, 5).Draw(rt, "cpus"), MemoryMB: 1024}}
					if rapid.Bool().Draw(rt, "gpu") {
						al.GPUUUIDs = []string{al.NodeID + "-g" + pick("g", []string{"0", "1"})}
						al.Resources.GPUs = 1
					}
					p.Allocations = append(p.Allocations, al)
				}
				// Mostly a plan the scheduler could have made.
				if r := h.st().Run(p.RunID); r != nil && r.State == api.RunQueued && rapid.IntRange(0, 3).Draw(rt, "sane") > 0 {
					p.Allocations = nil
					for _, n := range rapid.Permutation(h.st().NodesOfTarget(r.Target)).Draw(rt, "nodes") {
						if len(p.Allocations) < max(r.NodeCount, 1) {
							p.Allocations = append(p.Allocations, api.Allocation{NodeID: n.ID, Resources: r.Request})
						}
					}
				}
				_ = h.apply(MsgPlanApply, &PlanApplyRequest{Placements: []Placement{p}, Time: h.tick(),
					Reasons: []WaitReason{{RunID: pick("run", runs), Reason: "waiting"}}})
			case 4, 5: // an agent report, from any node about any rank
				code := rapid.IntRange(0, 2).Draw(rt, "code")
				s := api.AttemptStatus{
					AttemptKey: api.AttemptKey{RunID: pick("run", runs), Attempt: rapid.IntRange(1, 3).Draw(rt, "attempt"), NodeIndex: rapid.IntRange(0, 2).Draw(rt, "rank")},
					State:      pick("state", []string{api.AttemptRunning, api.AttemptFinalizing, api.AttemptExited}),
					ExitCode:   &code,
					Lost:       rapid.IntRange(0, 9).Draw(rt, "lost") == 0,
					TimedOut:   rapid.IntRange(0, 9).Draw(rt, "timedout") == 0,
				}
				nodeID := pick("node", nodes)
				// Mostly a report the fence lets through.
				if r := h.st().Run(s.RunID); r != nil && r.LiveAttempt() != nil && rapid.IntRange(0, 4).Draw(rt, "valid") > 0 {
					at := r.LiveAttempt()
					s.Attempt = at.Number
					s.NodeIndex = rapid.IntRange(0, len(at.Allocations)-1).Draw(rt, "rank")
					nodeID = at.Allocations[s.NodeIndex].NodeID
				}
				_ = h.apply(MsgAttemptStatus, &AttemptStatusRequest{NodeID: nodeID, Status: s, Time: h.tick()})
			case 6:
				_ = h.apply(MsgNodeDown, &NodeDownRequest{NodeID: pick("node", nodes), Time: h.tick(),
					State: pick("down", []string{api.NodeUnusable, api.NodePreempted, api.NodeLeaving})})
			case 7:
				_ = h.apply(MsgNodeRemove, &NodeRemoveRequest{NodeID: pick("node", nodes), Time: h.tick()})
			case 8:
				if rapid.Bool().Draw(rt, "preempt") {
					_ = h.apply(MsgPlanApply, &PlanApplyRequest{Time: h.tick(), Preemptions: []Preemption{{RunID: pick("run", runs)}}})
				} else {
					_ = h.apply(MsgRunCancel, &RunCancelRequest{RunID: pick("run", runs), Time: h.tick()})
				}
			case 9:
				_ = h.apply(MsgTargetScale, &TargetScaleRequest{Name: pick("target", []string{"a", "b"}), TargetNodeCount: rapid.IntRange(0, 4).Draw(rt, "n"), Time: h.tick()})
			}
			if err := checkInvariants(h.st()); err != nil {
				rt.Fatalf("after entry %d: %v", h.index, err)
			}
		}
		// Replaying the log one entry at a time, or in batches of any
		// size (as raft hands a follower what it committed together),
		// gives the same responses and the same state.
		f, batched := NewFSM(nil), NewFSM(nil)
		var one, many []string
		for _, l := range h.log {
			one = append(one, fmt.Sprint(f.Apply(l)))
		}
		for rest := h.log; len(rest) > 0; {
			n := rapid.IntRange(1, len(rest)).Draw(rt, "batch")
			for _, resp := range batched.ApplyBatch(rest[:n]) {
				many = append(many, fmt.Sprint(resp))
			}
			rest = rest[n:]
		}
		if dump(rt, f.State()) != dump(rt, h.st()) {
			rt.Fatal("replaying the log gave another state")
		}
		if dump(rt, batched.State()) != dump(rt, h.st()) {
			rt.Fatal("replaying the log in batches gave another state")
		}
		if !slices.Equal(one, many) {
			rt.Fatalf("batched responses differ:\n%v\n%v", one, many)
		}
	})
}

func checkInvariants(st *State) error {
	live := map[string][]*api.Run{} // node -> runs with a live allocation there
	var pending []string
	for _, r := range st.Runs() {
		at := r.LiveAttempt()
		if r.State == api.RunQueued || at != nil {
			pending = append(pending, r.ID)
		}
		for i, a := range r.Attempts {
			if a.Number != i+1 || (i < len(r.Attempts)-1 && !a.Ended) {
				return fmt.Errorf("run %s: attempt %d of %d numbered %d, ended %v", r.ID, i+1, len(r.Attempts), a.Number, a.Ended)
			}
		}
		switch {
		case api.RunActive(r.State) != (at != nil):
			return fmt.Errorf("run %s is %s with live attempt %v", r.ID, r.State, at != nil)
		case api.RunTerminal(r.State) && r.EndedAt.IsZero():
			return fmt.Errorf("run %s is %s without EndedAt", r.ID, r.State)
		case r.State == api.RunQueued && r.Reason == "":
			return fmt.Errorf("queued run %s has no reason", r.ID)
		}
		if at == nil {
			continue
		}
		if len(at.Allocations) != max(r.NodeCount, 1) || len(at.Nodes) != len(at.Allocations) {
			return fmt.Errorf("run %s: gang of %d holds %d nodes", r.ID, r.NodeCount, len(at.Allocations))
		}
		for i, al := range at.Allocations {
			if slices.ContainsFunc(at.Allocations[:i], func(o api.Allocation) bool { return o.NodeID == al.NodeID }) {
				return fmt.Errorf("run %s holds node %s twice", r.ID, al.NodeID)
			}
			live[al.NodeID] = append(live[al.NodeID], r)
		}
	}
	if got := runIDs(st.PendingRuns()); !slices.Equal(got, pending) {
		return fmt.Errorf("pending index %v, want %v", got, pending)
	}
	counts := map[string]api.NodeStateCounts{}
	for _, n := range st.Nodes() {
		c := counts[n.Target]
		c.Add(n.State)
		counts[n.Target] = c
		onNode := runIDs(st.RunsOnNode(n.ID))
		if want := runIDs(live[n.ID]); !slices.Equal(slices.Sorted(slices.Values(want)), onNode) {
			return fmt.Errorf("node %s: index says %v, runs say %v", n.ID, onNode, want)
		}
		if len(onNode) > 0 && !n.Ready() {
			return fmt.Errorf("node %s is %s yet holds %v", n.ID, n.State, onNode)
		}
		if n.Ready() && (n.State == api.NodeRunning) != (len(onNode) > 0) {
			return fmt.Errorf("node %s is %s holding %v", n.ID, n.State, onNode)
		}
		if n.State == api.NodeIdle && n.IdleSince.IsZero() {
			return fmt.Errorf("idle node %s has no IdleSince", n.ID)
		}
		var used api.Resources
		gpus := map[string]bool{}
		for _, r := range live[n.ID] {
			for _, al := range r.LiveAttempt().Allocations {
				if al.NodeID != n.ID {
					continue
				}
				used = used.Add(al.Resources)
				for _, g := range al.GPUUUIDs {
					if gpus[g] {
						return fmt.Errorf("GPU %s handed out twice", g)
					}
					gpus[g] = true
				}
			}
		}
		if !used.Fits(n.Capacity) {
			return fmt.Errorf("node %s over-committed: %v of %v", n.ID, used, n.Capacity)
		}
	}
	for _, tg := range st.Targets() {
		c := counts[tg.Name]
		if tg.NodeStateCounts != c || tg.CurrentNodeCount != c.Idle+c.Running {
			return fmt.Errorf("target %s counts %+v (%d), nodes say %+v", tg.Name, tg.NodeStateCounts, tg.CurrentNodeCount, c)
		}
		resizing := tg.TargetNodeCount != c.Idle+c.Running+c.Preparing
		if (tg.AllocationState == api.AllocationResizing) != resizing {
			return fmt.Errorf("target %s is %s with %d wanted, %+v", tg.Name, tg.AllocationState, tg.TargetNodeCount, c)
		}
	}
	return nil
}
