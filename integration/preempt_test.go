package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// TestEvictionWithAndWithoutNoticeBothRequeueAndResume evicts the node of a
// running training job through amlctl (notice: SIGTERM, a final
// checkpoint, requeue), then kills the next node outright (no notice: the
// missed heartbeats requeue it, from the last periodic checkpoint). The run
// completes once, resuming each time, and `job show` lists every attempt.
func TestEvictionWithAndWithoutNoticeBothRequeueAndResume(t *testing.T) {
	h := startHead(t, "--heartbeat-ttl", "3s")
	c := h.client()
	if out, errOut, code := h.ctl("compute", "create", "cluster", "--name", "spot", "--vm-size", "cpu-2", "--max-nodes", "2",
		"--vm-priority", "lowpriority", "--idle-seconds-before-scaledown", "60"); code != 0 {
		t.Fatalf("create spot: %d %s %s", code, out, errOut)
	}
	if _, _, code := h.ctl("compute", "create", "cluster", "--name", "steady", "--vm-size", "cpu-2", "--max-nodes", "1"); code != 0 {
		t.Fatal("create steady")
	}
	_, errOut, code := h.ctl("compute", "simulate-eviction", "steady", "--node", "n-whatever")
	if code == 0 || !strings.Contains(errOut, "lowpriority") {
		t.Errorf("eviction on a dedicated cluster: exit %d, stderr %q; want a refusal naming lowpriority", code, errOut)
	}
	if _, errOut, code := h.ctl("compute", "simulate-eviction", "spot"); code == 0 || !strings.Contains(errOut, "--node") {
		t.Errorf("eviction without --node: exit %d, stderr %q", code, errOut)
	}

	examples, _ := filepath.Abs("../examples/train")
	var sub api.Run
	h.ctlJSON(&sub, "job", "submit", "--target", "spot", "--max-preemptions", "10", "--source", examples,
		"--", "python3", "train.py", "--epochs", "30", "--sleep", "0.5", "--samples", "50")
	id := sub.ID

	// 1. With notice.
	r := waitAttemptRunning(t, c, id, 1, 60*time.Second)
	first := r.Attempts[0].Allocations[0].NodeID
	waitFor(t, 30*time.Second, "epoch 4 in attempt 1", func() (bool, string) {
		l := attemptLog(t, c, id, 1)
		return lastEpoch(l) >= 4, l
	})
	out, errOut, code := h.ctl("compute", "simulate-eviction", "spot", "--node", first)
	if code != 0 || !strings.Contains(out, "Evicting node "+first) || !strings.Contains(out, id) {
		t.Fatalf("simulate-eviction: exit %d\n%s%s", code, out, errOut)
	}
	r = waitAttemptRunning(t, c, id, 2, 60*time.Second)
	a1 := r.Attempts[0]
	if !strings.HasPrefix(a1.Reason, "preempted: node "+first+" evicted") || r.Preemptions != 1 || r.Retries != 0 {
		t.Fatalf("after the eviction: attempt 1 reason %q, preemptions %d, retries %d", a1.Reason, r.Preemptions, r.Retries)
	}
	second := r.Attempts[1].Allocations[0].NodeID
	if second == first {
		t.Fatalf("attempt 2 runs on the evicted node %s", first)
	}
	done1 := lastEpoch(attemptLog(t, c, id, 1))
	waitFor(t, 30*time.Second, "attempt 2 to say where it resumed", func() (bool, string) {
		l := attemptLog(t, c, id, 2)
		return resumedAt(l) >= 0, l
	})
	if k := resumedAt(attemptLog(t, c, id, 2)); k < done1-1 || k > done1 {
		t.Fatalf("attempt 2 resumed from epoch %d; attempt 1 had printed epoch %d", k, done1)
	}
	waitFor(t, 30*time.Second, "the evicted node to be gone", func() (bool, string) {
		ns, err := c.ListNodes(context.Background(), "spot")
		if err != nil {
			return false, err.Error()
		}
		for _, n := range ns {
			if n.ID == first {
				return false, n.State
			}
		}
		return true, ""
	})

	// 2. Without notice: once attempt 2 uploaded a periodic checkpoint.
	waitFor(t, 30*time.Second, "a periodic checkpoint of attempt 2", func() (bool, string) {
		r := getRun(t, c, id)
		return r.CheckpointAttempt == 2 && r.CheckpointID != "", fmt.Sprintf("checkpoint of attempt %d", r.CheckpointAttempt)
	})
	killNode(t, h, second)
	r = waitAttemptRunning(t, c, id, 3, 60*time.Second)
	if a2 := r.Attempts[1]; !strings.Contains(a2.Reason, "missed heartbeats") || r.Preemptions != 2 || r.Retries != 0 {
		t.Fatalf("after the kill: attempt 2 reason %q, preemptions %d, retries %d", a2.Reason, r.Preemptions, r.Retries)
	}
	r = waitTerminal(t, c, 2*time.Minute, []string{id})[id]
	completedOnce(t, r)
	checkNoOverlap(t, r)
	if len(r.Attempts) != 3 {
		t.Fatalf("%d attempts, want 3", len(r.Attempts))
	}
	k2, k3 := resumedAt(attemptLog(t, c, id, 2)), resumedAt(attemptLog(t, c, id, 3))
	if k3 <= k2 {
		t.Errorf("attempt 3 resumed from epoch %d, not past attempt 2's start (%d): the periodic checkpoint was lost", k3, k2)
	}
	if !strings.Contains(attemptLog(t, c, id, 3), "epoch 30/30") {
		t.Errorf("attempt 3 did not finish the training")
	}

	// `job show` lists every attempt: nodes, start, end, exit code, reason.
	out, _, _ = h.ctl("job", "show", id)
	for _, want := range []string{"preemptions:", "2 of 10", first, second, r.Attempts[2].Allocations[0].NodeID, "preempted: node " + first, "missed heartbeats", "checkpoint:"} {
		if !strings.Contains(out, want) {
			t.Errorf("job show lacks %q:\n%s", want, out)
		}
	}
	t.Logf("job show:\n%s", out)
}

// TestPriorityPreemptionRequeuesOnlyTheLowestPriorityRuns fills a cluster
// at max_nodes with four runs of priorities 1 to 4, then submits two runs
// of priority 10 that need one slot each: exactly the two lowest are
// preempted (with notice, checkpointing), the others never are, and the
// victims finish later from their checkpoints.
func TestPriorityPreemptionRequeuesOnlyTheLowestPriorityRuns(t *testing.T) {
	h := startHead(t)
	c := h.client()
	createCluster(t, c, "prio", 2, 60)
	if out, errOut, code := h.ctl("compute", "update", "prio", "--preemption", "requeue", "--preemption-grace-seconds", "20"); code != 0 {
		t.Fatalf("update --preemption requeue: %d %s %s", code, out, errOut)
	}
	src := trainSource(t, c)
	one := &api.Resources{CPUs: 1, MemoryMB: 1024}
	var lows []string
	for p := 1; p <= 4; p++ {
		s := trainRun("prio", src, 24, 0.5, false)
		s.Priority, s.Resources, s.DisplayName = p, one, fmt.Sprintf("low-%d", p)
		lows = append(lows, submitAll(t, c, s)...)
	}
	for _, id := range lows {
		waitAttemptRunning(t, c, id, 1, 60*time.Second)
		waitFor(t, 30*time.Second, "a checkpointed epoch of "+id, func() (bool, string) {
			l := attemptLog(t, c, id, 1)
			return lastEpoch(l) >= 2, l
		})
	}
	var highs []string
	for i := range 2 {
		s := trainRun("prio", src, 4, 0.25, false)
		s.Priority, s.Resources, s.DisplayName = 10, one, fmt.Sprintf("high-%d", i)
		highs = append(highs, submitAll(t, c, s)...)
	}
	for _, id := range highs {
		waitAttemptRunning(t, c, id, 1, 60*time.Second)
	}
	for i, id := range lows {
		r := getRun(t, c, id)
		victim := i < 2
		if victim != (r.Preemptions == 1) || r.Preemptions > 1 {
			t.Errorf("low-%d (%s) preempted %d times while the highs started; want %v", i+1, id, r.Preemptions, victim)
		}
		if victim && len(r.Attempts) > 0 && !strings.HasPrefix(r.Attempts[0].Reason, "preempted by run ") {
			t.Errorf("low-%d attempt 1 reason %q, want it preempted by a high run", i+1, r.Attempts[0].Reason)
		}
	}
	runs := waitTerminal(t, c, 3*time.Minute, append(append([]string{}, lows...), highs...))
	for i, id := range lows {
		r := runs[id]
		completedOnce(t, r)
		checkNoOverlap(t, r)
		want := 1
		if i < 2 {
			want = 2
			if l := attemptLog(t, c, id, 2); resumedAt(l) < 1 {
				t.Errorf("low-%d attempt 2 did not resume from its checkpoint:\n%s", i+1, l)
			}
		}
		if len(r.Attempts) != want {
			t.Errorf("low-%d has %d attempts, want %d", i+1, len(r.Attempts), want)
		}
	}
	for _, id := range highs {
		if r := runs[id]; len(r.Attempts) != 1 || r.Preemptions != 0 {
			completedOnce(t, r)
			t.Errorf("high run %s: %d attempts, %d preemptions", id, len(r.Attempts), r.Preemptions)
		}
	}
}

// TestPartitionedNodeThatReturnsLateCannotCompleteItsAttempt freezes a
// node's agent (SIGSTOP) past the heartbeat TTL while its command keeps
// running, lets the run be requeued elsewhere, then lets the agent go on
// (SIGCONT): the old attempt is killed at once, its late output and
// reports are refused, and the run completes exactly once, elsewhere.
func TestPartitionedNodeThatReturnsLateCannotCompleteItsAttempt(t *testing.T) {
	h := startHead(t, "--heartbeat-ttl", "2s")
	c := h.client()
	createCluster(t, c, "part", 2, 60)
	code := "import os, time\nprint('pid', os.getpid(), flush=True)\nfor i in range(40):\n    print('tick', i, flush=True)\n    time.sleep(0.25)\nprint('done', flush=True)\n"
	id := submitAll(t, c, api.RunSpec{Target: "part", Command: []string{"python3", "-c", code}})[0]
	r := waitAttemptRunning(t, c, id, 1, 60*time.Second)
	node := r.Attempts[0].Allocations[0].NodeID
	var pid int
	waitFor(t, 20*time.Second, "the command's pid and a tick", func() (bool, string) {
		l := attemptLog(t, c, id, 1)
		_, err := fmt.Sscanf(l, "pid %d", &pid)
		return err == nil && strings.Contains(l, "tick 1"), l
	})
	agent := agentPid(t, h, node)
	if err := syscall.Kill(agent, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(agent, syscall.SIGCONT)
	waitFor(t, 30*time.Second, "attempt 1 to be requeued", func() (bool, string) {
		r = getRun(t, c, id)
		return r.Attempts[0].Ended, r.State + ": " + r.Reason
	})
	if !strings.Contains(r.Attempts[0].Reason, "missed heartbeats") {
		t.Fatalf("attempt 1 ended with %q, want missed heartbeats", r.Attempts[0].Reason)
	}
	if !processAlive(pid) {
		t.Fatalf("the old command %d died while its agent was frozen: the test proves nothing", pid)
	}
	logAtEnd := attemptLog(t, c, id, 1)
	time.Sleep(time.Second) // the frozen attempt keeps printing into its pipe
	if err := syscall.Kill(agent, syscall.SIGCONT); err != nil && err != syscall.ESRCH {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the old command to be killed once its agent is back", func() (bool, string) {
		return !processAlive(pid), fmt.Sprintf("pid %d alive", pid)
	})
	r = waitTerminal(t, c, 2*time.Minute, []string{id})[id]
	completedOnce(t, r)
	checkNoOverlap(t, r)
	a1 := r.Attempts[0]
	if a1.ExitCode != nil || a1.Nodes[0].ExitCode != nil || !strings.Contains(a1.Reason, "missed heartbeats") {
		t.Errorf("attempt 1 = exit %v, node exit %v, reason %q: a late report was taken", a1.ExitCode, a1.Nodes[0].ExitCode, a1.Reason)
	}
	if got := attemptLog(t, c, id, 1); got != logAtEnd {
		t.Errorf("attempt 1's log grew after it ended:\nthen %q\nnow  %q", logAtEnd, got)
	}
	if last := r.Attempts[len(r.Attempts)-1]; last.Allocations[0].NodeID == node {
		t.Errorf("the run completed on the partitioned node %s", node)
	}
}
