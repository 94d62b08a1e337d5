package raftstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/amld/amld/api"
)

// TestConcurrentAppliesShareEntriesAndKeepTheirAnswers: 120 callers at once
// (every run ID twice) each get their own answer: one of each pair
// succeeds at an index where the state holds its run, the other is
// refused; queue places are distinct; and commands proposed together left
// in shared entries.
func TestConcurrentAppliesShareEntriesAndKeepTheirAnswers(t *testing.T) {
	s := openLeader(t, testConfig(t, t.TempDir(), freeAddr(t)))
	s.SetBatching(true)
	ctx := ctx5s(t)
	if _, err := s.Apply(ctx, MsgTargetCreate, &TargetCreateRequest{Target: &api.Target{
		TargetSpec: api.TargetSpec{Name: "cpu", Type: api.KindCluster, MaxNodes: 4}}}); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		id    string
		index uint64
		err   error
	}
	const runs = 60
	answers := make(chan answer, 2*runs)
	var wg sync.WaitGroup
	for i := range 2 * runs {
		id := fmt.Sprintf("r-%d", i%runs)
		wg.Go(func() {
			idx, err := s.Apply(ctx, MsgRunSubmit, &RunSubmitRequest{Run: &api.Run{ID: id,
				RunSpec: api.RunSpec{Target: "cpu", Command: []string{"true"}}, Request: half, SubmittedAt: t0}})
			answers <- answer{id, idx, err}
		})
	}
	wg.Wait()
	close(answers)
	st := s.State()
	ok, refused := map[string]uint64{}, map[string]int{}
	for a := range answers {
		switch {
		case a.err == nil:
			if _, dup := ok[a.id]; dup {
				t.Fatalf("run %s accepted twice", a.id)
			}
			ok[a.id] = a.index
			if r := st.Run(a.id); r == nil || r.CreateIndex != a.index {
				t.Fatalf("run %s acknowledged at index %d, state has %+v", a.id, a.index, r)
			}
		case api.StatusOf(a.err) == 409:
			refused[a.id]++
		default:
			t.Fatalf("run %s: %v", a.id, a.err)
		}
	}
	if len(ok) != runs || len(refused) != runs {
		t.Fatalf("%d accepted and %d refused, want %d of each", len(ok), len(refused), runs)
	}
	seqs, entries := map[uint64]bool{}, map[uint64]bool{}
	for id := range ok {
		r := st.Run(id)
		if seqs[r.QueueSeq] {
			t.Fatalf("queue place %d given twice", r.QueueSeq)
		}
		seqs[r.QueueSeq] = true
		entries[r.CreateIndex] = true
	}
	if len(entries) >= runs {
		t.Fatalf("%d runs took %d log entries: nothing was batched", runs, len(entries))
	}
	t.Logf("%d runs committed in %d log entries", runs, len(entries))
}

// TestApplyAfterCloseAndWithADoneContext: a done context or a closed store
// is answered at once, without proposing.
func TestApplyAfterCloseAndWithADoneContext(t *testing.T) {
	s := openLeader(t, testConfig(t, t.TempDir(), freeAddr(t)))
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Apply(done, MsgRunCancel, &RunCancelRequest{RunID: "r"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("apply with a canceled context: %v", err)
	}
	s.Close()
	if _, err := s.Apply(ctx5s(t), MsgRunCancel, &RunCancelRequest{RunID: "r"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("apply after close: %v", err)
	}
}

// TestWithoutBatchingEveryCommandHasItsOwnEntry: until the leader turns
// batching on (every head must apply batch entries), concurrent commands
// are proposed one entry each.
func TestWithoutBatchingEveryCommandHasItsOwnEntry(t *testing.T) {
	s := openLeader(t, testConfig(t, t.TempDir(), freeAddr(t)))
	if s.Batching() {
		t.Fatal("batching is on before the leader turned it on")
	}
	ctx := ctx5s(t)
	if _, err := s.Apply(ctx, MsgTargetCreate, &TargetCreateRequest{Target: &api.Target{
		TargetSpec: api.TargetSpec{Name: "cpu", Type: api.KindCluster, MaxNodes: 4}}}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[uint64]bool{}
	for i := range 40 {
		wg.Go(func() {
			idx, err := s.Apply(ctx, MsgRunSubmit, &RunSubmitRequest{Run: &api.Run{ID: fmt.Sprintf("r-%d", i),
				RunSpec: api.RunSpec{Target: "cpu", Command: []string{"true"}}, Request: half, SubmittedAt: t0}})
			mu.Lock()
			defer mu.Unlock()
			if err != nil || seen[idx] {
				t.Errorf("run %d: index %d, %v (an index given twice means a shared entry)", i, idx, err)
			}
			seen[idx] = true
		})
	}
	wg.Wait()
}
