package raftstore

import (
	"errors"
	"fmt"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
)

// ApplyBatch applies committed entries in order (each a command or a batch
// of them, see batch.go), all in one memdb transaction, and publishes the state once at the end. Raft hands the FSM
// the entries it committed together (up to MaxAppendEntries), so a burst
// of submits costs one transaction and one published view, not one each:
// the radix-tree nodes that successive inserts share are copied once.
//
// Each command still succeeds or fails on its own: a refused command (or
// one whose handler panicked) has its writes taken back before the next
// entry, so the state after every entry is the same however the entries
// were batched, on the leader and on every follower. Entries that are not
// commands get a nil response.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	txn := f.db.Txn(true)
	defer txn.Abort() // a no-op after Commit
	var last uint64
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		out[i] = f.applyData(txn, l.Index, l.Data)
		last = l.Index
	}
	if last == 0 {
		return out
	}
	txn.Commit()
	f.publish(last)
	return out
}

// applyData applies the data of the command entry at index: one command
// (the response is nil or its error) or a batch of them (the response is
// a []error, one per command, or an error when the batch is malformed).
func (f *FSM) applyData(txn *memdb.Txn, index uint64, data []byte) any {
	if len(data) == 0 || MsgType(data[0]) != MsgBatch {
		if err := f.applyCommand(txn, index, 0, data); err != nil {
			f.warnUnknown(index, err)
			return err
		}
		return nil
	}
	cmds, err := decodeBatch(data)
	if err != nil {
		return err
	}
	errs := make([]error, len(cmds))
	for i, c := range cmds {
		errs[i] = f.applyCommand(txn, index, i, c)
		f.warnUnknown(index, errs[i])
	}
	return errs
}

// warnUnknown logs, loudly, a command this build cannot read: the head that
// wrote it runs a newer build, and this head's state now differs from
// theirs until it is upgraded and catches up again.
func (f *FSM) warnUnknown(index uint64, err error) {
	if errors.Is(err, ErrUnknownCommand) {
		f.logger.Error("raftstore: a log entry has a command this build does not know; upgrade this head (its state no longer matches the others')",
			"index", index, "err", err)
	}
}

// applyCommand decodes and applies one command, the one at place in the
// entry at index, inside txn. On an error it leaves txn as it found it. A
// panic of a handler (a bug) becomes an error response, so one bad entry
// cannot crash every server of the cluster in turn.
func (f *FSM) applyCommand(txn *memdb.Txn, index uint64, place int, data []byte) (err error) {
	a := &applier{txn: txn, index: index, seq: queueSeq(index, place), log: f.logger, ids: f.ids}
	defer func() {
		if r := recover(); r != nil {
			a.rollback()
			err = fmt.Errorf("raftstore: apply entry %d: internal error: %v", index, r)
			f.logger.Error("raftstore: apply panicked", "index", index, "panic", r)
		}
	}()
	if err := a.apply(data); err != nil {
		return err
	}
	if !a.unseen {
		f.changes++
	}
	return nil
}

// apply decodes and applies one command; when the state refuses it, it
// takes back whatever the handler wrote.
func (a *applier) apply(data []byte) error {
	t, req, err := DecodeCommand(data)
	if err != nil {
		return err
	}
	if err := a.dispatch(t, req); err != nil {
		a.rollback()
		return err
	}
	a.finish()
	return nil
}

// change is one write of a command: the record a table held under the
// written object's ID before (nil if none) and the object written (nil
// for a delete).
type change struct {
	table    string
	old, new any
}

// rollback takes back the command's writes, newest first.
func (a *applier) rollback() {
	for i := len(a.writes) - 1; i >= 0; i-- {
		c := a.writes[i]
		var err error
		if c.old != nil {
			err = a.txn.Insert(c.table, c.old)
		} else {
			err = a.txn.Delete(c.table, c.new)
		}
		if err != nil {
			// Only a schema error (a bug) gets here: the same writes
			// just succeeded.
			panic(fmt.Errorf("raftstore: roll back %s: %w", c.table, err))
		}
	}
	a.writes = nil
}

// stored returns the record table holds under obj's ID, or nil.
func (a *applier) stored(table string, obj any) any {
	raw, err := a.txn.First(table, indexID, a.ids[table](obj)...)
	if err != nil {
		panic(err) // a schema error: a bug
	}
	return raw
}

// idKeys maps each table to the function that gives an object's ID key.
type idKeys map[string]func(obj any) []any

func newIDKeys(s *memdb.DBSchema) idKeys {
	ids := make(idKeys, len(s.Tables))
	for name, t := range s.Tables {
		ids[name] = t.Indexes[indexID].Indexer.(*keyIndexer).key
	}
	return ids
}
