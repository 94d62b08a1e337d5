package autoscale

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// sim is a fake cluster driven by a fake clock: the test advances now,
// and apply carries out a decision the way the leader would, at once.
type sim struct {
	t      *testing.T
	now    time.Time
	target *api.Target
	nodes  map[string]*api.Node
	runs   []*api.Run
	made   int
}

func newSim(t *testing.T, target *api.Target, runs []*api.Run) *sim {
	return &sim{t: t, now: t0, target: target, nodes: map[string]*api.Node{}, runs: runs}
}

// round decides and applies the decision.
func (s *sim) round() Decision {
	s.t.Helper()
	nodes := slices.Collect(maps.Values(s.nodes))
	d := Decide(DefaultConfig(), Input{Now: s.now, Target: s.target, Size: cpu2, Nodes: nodes, Runs: s.runs})
	s.t.Logf("%v: %s", s.now.Sub(t0), d.Reason)
	for _, a := range d.MarkUnusable {
		s.nodes[a.NodeID].State = api.NodeUnusable
	}
	for _, a := range d.Delete {
		delete(s.nodes, a.NodeID)
	}
	for range d.Create {
		s.made++
		id := fmt.Sprintf("n-%d", s.made)
		s.nodes[id] = preparingNode(id, s.now)
	}
	return d
}

func (s *sim) register(id string) {
	n := s.nodes[id]
	n.State, n.Capacity, n.IdleSince = api.NodeIdle, whole, s.now
}

func (s *sim) place(run string, node string) {
	for i, r := range s.runs {
		if r.ID == run {
			s.runs[i] = live(run, whole, node)
		}
	}
	s.nodes[node].State, s.nodes[node].IdleSince = api.NodeRunning, time.Time{}
}

func (s *sim) finish(run string) {
	for i, r := range s.runs {
		if r.ID == run {
			node := r.Current().Allocations[0].NodeID
			s.runs = slices.Delete(s.runs, i, i+1)
			s.nodes[node].State, s.nodes[node].IdleSince = api.NodeIdle, s.now
			return
		}
	}
}

func (s *sim) ids() []string { return slices.Sorted(maps.Keys(s.nodes)) }

func TestBurstScalesToMaxThenBackToMinNodes(t *testing.T) {
	s := newSim(t, cluster(1, 3), burst(5))
	if d := s.round(); d.Create != 3 {
		t.Fatalf("Create = %d, want 3", d.Create)
	}
	if d := s.round(); d.Create != 0 || len(d.Delete) != 0 {
		t.Fatalf("while preparing: %+v", d)
	}
	s.now = s.now.Add(30 * time.Second)
	for _, id := range s.ids() {
		s.register(id)
	}
	if d := s.round(); d.Create != 0 || len(d.Delete) != 0 {
		t.Fatalf("idle nodes the queue will use: %+v", d)
	}
	s.place("r-0", "n-1")
	s.place("r-1", "n-2")
	s.place("r-2", "n-3")
	if d := s.round(); d.Create != 0 || d.TargetNodeCount != 3 || d.Needed != 5 {
		t.Fatalf("at max: %+v", d)
	}

	s.now = s.now.Add(10 * time.Minute)
	s.finish("r-1") // n-2 idle first
	s.place("r-3", "n-2")
	s.now = s.now.Add(time.Minute)
	s.finish("r-0")
	s.place("r-4", "n-1")
	s.now = s.now.Add(time.Minute)
	s.finish("r-2") // n-3 has been idle longest
	s.now = s.now.Add(10 * time.Second)
	s.finish("r-3")
	s.now = s.now.Add(10 * time.Second)
	s.finish("r-4")

	d := s.round()
	if len(d.Delete) != 0 {
		t.Fatalf("deleted %v before idle_seconds", deletedIDs(d))
	}
	s.now = d.NextCheck
	d = s.round()
	if got := deletedIDs(d); !slices.Equal(got, []string{"n-3"}) {
		t.Fatalf("deleted %v, want the longest idle n-3", got)
	}
	s.now = d.NextCheck
	d = s.round()
	if got := deletedIDs(d); !slices.Equal(got, []string{"n-2"}) {
		t.Fatalf("deleted %v, want n-2", got)
	}
	if !d.NextCheck.IsZero() || !slices.Equal(s.ids(), []string{"n-1"}) {
		t.Fatalf("left %v with NextCheck %v, want n-1 (min_nodes=1) and nothing to wait for", s.ids(), d.NextCheck)
	}
	s.now = s.now.Add(time.Hour)
	if d := s.round(); len(d.Delete) != 0 {
		t.Fatalf("deleted below min_nodes: %v", deletedIDs(d))
	}
}

func TestNodeThatNeverRegistersIsReplaced(t *testing.T) {
	s := newSim(t, cluster(0, 2), burst(1))
	s.round()
	d := s.round()
	if want := t0.Add(5 * time.Minute); !d.NextCheck.Equal(want) {
		t.Fatalf("NextCheck = %v, want the deadline %v", d.NextCheck, want)
	}
	s.now = d.NextCheck
	d = s.round()
	if !slices.Equal(actionIDs(d.MarkUnusable), []string{"n-1"}) || !slices.Equal(deletedIDs(d), []string{"n-1"}) || d.Create != 1 {
		t.Fatalf("at the deadline: %+v", d)
	}
	if !slices.Equal(s.ids(), []string{"n-2"}) {
		t.Fatalf("nodes %v, want the replacement n-2", s.ids())
	}
}
