package agent

import (
	"errors"
	"testing"
	"time"
)

func TestFirstOutputLineArrivesPromptly(t *testing.T) {
	h := newFakeHead(t)
	startAgent(t, h, "", func(c *Config) { c.LogFlushInterval = 5 * time.Second })
	h.waitFor("registration", 5*time.Second, func() bool { return len(h.registrations) == 1 })
	a := assignment("r-20", "sh", "-c", "echo first; exec sleep 1000")
	assigned := time.Now()
	h.assign(a)
	// The flush interval is long: only shipping the first output at once
	// gets it there in time.
	h.waitFor("the first line", 3*time.Second, func() bool { return string(h.logs[a.Key()]) == "first\n" })
	took := time.Since(assigned)
	t.Logf("first line %s after assignment", took)
	if took > time.Second {
		t.Fatalf("first line took %s from assignment to head", took)
	}
}

func TestDroppedAssignmentIsKilledAtOnce(t *testing.T) {
	h := newFakeHead(t)
	ta := startAgent(t, h, "", func(c *Config) { c.KillGrace = 5 * time.Second })
	// It ignores SIGTERM: only a SIGKILL without grace stops it in time.
	a := assignment("r-21", "sh", "-c", `trap "" TERM; echo up; sleep 1000`)
	h.assign(a)
	h.waitFor("running", 10*time.Second, func() bool { return len(h.statuses) == 1 && len(h.logs[a.Key()]) > 0 })
	start := time.Now()
	h.assign() // the head no longer lists it: the run may already run elsewhere
	st := h.final(a.Key(), 10*time.Second)
	if st.Reason != "stopped: no longer assigned to this node" || st.ExitCode == nil || *st.ExitCode != 128+9 {
		t.Fatalf("exited report = code %v reason %q, want 137 and the drop named", st.ExitCode, st.Reason)
	}
	if took := time.Since(start); took >= ta.cfg.KillGrace {
		t.Fatalf("a dropped attempt took %s to be killed, want no grace", took)
	}
}

func TestStopBeforeStartIsReportedWithoutRunning(t *testing.T) {
	h := newFakeHead(t)
	startAgent(t, h, "", nil)
	a := assignment("r-22", "sleep", "1000")
	a.Stop, a.StopReason = true, "canceled"
	h.assign(a)
	st := h.final(a.Key(), 10*time.Second)
	if st.ExitCode == nil || *st.ExitCode != 143 || st.Reason != "stopped: canceled before it started" {
		t.Fatalf("exited report = %+v, want exit code 143 and the stop named", st)
	}
	if got := h.states(a.Key()); len(got) != 1 {
		t.Fatalf("states %v, want only exited", got)
	}
}

func TestShutdownAnswerStopsTheAgent(t *testing.T) {
	h := newFakeHead(t)
	ta := startAgent(t, h, "", nil)
	a := assignment("r-23", "sleep", "1000")
	h.assign(a)
	h.waitFor("running", 10*time.Second, func() bool { return len(h.statuses) == 1 })
	h.update(func() { h.shutdown = true; h.index++ })
	select {
	case err := <-ta.errc:
		close(ta.errc)
		if !errors.Is(err, ErrNodeRemoved) {
			t.Fatalf("Run = %v, want ErrNodeRemoved", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("agent still runs after Shutdown")
	}
	if got := h.states(a.Key()); len(got) != 1 {
		t.Fatalf("states %v: want nothing reported after the node was removed", got)
	}
}
