package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/amld/amld/api"
)

// jobLogsCmd is `amlctl job logs RUN [-f] [--attempt N] [--node I]`.
func (a *app) jobLogsCmd() *cobra.Command {
	var follow bool
	var attempt, node int
	cmd := &cobra.Command{
		Use:   "logs RUN",
		Short: "Print a run's output; -f follows it as it happens",
		Long: `Print the output of one node of one attempt of a run (default: node 0 of
the latest attempt). With -f, follow it until the run ends; without
--attempt, -f moves on to each new attempt when the run is requeued or
retried. With -o json, the log chunks are printed as API objects.`,
		Args: exactArgs("RUN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if attempt < 0 || node < 0 {
				return usagef("--attempt and --node must be 0 or more")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if follow {
				f := a.newFollower(c, args[0])
				f.attempt, f.node = attempt, node
				r, err := f.follow(cmd.Context())
				if err != nil {
					return a.followError(cmd.Context(), args[0], err)
				}
				fmt.Fprintln(a.stderr, finalLine(r))
				return nil
			}
			return a.printLogs(cmd.Context(), c, args[0], attempt, node)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&follow, "follow", "f", false, "follow the output until the run ends")
	fs.IntVar(&attempt, "attempt", 0, "attempt number (default: the latest)")
	fs.IntVar(&node, "node", 0, "node rank")
	return cmd
}

// printLogs prints what there is of one stream now.
func (a *app) printLogs(ctx context.Context, c *api.Client, id string, attempt, node int) error {
	r, _, err := c.GetRun(ctx, id, api.Wait{})
	if err != nil {
		return err
	}
	if r.Current() == nil {
		fmt.Fprintf(a.stderr, "Run %s has no output yet: %s\n", id, stateLine(r))
		return nil
	}
	all := &api.LogChunk{Attempt: attempt, NodeIndex: node}
	var offset int64
	for first := true; ; first = false {
		lc, err := c.Logs(ctx, id, api.LogQuery{Attempt: attempt, NodeIndex: node, Offset: offset})
		if err != nil {
			return err
		}
		data := lc.Data
		if skip := offset - lc.Offset; skip > 0 {
			data = data[min(skip, int64(len(data))):]
		}
		if first {
			all.Offset, all.Attempt, all.NodeIndex = lc.Offset, lc.Attempt, lc.NodeIndex
		}
		all.Data = append(all.Data, data...)
		all.NextOffset, all.Complete, all.Index = lc.NextOffset, lc.Complete, lc.Index
		if !a.jsonOut() {
			if _, err := a.stdout.Write(data); err != nil {
				return err
			}
		}
		if lc.Complete || len(lc.Data) == 0 || lc.NextOffset <= offset {
			break
		}
		offset = lc.NextOffset
	}
	if a.jsonOut() {
		return a.printJSON(all)
	}
	return nil
}

// waitRun follows a run to its end and exits with its exit code.
func (a *app) waitRun(ctx context.Context, c *api.Client, id string) error {
	f := a.newFollower(c, id)
	if a.jsonOut() {
		f.out = a.stderr // stdout carries the final run only
	}
	r, err := f.follow(ctx)
	if err != nil {
		return a.followError(ctx, id, err)
	}
	fmt.Fprintln(a.stderr, finalLine(r))
	if a.jsonOut() {
		if err := a.printJSON(r); err != nil {
			return err
		}
	}
	if code := exitCodeFor(r); code != 0 {
		return &exitError{code: code}
	}
	return nil
}

// followError explains how following a run ended early. An interrupt only
// stops the waiting: the run keeps going.
func (a *app) followError(ctx context.Context, id string, err error) error {
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		fmt.Fprintf(a.stderr, "\nStopped waiting; run %s keeps going. Reattach with: amlctl job logs %s -f\n", id, id)
		return &exitError{code: 130}
	}
	return fmt.Errorf("follow %s: %w", id, err)
}

// exitCodeFor maps a finished run to amlctl's exit code: Completed 0; Failed
// its exit code clamped to 1..255, or 1 without one; Canceled 130.
func exitCodeFor(r *api.Run) int {
	switch r.State {
	case api.RunCompleted:
		return 0
	case api.RunCanceled:
		return 130
	}
	code := r.ExitCode
	if code == nil {
		if at := r.Current(); at != nil {
			code = at.ExitCode
		}
	}
	if code == nil {
		return 1
	}
	return min(max(*code, 1), 255)
}

// finalLine says how a run ended, for stderr.
func finalLine(r *api.Run) string {
	s := fmt.Sprintf("Run %s %s", r.ID, r.State)
	if r.Reason != "" {
		s += ": " + r.Reason
	} else if at := r.Current(); at != nil && at.Reason != "" {
		s += ": " + at.Reason
	}
	return s
}

// stateLine says what a run is doing, in words: "Queued: waiting for ...",
// "Running on n-abc".
func stateLine(r *api.Run) string {
	if api.RunActive(r.State) {
		if at := r.LiveAttempt(); at != nil && len(at.Allocations) > 0 {
			ids := make([]string, len(at.Allocations))
			for i, al := range at.Allocations {
				ids[i] = al.NodeID
			}
			return r.State + " on " + strings.Join(ids, ", ")
		}
	}
	if r.Reason != "" {
		return r.State + ": " + r.Reason
	}
	return r.State
}

// attemptBanner announces a move to attempt at after prev ended.
func attemptBanner(prev *api.Attempt, at int) string {
	why := "requeued"
	if prev != nil && prev.ExitCode != nil && *prev.ExitCode != 0 {
		why = "retried"
	}
	if prev != nil && prev.Reason != "" {
		why += ": " + prev.Reason
	}
	return fmt.Sprintf("--- attempt %d (%s) ---", at, why)
}

// follower streams a run's output as it happens. One goroutine watches the
// run with blocking queries; the loop in follow reads the log stream with
// blocking queries and reacts to both.
type follower struct {
	c     *api.Client
	runID string
	// attempt is the attempt to follow; 0 follows the latest, moving on to
	// each new one.
	attempt int
	node    int
	out     io.Writer // the run's output
	status  io.Writer // state changes and attempt banners
	// chunkJSON prints log chunks as JSON instead of their data.
	chunkJSON bool
	wait      time.Duration // wait of one blocking query
	minPoll   time.Duration // least time between polls that bring nothing
}

// newFollower returns a follower of run id's latest attempt, node 0.
func (a *app) newFollower(c *api.Client, id string) *follower {
	return &follower{c: c, runID: id, out: a.stdout, status: a.stderr, chunkJSON: a.jsonOut(),
		wait: a.pollWait, minPoll: a.minPoll}
}

// runEvent is an answer of the run watcher.
type runEvent struct {
	run *api.Run
	err error
}

// logEvent is an answer of one log read.
type logEvent struct {
	lc      *api.LogChunk
	err     error
	elapsed time.Duration
}

// follow streams the output until the run is terminal and its stream is
// complete, and returns the final run.
func (f *follower) follow(ctx context.Context) (*api.Run, error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()

	runs := make(chan runEvent)
	wg.Go(func() { f.watchRun(ctx, runs) })

	s := &followState{f: f, logs: make(chan logEvent, 1)}
	defer s.stopFetch()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case ev := <-runs:
			if ev.err != nil {
				return nil, ev.err
			}
			if done, err := s.onRun(ctx, ev.run); done || err != nil {
				return s.run, err
			}
		case ev := <-s.logs:
			s.fetching = false
			if done, err := s.onLog(ctx, ev); done || err != nil {
				return s.run, err
			}
		}
	}
}

// watchRun sends the run each time it changes, until it is terminal.
func (f *follower) watchRun(ctx context.Context, out chan<- runEvent) {
	var idx uint64
	var failures int
	for {
		start := time.Now()
		r, next, err := f.c.GetRun(ctx, f.runID, api.Wait{Index: idx, Wait: f.wait})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if failures < maxTransientFailures && transient(err) {
				failures++
				if sleepCtx(ctx, backoff(failures)) != nil {
					return
				}
				continue
			}
			send(ctx, out, runEvent{err: err})
			return
		}
		failures = 0
		if next == 0 {
			next = r.ModifyIndex
		}
		if next <= idx && time.Since(start) < f.minPoll {
			// The head answered at once without a change: pace the polling.
			if sleepCtx(ctx, f.minPoll) != nil {
				return
			}
		}
		if idx == 0 || next > idx {
			if !send(ctx, out, runEvent{run: r}) || api.RunTerminal(r.State) {
				return
			}
		}
		idx = next
	}
}

// maxTransientFailures is how many failed calls in a row a follow rides out.
const maxTransientFailures = 8

// transient reports whether a failed call may succeed if tried again: a head
// without a leader, or no head answering.
func transient(err error) bool {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Status == http.StatusServiceUnavailable || ae.Status == http.StatusBadGateway ||
			ae.Status == http.StatusGatewayTimeout
	}
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// backoff is the pause after n failures in a row.
func backoff(n int) time.Duration {
	return min(time.Duration(n)*500*time.Millisecond, 5*time.Second)
}

// send delivers v on ch unless ctx ends first.
func send[T any](ctx context.Context, ch chan<- T, v T) bool {
	select {
	case ch <- v:
		return true
	case <-ctx.Done():
		return false
	}
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
