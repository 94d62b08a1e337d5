package raftstore

import (
	"context"
	"fmt"
)

// Group commit. Store.Apply hands its command to one proposer goroutine,
// which puts every command waiting at that moment into one log entry (a
// batch, see batch.go) and keeps at most maxEntriesInFlight entries
// between raft.Apply and their application. While those are on their way
// through the leader's disk, the followers' disks and the FSM, new
// commands queue here and leave together in the next entry; so a burst of
// 64 submits costs a few log entries, fsyncs and RPCs instead of 64 of
// each, and a command proposed alone is sent at once. Until the leader
// calls SetBatching(true) (every head applies batch entries), each command
// is proposed at once as an entry of its own.

// maxEntriesInFlight bounds the entries proposed and not yet applied. One
// gave the most commits per second, alone and with three servers, on the
// 2-core development machine: commands wait for the entry before them and
// leave together, where with 2, 4 or 8 in flight the entries are smaller
// and the fixed cost of each (fsyncs, RPCs) dominates.
const maxEntriesInFlight = 1

// maxBatchBytes stops an entry from taking more commands once they add up
// to this much (a command larger than this still goes, alone).
const maxBatchBytes = 1 << 20

// proposal is one command waiting for the proposer.
type proposal struct {
	ctx  context.Context
	t    MsgType
	data []byte
	done chan proposalResult // buffered: the proposer never blocks on it
}

type proposalResult struct {
	index uint64
	err   error
}

// propose runs until the store stops: it takes the commands of Apply in
// order and proposes them, batched within the in-flight bound, or each on
// its own at once while batching is off.
func (s *Store) propose() {
	defer s.wg.Done()
	slots := make(chan struct{}, maxEntriesInFlight)
	for {
		var first *proposal
		select {
		case first = <-s.proposals:
		case <-s.stop:
			return
		}
		if !s.batching.Load() {
			s.commitAsync([]*proposal{first}, nil)
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-s.stop:
			first.done <- proposalResult{err: ErrClosed}
			return
		}
		batch, size := []*proposal{first}, len(first.data)
	gather:
		for len(batch) < maxBatchCommands && size < maxBatchBytes {
			select {
			case p := <-s.proposals:
				batch = append(batch, p)
				size += len(p.data)
			default:
				break gather
			}
		}
		s.commitAsync(batch, slots)
	}
}

// commitAsync commits batch on a goroutine of its own and then frees its
// slot (when it holds one).
func (s *Store) commitAsync(batch []*proposal, slots chan struct{}) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if slots != nil {
			defer func() { <-slots }()
		}
		s.commit(batch)
	}()
}

// SetBatching turns batch entries on or off (off when the store opens).
// Only the leader proposes; it turns them on once every head applies them
// (see LogVersion). While off, every command is proposed at once as an
// entry of its own, and raft pipelines them.
func (s *Store) SetBatching(on bool) { s.batching.Store(on) }

// Batching reports whether batch entries are on.
func (s *Store) Batching() bool { return s.batching.Load() }

// commit proposes the batch as one entry (a lone command as itself) and
// hands every command its own result: the entry's index and the FSM's
// answer to that command, or the log's error. Commands whose caller gave
// up before the entry was made are left out.
func (s *Store) commit(batch []*proposal) {
	live := batch[:0]
	for _, p := range batch {
		if err := p.ctx.Err(); err != nil {
			p.done <- proposalResult{err: err}
			continue
		}
		live = append(live, p)
	}
	if len(live) == 0 {
		return
	}
	data := live[0].data
	if len(live) > 1 {
		cmds := make([][]byte, len(live))
		for i, p := range live {
			cmds[i] = p.data
		}
		data = encodeBatch(cmds)
	}
	f := s.raft.Apply(data, defaultApplyTimeout)
	if err := classify(f.Error()); err != nil {
		for _, p := range live {
			p.done <- proposalResult{err: fmt.Errorf("raftstore: apply %v: %w", p.t, err)}
		}
		return
	}
	index := f.Index()
	resp := f.Response()
	for i, p := range live {
		r := proposalResult{index: index}
		switch v := resp.(type) {
		case []error:
			if len(v) == len(live) {
				r.err = v[i]
			} else {
				r.err = fmt.Errorf("raftstore: apply %v: %d answers for %d commands", p.t, len(v), len(live))
			}
		case error:
			r.err = v
		}
		p.done <- r
	}
}
