package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// digest describes what must survive restarts: every target, node, run,
// attempt (state, exit code, reason) and log, in a stable order.
func digest(t *testing.T, cl *api.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var lines []string
	ts, err := cl.ListTargets(ctx)
	if err != nil {
		t.Fatalf("list targets: %v", err)
	}
	for _, tg := range ts {
		lines = append(lines, "target "+tg.Name)
		ns, err := cl.ListNodes(ctx, tg.Name)
		if err != nil {
			t.Fatalf("list nodes: %v", err)
		}
		for _, n := range ns {
			lines = append(lines, "node "+n.ID)
		}
	}
	rs, err := cl.ListRuns(ctx, api.RunFilter{})
	if err != nil {
		t.Fatalf("list runs: %v", err)
	}
	for _, r := range rs {
		lines = append(lines, fmt.Sprintf("run %s %s", r.ID, r.State))
		for _, a := range r.Attempts {
			code := "-"
			if a.ExitCode != nil {
				code = fmt.Sprint(*a.ExitCode)
			}
			lines = append(lines, fmt.Sprintf("attempt %s/%d exit %s %s", r.ID, a.Number, code, a.Reason))
		}
		lines = append(lines, fmt.Sprintf("log %s %q", r.ID, fullLog(t, cl, r.ID, 0)))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// runEchoes submits n runs printing their index and waits until they
// completed.
func runEchoes(t *testing.T, cl *api.Client, prefix string, n int) {
	t.Helper()
	var ids []string
	for i := range n {
		r, err := cl.SubmitRun(ctx(t), api.RunSpec{Target: "restarts", Command: []string{"echo", fmt.Sprintf("%s-%d", prefix, i)},
			Resources: &api.Resources{CPUs: 1, MemoryMB: 64}})
		if err != nil {
			t.Fatalf("submit: %v", err)
		}
		ids = append(ids, r.ID)
	}
	for _, r := range waitTerminal(t, cl, 2*time.Minute, ids) {
		completedOnce(t, r)
	}
}

// TestHeadsRollingAndFullRestartsKeepEverything: after runs have completed
// on a 3-head cluster, restarting the heads one at a time, and then all of
// them at once, keeps every target, node, run, attempt and log, and the
// cluster goes on running new runs after each.
func TestHeadsRollingAndFullRestartsKeepEverything(t *testing.T) {
	c := startCluster(t, 3)
	cl := c.client()
	cons, _ := api.NewClient(api.Config{Addresses: cl.Addresses(), Token: c.token, CACertPEM: c.caPEM, Consistent: true})
	if _, err := cl.CreateTarget(ctx(t), api.TargetSpec{Name: "restarts", VMSize: "cpu-2", MaxNodes: 2, IdleSecondsBeforeScaledown: intp(600)}); err != nil {
		t.Fatal(err)
	}
	runEchoes(t, cons, "first", 6)
	before := digest(t, cons)

	// Rolling: one head at a time, each back as a voter before the next.
	for _, h := range c.heads {
		h.stop()
		h.start()
		c.waitVoters(3)
	}
	if got := digest(t, cons); got != before {
		t.Fatalf("after a rolling restart the state differs:\n--- before\n%s\n--- after\n%s", before, got)
	}
	runEchoes(t, cons, "rolled", 2)
	before = digest(t, cons)

	// Full: all heads stop, then all start.
	var wg sync.WaitGroup
	for _, h := range c.heads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.stop()
		}()
	}
	wg.Wait()
	for _, h := range c.heads {
		h.start()
	}
	c.leader()
	c.waitVoters(3)
	// Every head, from its own state, has it all.
	for _, h := range c.heads {
		hc := c.client(h)
		waitFor(t, 30*time.Second, "the state on "+h.id, func() (bool, string) {
			rs, err := hc.ListRuns(context.Background(), api.RunFilter{})
			return err == nil && len(rs) == 8, fmt.Sprint(len(rs), err)
		})
		if got := digest(t, hc); got != before {
			t.Fatalf("after a full restart %s's state differs:\n--- before\n%s\n--- after\n%s", h.id, before, got)
		}
	}
	runEchoes(t, cons, "restarted", 2)
}
