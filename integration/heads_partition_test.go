package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// targetNames lists the targets one head has, from its own state.
func (c *hcluster) targetNames(ctx context.Context, h *nhead) ([]string, error) {
	ts, err := c.client(h).ListTargets(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range ts {
		out = append(out, t.Name)
	}
	slices.Sort(out)
	return out, nil
}

// TestHeadsPartitionedLeaderStepsDownAndRejoins: the leader is cut off
// from the two other heads (the test still reaches it). It stops leading
// within its lease, stops its duties, and acknowledges no write; the two
// others elect a leader and go on. When the network heals, the old leader
// follows the new one and every head has the same history.
func TestHeadsPartitionedLeaderStepsDownAndRejoins(t *testing.T) {
	c := startCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := c.client()
	if _, err := cl.CreateTarget(ctx, api.TargetSpec{Name: "before", VMSize: "cpu-2", MaxNodes: 1}); err != nil {
		t.Fatal(err)
	}
	old := c.leader()
	var others []*nhead
	for _, h := range c.heads {
		if h != old {
			others = append(others, h)
			c.lab.cut(old.ns, old.ip, h.ns, h.ip)
		}
	}
	t0 := time.Now()
	waitFor(t, 10*time.Second, "the cut-off leader to step down", func() (bool, string) {
		st, err := c.status(old)
		return err == nil && st.State != "Leader", fmt.Sprint(st, err)
	})
	t.Logf("the cut-off leader stepped down after %s", time.Since(t0).Round(time.Millisecond))
	if !strings.Contains(old.out.String(), "leader duties stopped") {
		t.Error("the cut-off leader did not stop its duties")
	}
	wctx, wcancel := context.WithTimeout(ctx, 8*time.Second)
	_, err := c.client(old).CreateTarget(wctx, api.TargetSpec{Name: "to-the-cut-off-leader", VMSize: "cpu-2", MaxNodes: 1})
	wcancel()
	if err == nil {
		t.Fatal("the cut-off head acknowledged a write")
	}
	t.Logf("a write to the cut-off head: %v", err)

	// The majority goes on.
	majority := c.client(others...)
	if _, err := majority.CreateTarget(ctx, api.TargetSpec{Name: "during", VMSize: "cpu-2", MaxNodes: 1}); err != nil {
		t.Fatalf("a write to the majority: %v", err)
	}
	newLeader := c.leader()
	if newLeader == old {
		t.Fatal("the cut-off head leads again")
	}

	for _, h := range others {
		c.lab.heal(old.ns, old.ip, h.ns, h.ip)
	}
	if _, err := majority.CreateTarget(ctx, api.TargetSpec{Name: "after", VMSize: "cpu-2", MaxNodes: 1}); err != nil {
		t.Fatal(err)
	}
	want := []string{"after", "before", "during"}
	waitFor(t, 30*time.Second, "one history on every head", func() (bool, string) {
		st, err := c.status(old)
		if err != nil || st.State != "Follower" || st.Leader != newLeader.id {
			return false, fmt.Sprint("old leader: ", st, err)
		}
		for _, h := range c.heads {
			names, err := c.targetNames(ctx, h)
			if err != nil || !slices.Equal(names, want) {
				return false, fmt.Sprintf("%s has %v (%v)", h.id, names, err)
			}
		}
		return true, ""
	})
	c.waitVoters(3)
}
