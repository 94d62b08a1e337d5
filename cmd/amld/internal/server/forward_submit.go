package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/internal/waits"
	"github.com/amld/amld/raftstore"
)

// Forwarded submits. A follower serves POST /v1/runs itself: it
// authenticates the caller, checks the spec against its own state and makes
// the RunSubmit command as the leader would, then sends only the command to
// the leader, together with every other submit waiting at that moment:
// forwardLoop packs them into one sealed peer "apply" call (at most
// maxForwardsInFlight calls open at once), and the leader proposes each as
// if its own handler had made it. The follower answers once its own state
// has the run (or, after catchUpWait, with the run as it sent it). So the
// leader spends a share of one call on a forwarded submit instead of a
// whole TLS request, and the rest of the work stays on the follower.
//
// What the follower cannot settle from its own state goes to the leader
// whole, proxied as before, and the leader's answer is the one given: an
// unknown token, target or source (the follower may not have it yet), any
// spec it refuses, a leader that does not take forwarded commands (an older
// build: raftstore.LogVersion below forwardVersion). An error the leader
// gave for the command itself, or a call the leader did not answer, is
// answered as it is and never retried elsewhere, because the command may
// have been applied; submits carry an idempotency key (amlctl makes one),
// so the client's retry finds the run if it was.
const (
	forwardPath = peerPath + "apply"
	// forwardVersion is the raftstore.LogVersion from which a leader takes
	// forwarded submits.
	forwardVersion = 3
	// maxForwardsInFlight bounds the apply calls a follower has open. One
	// and two did alike with clients spread over three heads; eight made
	// smaller batches and cost a fifth of the rate.
	maxForwardsInFlight = 2
	// maxForwardBatch bounds the commands of one call; maxForwardBytes
	// stops a call from taking more once its commands add up to this much.
	maxForwardBatch = 256
	maxForwardBytes = maxJSONBody
	// maxForwardBody bounds a sealed call: maxForwardBytes and one more
	// command of up to about maxJSONBody, in base64.
	maxForwardBody = 4 * maxJSONBody
	// forwardTimeout bounds one apply call.
	forwardTimeout = 10 * time.Second
)

// errNotLeaderHere answers an apply call that reached a head that does not
// lead: nothing was applied, so the follower may send it elsewhere.
var errNotLeaderHere = &api.Error{Status: http.StatusMisdirectedRequest, Code: api.CodeUnavailable,
	Message: "this head is not the leader"}

// forwardRequest is a sealed apply call: encoded RunSubmit commands.
type forwardRequest struct {
	Commands [][]byte `json:"commands"`
}

// forwardResponse answers each command of a call, in order.
type forwardResponse struct {
	Results []forwardResult `json:"results"`
}

// forwardResult is the leader's answer to one command: the index it was
// applied at, or its error and the index of the leader's state then (for
// the follower to catch up with before it reads).
type forwardResult struct {
	Index uint64     `json:"index"`
	Error *api.Error `json:"error,omitempty"`
}

// forwardCall is one submit waiting for forwardLoop.
type forwardCall struct {
	data []byte             // the encoded RunSubmit command
	done chan forwardResult // buffered: the loop never blocks on it
}

// leaderAnswer is an error the leader gave for a forwarded command (or the
// lack of one): it is answered as it is, never proxied.
type leaderAnswer struct{ err error }

func (e leaderAnswer) Error() string { return e.err.Error() }
func (e leaderAnswer) Unwrap() error { return e.err }

// leaderFallback marks a submit a follower serves itself; body is the
// request's body, kept for proxying it to the leader after all.
type leaderFallback struct{ body []byte }

type fallbackKey struct{}

func fallbackOf(ctx context.Context) *leaderFallback {
	fb, _ := ctx.Value(fallbackKey{}).(*leaderFallback)
	return fb
}

// servesSubmit reports whether this follower serves r itself: a submit,
// while the leader takes forwarded commands.
func (s *Server) servesSubmit(r *http.Request) bool {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/runs" {
		return false
	}
	_, id := s.store.Leader()
	h := s.store.State().Head(id)
	return h != nil && h.LogVersion >= forwardVersion
}

// serveSubmitHere runs the submit handler on this follower, keeping the
// body for leaderDecides.
func (s *Server) serveSubmitHere(w http.ResponseWriter, r *http.Request, next http.Handler) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxJSONBody))
	if err != nil {
		s.writeError(w, r, bodyError(err))
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), fallbackKey{}, &leaderFallback{body: body}))
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err := s.waitMinIndex(r); err != nil {
		s.writeError(w, r, err) // the leader decides
		return
	}
	next.ServeHTTP(w, r)
}

// leaderDecides proxies a submit this follower serves itself to the leader,
// whole, when it failed here for a reason of the follower's (not an answer
// of the leader's); it reports whether it did.
func (s *Server) leaderDecides(w http.ResponseWriter, r *http.Request, err error) bool {
	fb := fallbackOf(r.Context())
	var la leaderAnswer
	if fb == nil || errors.As(err, &la) {
		return false
	}
	r = r.WithContext(context.WithValue(r.Context(), fallbackKey{}, (*leaderFallback)(nil)))
	r.Body = io.NopCloser(bytes.NewReader(fb.body))
	s.proxyToLeader(w, r)
	return true
}

// applySubmit proposes a submit: through this head's store, or, for a
// submit a follower serves itself, forwarded to the leader. The index is
// where the run was applied or, with an error of the leader's, where the
// leader's state was then.
func (s *Server) applySubmit(ctx context.Context, sub *raftstore.RunSubmitRequest) (uint64, error) {
	if fallbackOf(ctx) == nil {
		return s.apply(ctx, raftstore.MsgRunSubmit, sub)
	}
	if s.store.IsLeader() { // elected since the request came
		idx, err := s.apply(ctx, raftstore.MsgRunSubmit, sub)
		if err != nil {
			err = leaderAnswer{err} // it may have been applied
		}
		return idx, err
	}
	data, err := raftstore.EncodeCommand(raftstore.MsgRunSubmit, sub)
	if err != nil {
		return 0, err
	}
	c := &forwardCall{data: data, done: make(chan forwardResult, 1)}
	select {
	case s.forwards <- c:
	case <-ctx.Done():
		return 0, ctx.Err() // not sent: the leader may still decide
	}
	select {
	case r := <-c.done:
		if r.Error != nil {
			return r.Index, leaderAnswer{r.Error}
		}
		return r.Index, nil
	case <-ctx.Done():
		return 0, leaderAnswer{ctx.Err()}
	}
}

// catchUpTo waits, within catchUpWait, for this head's state to reach
// index (a write the leader applied), so that it reads its own writes.
func (s *Server) catchUpTo(ctx context.Context, index uint64) {
	if index == 0 || s.store.State().Index() >= index {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, catchUpWait)
	defer cancel()
	s.store.WaitForIndex(ctx, index-1)
}

// forwardLoop sends the submits this head forwards, batched, until ctx
// ends; it returns once its calls have.
func (s *Server) forwardLoop(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, maxForwardsInFlight)
	for {
		var first *forwardCall
		select {
		case first = <-s.forwards:
		case <-ctx.Done():
			return
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			first.done <- forwardResult{Error: api.Unavailable("this head is shutting down; retry")}
			return
		}
		batch, size := []*forwardCall{first}, len(first.data)
	gather:
		for len(batch) < maxForwardBatch && size < maxForwardBytes {
			select {
			case c := <-s.forwards:
				batch = append(batch, c)
				size += len(c.data)
			default:
				break gather
			}
		}
		wg.Go(func() {
			defer func() { <-slots }()
			for i, r := range s.sendForwards(ctx, batch) {
				batch[i].done <- r
			}
		})
	}
}

// sendForwards has the leader apply the batch: it waits, within
// leaderWait, for a leader to be known, and tries the next one when a
// leader cannot be reached or no longer leads (nothing was applied then).
// Should this head lead by then, it applies the batch itself.
func (s *Server) sendForwards(ctx context.Context, batch []*forwardCall) []forwardResult {
	cmds := make([][]byte, len(batch))
	for i, c := range batch {
		cmds[i] = c.data
	}
	all := func(ae *api.Error) []forwardResult {
		out := make([]forwardResult, len(batch))
		for i := range out {
			out[i].Error = ae
		}
		return out
	}
	deadline := time.Now().Add(leaderWait)
	failed := ""
	for {
		if s.store.IsLeader() {
			return s.applyForwarded(ctx, cmds)
		}
		leader := s.leaderAPI()
		if leader == "" || leader == failed {
			if time.Now().After(deadline) || !waits.Sleep(ctx, 25*time.Millisecond) {
				return all(api.Unavailable("no leader is known to this head; retry"))
			}
			continue
		}
		out, retry, err := s.callForward(ctx, leader, cmds)
		switch {
		case err == nil && len(out) == len(batch):
			return out
		case err == nil:
			err = fmt.Errorf("%d answers for %d commands", len(out), len(batch))
		case retry && time.Now().Before(deadline):
			failed = leader
			continue
		}
		if ctx.Err() == nil {
			s.log.Warn("forward submits to the leader failed", "leader", leader, "submits", len(batch), "err", err)
		}
		return all(api.Unavailable("the leader did not answer; retry"))
	}
}

// callForward makes one apply call to leader. retry reports a call that
// applied nothing: the leader could not be dialed, or does not lead.
func (s *Server) callForward(ctx context.Context, leader string, cmds [][]byte) (out []forwardResult, retry bool, err error) {
	body, err := s.cluster.seal(forwardRequest{Commands: cmds})
	if err != nil {
		return nil, false, err
	}
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, s.peerURL(leader)+forwardPath, bytes.NewReader(body))
	if err != nil {
		return nil, false, err
	}
	hr.Header.Set("Content-Type", "application/octet-stream")
	resp, err := s.cluster.headClient().Do(hr)
	if err != nil {
		var op *net.OpError
		return nil, errors.As(err, &op) && op.Op == "dial", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONBody))
	if err != nil {
		return nil, false, err
	}
	if resp.StatusCode != http.StatusOK {
		var env api.ErrorEnvelope
		if json.Unmarshal(b, &env) == nil && env.Error != nil {
			return nil, resp.StatusCode == errNotLeaderHere.Status, env.Error
		}
		return nil, false, fmt.Errorf("apply: %s", resp.Status)
	}
	var fr forwardResponse
	if err := s.cluster.unseal(b, &fr); err != nil {
		return nil, false, err
	}
	return fr.Results, false, nil
}

// handlePeerApply (leader) applies the submits a follower forwards.
func (s *Server) handlePeerApply(ctx context.Context, b []byte) (any, error) {
	var req forwardRequest
	if err := s.cluster.unseal(b, &req); err != nil {
		return nil, err
	}
	if !s.storeIsOpen() || !s.store.IsLeader() {
		return nil, errNotLeaderHere
	}
	if n := len(req.Commands); n == 0 || n > maxForwardBatch {
		return nil, api.Invalid("commands", "must hold 1..%d commands, got %d", maxForwardBatch, n)
	}
	return forwardResponse{Results: s.applyForwarded(ctx, req.Commands)}, nil
}

// applyForwarded proposes forwarded RunSubmit commands, all at once (so
// that they share log entries), each starting its run with the wait reason
// the leader's last round gives runs like it, as the leader's own submits
// do; any other command is refused.
func (s *Server) applyForwarded(ctx context.Context, cmds [][]byte) []forwardResult {
	out := make([]forwardResult, len(cmds))
	var wg sync.WaitGroup
	for i, data := range cmds {
		t, v, err := raftstore.DecodeCommand(data)
		sub, ok := v.(*raftstore.RunSubmitRequest)
		if err != nil || t != raftstore.MsgRunSubmit || !ok || sub.Run == nil {
			out[i].Error = api.Invalid("commands", "command %d is not a run submit: only submits are forwarded", i+1)
			continue
		}
		if s.logVersion.Load() >= 2 {
			sub.Reason = s.hints.Load().Reason(sub.Run)
		}
		wg.Go(func() {
			idx, err := s.store.Apply(ctx, raftstore.MsgRunSubmit, sub)
			if err == nil {
				out[i].Index = idx
				return
			}
			ae, internal := apiErrorOf(err)
			if internal {
				s.log.Error("forwarded submit failed", "run", sub.Run.ID, "err", err)
			}
			out[i] = forwardResult{Index: s.store.State().Index(), Error: ae}
		})
	}
	wg.Wait()
	return out
}
