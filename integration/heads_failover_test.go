package integration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// submitter submits runs continuously from one client and records which
// submits were acknowledged and which failed. Each run's command prints
// its marker, so a run can be matched with its submit.
type submitter struct {
	cl     *api.Client
	name   string
	target string

	mu     sync.Mutex
	acked  map[string]string // marker → run ID
	failed map[string]error  // marker → the error the client saw
	n      int
	ackAt  []time.Time
}

func (s *submitter) loop(ctx context.Context) {
	for ctx.Err() == nil {
		s.n++
		marker := fmt.Sprintf("%s-%d", s.name, s.n)
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		r, err := s.cl.SubmitRun(sctx, api.RunSpec{
			Target: s.target, Command: []string{"echo", marker},
			Resources: &api.Resources{CPUs: 1, MemoryMB: 64},
		})
		cancel()
		s.mu.Lock()
		if err == nil {
			s.acked[marker] = r.ID
			s.ackAt = append(s.ackAt, time.Now())
		} else {
			s.failed[marker] = err // the client's last try may still have made the run
		}
		s.mu.Unlock()
		if err != nil {
			time.Sleep(50 * time.Millisecond)
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func (s *submitter) acksAfter(t time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, a := range s.ackAt {
		if a.After(t) {
			n++
		}
	}
	return n
}

// TestHeadsLeaderKilledFiveTimesLosesNoAcknowledgedRun: four clients
// submit runs without pause while the leader is killed with SIGKILL five
// times in a row (each time the killed head is started again, so that a
// quorum remains). Afterwards every acknowledged submit exists exactly
// once and completed exactly once on the local-provider agents, and every
// run in the cluster is one that a client submitted: a submit whose
// answer was lost either made one whole run or none.
func TestHeadsLeaderKilledFiveTimesLosesNoAcknowledgedRun(t *testing.T) {
	c := startCluster(t, 3)
	cl := c.client()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := cl.CreateTarget(ctx, api.TargetSpec{Name: "work", VMSize: "cpu-2", MaxNodes: 3, IdleSecondsBeforeScaledown: intp(600)}); err != nil {
		t.Fatal(err)
	}
	sctx, stopSubmits := context.WithCancel(ctx)
	var subs []*submitter
	var wg sync.WaitGroup
	for i := range 4 {
		// Each client starts at a different head.
		var heads []*nhead
		for j := range c.heads {
			heads = append(heads, c.heads[(i+j)%len(c.heads)])
		}
		s := &submitter{cl: c.client(heads...), name: fmt.Sprintf("c%d", i), target: "work", acked: map[string]string{}, failed: map[string]error{}}
		subs = append(subs, s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.loop(sctx)
		}()
	}
	acksAfter := func(t0 time.Time) int {
		n := 0
		for _, s := range subs {
			n += s.acksAfter(t0)
		}
		return n
	}
	time.Sleep(time.Second)
	for kill := 1; kill <= 5; kill++ {
		old := c.leader()
		t0 := time.Now()
		old.kill9()
		t.Logf("kill %d: killed leader %s", kill, old.id)
		waitFor(t, 30*time.Second, "a submit acknowledged after the kill", func() (bool, string) {
			return acksAfter(t0) > 0, "none yet"
		})
		t.Logf("kill %d: next submit acknowledged after %s", kill, time.Since(t0).Round(time.Millisecond))
		old.start()
		c.waitVoters(3)
		time.Sleep(500 * time.Millisecond)
	}
	stopSubmits()
	wg.Wait()

	acked := map[string]string{}
	failed := map[string]error{}
	for _, s := range subs {
		for m, id := range s.acked {
			acked[m] = id
		}
		for m, err := range s.failed {
			failed[m] = err
		}
	}
	t.Logf("%d submits acknowledged, %d failed", len(acked), len(failed))
	for m, err := range failed {
		t.Logf("failed submit %s: %v", m, err)
	}
	if len(acked) < 20 {
		t.Fatalf("only %d submits were acknowledged", len(acked))
	}
	// Every run in the cluster, through the leader.
	cons, _ := api.NewClient(api.Config{Addresses: cl.Addresses(), Token: c.token, CACertPEM: c.caPEM, Consistent: true})
	var runs []*api.Run
	waitFor(t, 2*time.Minute, "every run to finish", func() (bool, string) {
		rs, err := cons.ListRuns(ctx, api.RunFilter{Target: "work"})
		if err != nil {
			return false, err.Error()
		}
		runs = rs
		for _, r := range rs {
			if !api.RunTerminal(r.State) {
				return false, fmt.Sprintf("%s is %s: %s", r.ID, r.State, r.Reason)
			}
		}
		return true, ""
	})
	byMarker := map[string][]*api.Run{}
	for _, r := range runs {
		m := r.Command[len(r.Command)-1]
		byMarker[m] = append(byMarker[m], r)
	}
	for m, id := range acked {
		rs := byMarker[m]
		if len(rs) != 1 || rs[0].ID != id {
			t.Errorf("acknowledged submit %s (run %s): %d runs in the cluster", m, id, len(rs))
			continue
		}
		completedOnce(t, rs[0])
	}
	for m, rs := range byMarker {
		if _, ok := acked[m]; ok {
			continue
		}
		if _, ok := failed[m]; !ok {
			t.Errorf("run %s (%s) matches no submit", rs[0].ID, m)
		}
		if len(rs) != 1 {
			t.Errorf("failed submit %s made %d runs", m, len(rs))
		}
		for _, r := range rs {
			completedOnce(t, r) // a whole run, not half of one
		}
	}
	// The output of one acknowledged run, read back from any head.
	for m, id := range acked {
		got := fullLog(t, cons, id, 0)
		if !strings.Contains(got, m) {
			t.Errorf("run %s printed %q, want %q", id, got, m)
		}
		break
	}
}
