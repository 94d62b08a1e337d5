package raftstore

import (
	"cmp"
	"slices"

	"github.com/amld/amld/api"
	memdb "github.com/hashicorp/go-memdb"
)

// State is an immutable point-in-time read view of the replicated state.
// Any number of goroutines may read one. Records it returns are shared with
// the store: treat them as read-only.
type State struct {
	db      *memdb.MemDB // a snapshot; never written
	index   uint64
	changes uint64
}

// Index is the Raft index of the last command this view reflects.
func (st *State) Index() uint64 { return st.index }

// SchedulingChanges counts, in this process, the commands applied (and
// snapshots restored) up to this view that may change what a scheduling
// round decides: every command but a RunSubmit that carries its run's
// wait reason, whose run waits behind one that asks the same of the same
// target at the same priority (RunSubmitRequest.Reason), and a
// TargetScale, which changes nothing a round reads. Two views of one
// process with the same count give the same scheduling round. Counts of
// different processes are not comparable.
func (st *State) SchedulingChanges() uint64 { return st.changes }

func (st *State) txn() *memdb.Txn { return st.db.Txn(false) }

// first returns the record at key in table (by its "id" index), or nil.
func first[T any](txn *memdb.Txn, table string, key ...any) *T {
	raw, err := txn.First(table, indexID, key...)
	if err != nil {
		// Only a schema error (a bug) gets here.
		panic(err)
	}
	if raw == nil {
		return nil
	}
	return raw.(*T)
}

// collect returns the records an index lookup finds, in index order.
func collect[T any](txn *memdb.Txn, table, index string, args ...any) []*T {
	it, err := txn.Get(table, index, args...)
	if err != nil {
		// Only a schema error (a bug) gets here.
		panic(err)
	}
	var out []*T
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*T))
	}
	return out
}

// Meta returns the cluster identity, or nil before MsgBootstrap.
func (st *State) Meta() *Meta { return first[Meta](st.txn(), tableMeta, "meta") }

// Credential returns who holds the token with this SHA-256 hex hash, or nil.
func (st *State) Credential(hash string) *Credential {
	return first[Credential](st.txn(), tableCredentials, hash)
}

// User returns the named user, or nil.
func (st *State) User(name string) *api.User { return first[api.User](st.txn(), tableUsers, name) }

// Users returns every user, by name.
func (st *State) Users() []*api.User { return collect[api.User](st.txn(), tableUsers, indexID) }

// Target returns the named target, or nil.
func (st *State) Target(name string) *api.Target {
	return first[api.Target](st.txn(), tableTargets, name)
}

// Targets returns every target, by name.
func (st *State) Targets() []*api.Target {
	return collect[api.Target](st.txn(), tableTargets, indexID)
}

// Node returns the node with this ID, or nil.
func (st *State) Node(id string) *api.Node { return first[api.Node](st.txn(), tableNodes, id) }

// Nodes returns every node, by ID.
func (st *State) Nodes() []*api.Node { return collect[api.Node](st.txn(), tableNodes, indexID) }

// NodesOfTarget returns the target's nodes, by ID.
func (st *State) NodesOfTarget(target string) []*api.Node {
	return collect[api.Node](st.txn(), tableNodes, indexTarget, target)
}

// Run returns the run with this ID, or nil.
func (st *State) Run(id string) *api.Run { return first[api.Run](st.txn(), tableRuns, id) }

// Runs returns every run, by QueueSeq (submit order). It sorts on read:
// an index for it would cost every write of a run, and writes of runs are
// what a burst of submits is made of.
func (st *State) Runs() []*api.Run { return bySeq(collect[api.Run](st.txn(), tableRuns, indexID)) }

// RunsOfTarget returns the runs submitted to the target, by QueueSeq.
func (st *State) RunsOfTarget(target string) []*api.Run {
	return collect[api.Run](st.txn(), tableRuns, indexTarget, target)
}

// PendingRuns returns the runs the scheduler must see: Queued ones and
// those holding a live attempt (r.LiveAttempt() != nil), by QueueSeq. It
// reads indexes, so finished runs cost nothing.
func (st *State) PendingRuns() []*api.Run {
	return bySeq(append(st.liveRuns(), collect[api.Run](st.txn(), tableRuns, indexQueue)...))
}

// LiveRuns returns the runs that hold a live attempt, by QueueSeq.
func (st *State) LiveRuns() []*api.Run { return bySeq(st.liveRuns()) }

// liveRuns returns the runs that hold a live attempt, each once.
func (st *State) liveRuns() []*api.Run {
	var runs []*api.Run
	seen := map[string]bool{}
	for _, r := range collect[api.Run](st.txn(), tableRuns, indexLive) { // once per node held
		if !seen[r.ID] {
			seen[r.ID] = true
			runs = append(runs, r)
		}
	}
	return runs
}

// bySeq sorts runs by QueueSeq (submit order) and returns them.
func bySeq(runs []*api.Run) []*api.Run {
	slices.SortFunc(runs, func(a, b *api.Run) int { return cmp.Compare(a.QueueSeq, b.QueueSeq) })
	return runs
}

// Queue returns the first n of the target's queued runs that wait for a
// placement (those without a live attempt), in queue order: higher
// priority first, then submit order. n <= 0 returns them all.
func (st *State) Queue(target string, n int) []*api.Run {
	it, err := st.txn().Get(tableRuns, indexQueue, target)
	if err != nil {
		panic(err) // a schema error: a bug
	}
	var out []*api.Run
	for raw := it.Next(); raw != nil && (n <= 0 || len(out) < n); raw = it.Next() {
		out = append(out, raw.(*api.Run))
	}
	return out
}

// RunsOnNode returns the runs whose live attempt holds an allocation on
// the node (the node's assignments), by run ID.
func (st *State) RunsOnNode(nodeID string) []*api.Run {
	return collect[api.Run](st.txn(), tableRuns, indexLive, nodeID)
}

// Blob returns the blob with this ID, or nil. Its Data is shared: do not
// change it.
func (st *State) Blob(id string) *Blob { return first[Blob](st.txn(), tableBlobs, id) }

// Log returns the bytes of node's output of attempt from offset to the end
// of what is stored, and the stream's length (offsets count from the start
// of the stream; a truncated stream ends with its marker). ok is false when
// no such stream exists yet. An offset at or past the end gives no data.
// The returned slice is the caller's.
func (st *State) Log(runID string, attempt, node int, offset int64) (data []byte, length int64, ok bool) {
	txn := st.txn()
	s := first[logStream](txn, tableLogStreams, runID, attempt, node)
	if s == nil {
		return nil, 0, false
	}
	return readLog(txn, s, offset), s.Length, true
}

// readLog copies the stream's bytes from offset on.
func readLog(txn *memdb.Txn, s *logStream, offset int64) []byte {
	offset = max(offset, 0)
	if offset >= s.Length {
		return nil
	}
	// The chunk holding offset is the first whose end is past it.
	it, err := txn.LowerBound(tableLogChunks, indexID, s.RunID, s.Attempt, s.Node, offset+1)
	if err != nil {
		panic(err)
	}
	out := make([]byte, 0, s.Length-offset)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		c := raw.(*logChunk)
		if c.RunID != s.RunID || c.Attempt != s.Attempt || c.Node != s.Node {
			break
		}
		from := max(offset-c.Offset, 0)
		out = append(out, c.Data[from:]...)
	}
	return out
}
