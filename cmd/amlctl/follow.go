package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/amld/amld/api"
)

// followState is the state of one follow, owned by follow's loop.
type followState struct {
	f   *follower
	run *api.Run // the latest run seen; nil before the first
	// lastStatus is the last state line printed.
	lastStatus string

	// The stream being read.
	attempt  int // attempt number; 0 before the first
	offset   int64
	index    uint64
	complete bool

	// At most one log read is in flight; its answer comes on logs (cap 1,
	// so the reader never blocks).
	fetching    bool
	cancelFetch context.CancelFunc
	logs        chan logEvent
	wg          sync.WaitGroup
	failures    int
}

// terminal reports whether the run seen last is over.
func (s *followState) terminal() bool { return s.run != nil && api.RunTerminal(s.run.State) }

// onRun handles a new version of the run; done ends the follow.
func (s *followState) onRun(ctx context.Context, r *api.Run) (done bool, err error) {
	s.run = r
	if line := stateLine(r); !api.RunTerminal(r.State) && line != s.lastStatus {
		fmt.Fprintln(s.f.status, line)
		s.lastStatus = line
	}
	cur := r.Current()
	if s.attempt == 0 {
		switch {
		case s.f.attempt > 0 && cur != nil && cur.Number >= s.f.attempt:
			s.attempt = s.f.attempt
		case s.f.attempt > 0 && s.terminal():
			return true, fmt.Errorf("run %s has no attempt %d", r.ID, s.f.attempt)
		case s.f.attempt == 0 && cur != nil:
			s.attempt = cur.Number
		case s.terminal():
			return true, nil // ended before any attempt: no output
		default:
			return false, nil // not started yet
		}
		s.startFetch(ctx, 0)
		return false, nil
	}
	if s.f.attempt == 0 && cur != nil && cur.Number > s.attempt {
		return false, s.advance(ctx)
	}
	if s.terminal() {
		if s.complete {
			return true, nil
		}
		if s.fetching {
			// Read what is left without waiting.
			s.stopFetch()
			s.startFetch(ctx, 0)
		}
	}
	return false, nil
}

// onLog handles the answer of a log read; done ends the follow.
func (s *followState) onLog(ctx context.Context, ev logEvent) (done bool, err error) {
	if ev.err != nil {
		switch {
		case ctx.Err() != nil:
			return true, ctx.Err()
		case api.IsNotFound(ev.err):
			// No output of this attempt yet.
			if s.terminal() {
				return true, nil
			}
			s.startFetch(ctx, s.f.minPoll)
			return false, nil
		case transient(ev.err) && s.failures < maxTransientFailures:
			s.failures++
			s.startFetch(ctx, backoff(s.failures))
			return false, nil
		}
		return true, ev.err
	}
	s.failures = 0
	prevIndex := s.index
	data, err := s.emit(ev.lc)
	if err != nil {
		return true, err
	}
	if ev.lc.Complete {
		s.complete = true
		if s.f.attempt > 0 {
			return true, nil
		}
		if cur := s.run.Current(); cur != nil && cur.Number > s.attempt {
			return false, s.advance(ctx)
		}
		return s.terminal(), nil // else wait for the run to move on
	}
	if s.terminal() && len(data) == 0 {
		return true, nil
	}
	var delay time.Duration
	if len(data) == 0 && ev.elapsed < s.f.minPoll && s.index <= prevIndex {
		delay = s.f.minPoll // the head answered at once with nothing: pace
	}
	s.startFetch(ctx, delay)
	return false, nil
}

// advance drains the stream being read and moves on to the next attempt,
// attempt by attempt up to the run's latest, announcing each on status.
func (s *followState) advance(ctx context.Context) error {
	s.stopFetch()
	latest := s.run.Current().Number
	for s.attempt < latest {
		if err := s.drain(ctx); err != nil {
			return err
		}
		var prev *api.Attempt
		for i := range s.run.Attempts {
			if s.run.Attempts[i].Number == s.attempt {
				prev = &s.run.Attempts[i]
			}
		}
		s.attempt++
		s.offset, s.index, s.complete = 0, 0, false
		fmt.Fprintln(s.f.status, attemptBanner(prev, s.attempt))
	}
	s.startFetch(ctx, 0)
	return nil
}

// drain reads what is left of the stream being read, without waiting.
func (s *followState) drain(ctx context.Context) error {
	if s.complete {
		return nil
	}
	for {
		lc, err := s.f.c.Logs(ctx, s.f.runID, api.LogQuery{Attempt: s.attempt, NodeIndex: s.f.node, Offset: s.offset})
		if api.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		data, err := s.emit(lc)
		if err != nil || lc.Complete || len(data) == 0 {
			return err
		}
	}
}

// emit prints the part of lc past the offset read so far and moves the
// offset on; it returns that part.
func (s *followState) emit(lc *api.LogChunk) ([]byte, error) {
	data := lc.Data
	if skip := s.offset - lc.Offset; skip > 0 {
		data = data[min(skip, int64(len(data))):]
	}
	next := max(lc.NextOffset, lc.Offset+int64(len(lc.Data)))
	s.offset = max(s.offset, next)
	s.index = lc.Index
	if s.f.chunkJSON {
		if len(data) == 0 && !lc.Complete {
			return data, nil
		}
		return data, writeJSON(s.f.out, lc)
	}
	_, err := s.f.out.Write(data)
	return data, err
}

// startFetch starts one log read after delay: a blocking one while the run
// goes on, a plain one once it is over.
func (s *followState) startFetch(ctx context.Context, delay time.Duration) {
	fctx, cancel := context.WithCancel(ctx)
	s.cancelFetch, s.fetching = cancel, true
	q := api.LogQuery{Attempt: s.attempt, NodeIndex: s.f.node, Offset: s.offset}
	if !s.terminal() {
		q.Wait = api.Wait{Index: s.index, Wait: s.f.wait}
	}
	s.wg.Go(func() {
		defer cancel()
		if delay > 0 {
			if err := sleepCtx(fctx, delay); err != nil {
				s.logs <- logEvent{err: err}
				return
			}
		}
		start := time.Now()
		lc, err := s.f.c.Logs(fctx, s.f.runID, q)
		s.logs <- logEvent{lc: lc, err: err, elapsed: time.Since(start)}
	})
}

// stopFetch cancels the log read in flight, if any, and waits for it.
func (s *followState) stopFetch() {
	if s.fetching {
		s.cancelFetch()
		<-s.logs
		s.fetching = false
	}
	s.wg.Wait()
}
