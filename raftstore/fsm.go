package raftstore

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amld/amld/api"
	memdb "github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
)

// FSM is amld's raft.FSM: it applies the command log to the state store.
// Apply is deterministic (no clock, randomness or I/O); raft calls Apply,
// Snapshot and Restore from one goroutine, and State and WaitForIndex may
// be called from any.
type FSM struct {
	logger *slog.Logger
	db     *memdb.MemDB // written only by Apply and Restore
	ids    idKeys

	restores atomic.Int64 // snapshots restored (installed from the leader or a backup)
	// changes counts what may change a scheduling round's outcome (see
	// State.SchedulingChanges); written by Apply and Restore only.
	changes uint64

	mu      sync.Mutex
	state   *State        // the latest published view
	changed chan struct{} // closed and replaced on every publish
}

var _ raft.BatchingFSM = (*FSM)(nil)

// NewFSM returns an FSM with an empty state at index 0. logger may be nil.
func NewFSM(logger *slog.Logger) *FSM {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	db, err := newDB()
	if err != nil {
		panic(fmt.Errorf("raftstore: schema: %w", err)) // a bug, caught by every test
	}
	f := &FSM{logger: logger, db: db, ids: newIDKeys(db.DBSchema()), changed: make(chan struct{})}
	f.state = &State{db: db.Snapshot()}
	return f
}

// Apply applies one log entry. It returns nil on success and an error
// (an *api.Error when the state refuses the command) otherwise; a refused
// command changes nothing. Entries that are not commands are ignored.
func (f *FSM) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyCommand encodes a command and applies it at index, as Apply would
// for a log entry. It is for tests and tools that want a State without
// Raft; index must grow from call to call.
func (f *FSM) ApplyCommand(index uint64, t MsgType, req any) error {
	b, err := EncodeCommand(t, req)
	if err != nil {
		return err
	}
	if resp := f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: b}); resp != nil {
		return resp.(error)
	}
	return nil
}

// publish makes the database as it is now the state at index and wakes
// WaitForIndex callers.
func (f *FSM) publish(index uint64) {
	st := &State{db: f.db.Snapshot(), index: index, changes: f.changes}
	f.mu.Lock()
	f.state = st
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// State returns the current read view.
func (f *FSM) State() *State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

// WaitForIndex returns the current state as soon as its index is past
// after, or when ctx is done (then whatever the state is).
func (f *FSM) WaitForIndex(ctx context.Context, after uint64) *State {
	for {
		f.mu.Lock()
		st, ch := f.state, f.changed
		f.mu.Unlock()
		if st.index > after {
			return st
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return f.State()
		}
	}
}

// Snapshot captures the current state; the writing happens in Persist.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{state: f.State()}, nil
}

// Restore replaces the state with the one in a snapshot stream.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	db, index, err := readSnapshot(rc)
	if err != nil {
		return err
	}
	f.db = db
	f.restores.Add(1)
	f.changes++
	f.publish(index)
	return nil
}

// applier carries one command's transaction. Handlers change records
// through it and mark the nodes and targets whose derived fields (node
// state, target counts) must be recomputed; finish does that once.
type applier struct {
	txn   *memdb.Txn
	index uint64 // the Raft index of the command's entry
	seq   uint64 // queueSeq of the command: its place in the log
	now   time.Time
	log   *slog.Logger
	ids   idKeys

	// writes are the command's writes, in order, so that a refused
	// command can be taken back inside a transaction that other commands
	// of its batch share.
	writes []change
	// unseen is set by a command that changes nothing a scheduling round
	// decides (see State.SchedulingChanges).
	unseen bool

	touchedNodes   map[string]bool
	touchedTargets map[string]bool
}

// dispatch runs the handler of the command.
func (a *applier) dispatch(t MsgType, req any) error {
	switch r := req.(type) {
	case *BootstrapRequest:
		a.now = r.Time
		return a.bootstrap(r)
	case *UserCreateRequest:
		a.now = r.User.CreatedAt
		return a.userCreate(r)
	case *TargetCreateRequest:
		return a.targetCreate(r)
	case *TargetUpdateRequest:
		a.now = r.Time
		return a.targetUpdate(r)
	case *TargetDeleteRequest:
		a.now = r.Time
		return a.targetDelete(r)
	case *TargetRemoveRequest:
		return a.targetRemove(r)
	case *TargetScaleRequest:
		a.now = r.Time
		return a.targetScale(r)
	case *ProvisioningResultRequest:
		a.now = r.Time
		return a.provisioningResult(r)
	case *NodeCreateRequest:
		return a.nodeCreate(r)
	case *NodeRegisterRequest:
		a.now = r.Time
		return a.nodeRegister(r)
	case *NodeDownRequest:
		a.now = r.Time
		return a.nodeDown(r)
	case *NodeRemoveRequest:
		a.now = r.Time
		return a.nodeRemove(r)
	case *RunSubmitRequest:
		return a.runSubmit(r)
	case *PlanApplyRequest:
		a.now = r.Time
		return a.planApply(r)
	case *AttemptStatusRequest:
		a.now = r.Time
		return a.attemptStatus(r)
	case *RunCancelRequest:
		a.now = r.Time
		return a.runCancel(r)
	case *LogAppendRequest:
		return a.logAppend(r)
	case *BlobPutRequest:
		return a.blobPut(r)
	case *NodeEvictRequest:
		a.now = r.Time
		return a.nodeEvict(r)
	case *CheckpointPutRequest:
		a.now = r.Time
		return a.checkpointPut(r)
	case *HostAttachRequest:
		a.now = r.Time
		return a.hostAttach(r)
	case *HostDetachRequest:
		a.now = r.Time
		return a.hostDetach(r)
	case *HostRemoveRequest:
		return a.hostRemove(r)
	case *TargetPowerRequest:
		a.now = r.Time
		return a.targetPower(r)
	case *NodeProviderRequest:
		return a.nodeProvider(r)
	default:
		if ok, err := a.dispatchCluster(req); ok {
			return err
		}
		return fmt.Errorf("raftstore: no handler for %v (%T)", t, req)
	}
}

// finish recomputes the derived fields of what the command touched, in a
// fixed order: node states first (they feed the target counts).
func (a *applier) finish() {
	for _, id := range sortedKeys(a.touchedNodes) {
		a.recomputeNode(id)
	}
	for _, name := range sortedKeys(a.touchedTargets) {
		a.recomputeTarget(name)
	}
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (a *applier) touchNode(id string) {
	if a.touchedNodes == nil {
		a.touchedNodes = make(map[string]bool)
	}
	a.touchedNodes[id] = true
}

func (a *applier) touchTarget(name string) {
	if a.touchedTargets == nil {
		a.touchedTargets = make(map[string]bool)
	}
	a.touchedTargets[name] = true
}

// touchAttempt marks every node of an attempt.
func (a *applier) touchAttempt(at *api.Attempt) {
	for _, al := range at.Allocations {
		a.touchNode(al.NodeID)
	}
}

func (a *applier) insert(table string, obj any) {
	old := a.stored(table, obj)
	if err := a.txn.Insert(table, obj); err != nil {
		panic(fmt.Errorf("raftstore: insert into %s: %w", table, err))
	}
	a.writes = append(a.writes, change{table: table, old: old, new: obj})
}

func (a *applier) remove(table string, obj any) {
	old := a.stored(table, obj)
	if err := a.txn.Delete(table, obj); err != nil {
		panic(fmt.Errorf("raftstore: delete from %s: %w", table, err))
	}
	a.writes = append(a.writes, change{table: table, old: old})
}

func (a *applier) run(id string) *api.Run      { return first[api.Run](a.txn, tableRuns, id) }
func (a *applier) node(id string) *api.Node    { return first[api.Node](a.txn, tableNodes, id) }
func (a *applier) target(n string) *api.Target { return first[api.Target](a.txn, tableTargets, n) }
func (a *applier) user(name string) *api.User  { return first[api.User](a.txn, tableUsers, name) }
func (a *applier) cred(hash string) *Credential {
	return first[Credential](a.txn, tableCredentials, hash)
}

// putRun stores r (a copy the caller owns) as changed by this command.
func (a *applier) putRun(r *api.Run) {
	r.ModifyIndex = a.index
	a.insert(tableRuns, r)
}

// putNode stores n (a copy the caller owns) and marks its target.
func (a *applier) putNode(n *api.Node) {
	n.ModifyIndex = a.index
	a.insert(tableNodes, n)
	a.touchTarget(n.Target)
}

// putTarget stores t (a copy the caller owns).
func (a *applier) putTarget(t *api.Target) {
	t.ModifyIndex = a.index
	a.insert(tableTargets, t)
}

// runsOnNode lists the runs whose live attempt holds the node, by run ID.
func (a *applier) runsOnNode(id string) []*api.Run {
	return collect[api.Run](a.txn, tableRuns, indexLive, id)
}

// checkKey refuses an ID or name that cannot be a record key.
func checkKey(field, v string) error {
	switch {
	case v == "":
		return api.Invalid(field, "is required")
	case len(v) > 256:
		return api.Invalid(field, "is longer than 256 bytes")
	case strings.IndexByte(v, 0) >= 0:
		return api.Invalid(field, "contains a NUL byte")
	}
	return nil
}
