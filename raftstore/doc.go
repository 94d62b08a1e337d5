// Package raftstore owns amld's replicated state: the hashicorp/raft wiring
// (TCP transport, a raft-boltdb log and stable store in DataDir/raft.db, a
// file snapshot store in DataDir/snapshots), the typed command log, the
// finite state machine that applies it, and the state store with its
// indexes that every reader sees.
//
// # Model
//
// Every durable fact is a command in the Raft log: a type byte (MsgType,
// never renumbered) followed by the JSON of the request type named next to
// it in commands.go. The proposer (the leader's API handlers and loops)
// chooses every ID and stamps every time before calling Store.Apply; the
// FSM never reads a clock, randomness or the disk, so every server that
// applies the same log reaches the same state.
//
// The state lives in a go-memdb database of immutable radix trees. A
// *State is a point-in-time read view of it: taking one is cheap, it never
// changes, and any number of goroutines may read it. Records returned by a
// State (api.Run, api.Node, ...) are shared with the store and must be
// treated as read-only; copy one (its Copy method) before changing it. The
// FSM follows the same rule: it copies a record, changes the copy and
// inserts the copy, so a State taken earlier keeps seeing the old record.
//
// # Group commit and batched apply
//
// Store.Apply does not call raft.Apply itself: one proposer goroutine keeps
// one log entry in flight and packs the commands that arrive meanwhile
// into the next entry (MsgBatch; propose.go, batch.go). The FSM is a
// raft.BatchingFSM: the entries raft commits together are applied in one
// memdb transaction and published as one view; each command still stands
// alone, because every write is journaled and a refused command's writes
// are rolled back before the next command (fsm_batch.go). Commands of one
// entry share its index; queueSeq gives each its place.
//
// # Errors
//
// A command the state refuses (a duplicate name, a stale attempt report, a
// cancel of a finished run) changes nothing and comes back from Store.Apply
// as the *api.Error the FSM returned, so the HTTP layer can answer it with
// its 4xx status. Errors of the log itself (not leader, shut down, timeout)
// are plain Go errors; ErrNotLeader marks the ones a follower should answer
// by forwarding to the leader.
//
// # Snapshots
//
// FSM.Snapshot captures the current read view (a pointer); Persist writes it
// as a header line and then one JSON record per line, each tagged with its
// table, ending with a trailer line. Restore rebuilds a fresh database from
// such a stream and swaps it in.
//
// # Caveats
//
// Log streams are kept per node per attempt up to api.MaxLogBytesPerStream
// and never deleted; blobs are kept until a later command removes them
// (none does yet). Both are in every snapshot.
package raftstore
