package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/internal/waits"
)

// Forwarding: any head answers any request. Writes (every method but GET
// and HEAD), consistent reads (?consistent=true) and snapshots are served
// by the leader: a follower proxies them to it, marked with
// forwardedHeader so that they are never forwarded twice. Other reads are
// served from this head's state.
const (
	forwardedHeader = "X-Amld-Forwarded-By"
	// leaderWait bounds how long a follower waits for a leader to be
	// elected before it answers 503.
	leaderWait = 5 * time.Second
	// catchUpWait bounds how long a follower waits, after a forwarded
	// write, to apply it itself (so the caller reads its own write here).
	catchUpWait = 2 * time.Second
)

// localPaths are served by the head that gets them, whatever its role.
var localPaths = map[string]bool{
	"/v1/status":        true,
	peerPath + "hello":  true,
	peerPath + "invite": true,
	forwardPath:         true, // answered by the leader only, never proxied
}

func (s *Server) forwarding(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local := localPaths[r.URL.Path]
		if !s.storeIsOpen() {
			switch {
			case r.URL.Path == "/v1/status":
				writeJSON(w, http.StatusOK, 0, api.Status{ID: s.cfg.ID, HeadStatus: api.HeadStatus{State: "Joining"}})
			case local:
				next.ServeHTTP(w, r)
			default:
				s.writeError(w, r, api.Unavailable("this head is joining its cluster; retry"))
			}
			return
		}
		consistent := r.URL.Query().Get("consistent") == "true"
		leaderOnly := (r.Method != http.MethodGet && r.Method != http.MethodHead) || consistent ||
			r.URL.Path == "/v1/operator/snapshot"
		if local || !leaderOnly {
			if err := s.waitMinIndex(r); err != nil {
				s.writeError(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if r.Header.Get(forwardedHeader) != "" || s.store.IsLeader() {
			if consistent {
				ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
				err := s.store.Barrier(ctx)
				cancel()
				if err != nil {
					s.writeError(w, r, err)
					return
				}
			}
			next.ServeHTTP(w, r)
			return
		}
		if s.servesSubmit(r) {
			s.serveSubmitHere(w, r, next)
			return
		}
		s.proxyToLeader(w, r)
	})
}

// minIndexWait bounds how long a head behind a client's min index waits
// to catch up before answering 503 (the client then tries another head).
const minIndexWait = 3 * time.Second

// waitMinIndex holds a read until this head's state has reached the index
// the client says it has seen (api.MinIndexHeader).
func (s *Server) waitMinIndex(r *http.Request) error {
	v := r.Header.Get(api.MinIndexHeader)
	if v == "" {
		return nil
	}
	want, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return api.Invalid(api.MinIndexHeader, "must be a non-negative integer, got %q", v)
	}
	if s.store.State().Index() >= want {
		return nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), minIndexWait)
	defer cancel()
	if s.store.WaitForIndex(ctx, want-1).Index() < want {
		return api.Unavailable("this head has not caught up with index %d yet; retry", want)
	}
	return nil
}

// proxyToLeader forwards r to the leader, waiting a moment for one to be
// elected when none is known. When the leader cannot be dialed (it just
// died; the request never reached it) it waits for the next leader and
// tries again, within leaderWait.
func (s *Server) proxyToLeader(w http.ResponseWriter, r *http.Request) {
	deadline := time.Now().Add(leaderWait)
	var body []byte
	if r.Body != nil && r.ContentLength >= 0 && r.ContentLength <= maxJSONBody {
		b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxJSONBody))
		if err != nil {
			s.writeError(w, r, api.Invalid("body", "could not read the request: %v", err))
			return
		}
		body = b
	}
	failed := ""
	for {
		leader := ""
		for {
			if s.store.IsLeader() { // became leader while waiting
				if body != nil {
					r.Body = io.NopCloser(bytes.NewReader(body))
				}
				r.Header.Set(forwardedHeader, s.cfg.ID)
				s.forwarding(s.mux).ServeHTTP(w, r)
				return
			}
			if leader = s.leaderAPI(); leader != "" && leader != failed {
				break
			}
			if time.Now().After(deadline) || !waits.Sleep(r.Context(), 25*time.Millisecond) {
				s.writeError(w, r, api.Unavailable("no leader is known to this head; retry"))
				return
			}
		}
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		if !s.proxyOnce(w, r, leader, body != nil && time.Now().Before(deadline)) {
			return
		}
		failed = leader
	}
}

// proxyOnce forwards r to leader. It reports true, having written
// nothing, when retry is allowed and the leader could not be dialed.
func (s *Server) proxyOnce(w http.ResponseWriter, r *http.Request, leader string, retry bool) (dialFailed bool) {
	target, err := url.Parse(leader)
	if err != nil {
		s.writeError(w, r, err)
		return false
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = target.Host
			pr.Out.Header.Set(forwardedHeader, s.cfg.ID)
		},
		Transport:     s.cluster.headClient().Transport,
		FlushInterval: -1,
		ModifyResponse: func(resp *http.Response) error {
			idx, _ := strconv.ParseUint(resp.Header.Get(api.IndexHeader), 10, 64)
			s.catchUpTo(r.Context(), idx)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			var op *net.OpError
			if retry && errors.As(err, &op) && op.Op == "dial" {
				dialFailed = true
				return
			}
			s.log.Warn("forward to the leader failed", "leader", leader, "path", r.URL.Path, "err", err)
			s.writeError(w, r, api.Unavailable("the leader did not answer; retry"))
		},
	}
	rp.ServeHTTP(w, r)
	return dialFailed
}
