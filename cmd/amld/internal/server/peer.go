package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/cmd/amld/internal/pki"
	"github.com/amld/amld/raftstore"
)

// The peer protocol: how heads find each other, join and register before
// (and beside) certificates. Every body, both ways, is sealed with the
// cluster key (pki.PurposePeer) and stamped with the sender's time; a
// message older than peerSkew is refused, so a recorded one cannot be
// replayed later. Errors are plain JSON errors (they hold no secret).
const (
	peerPath = "/v1/cluster/peer/"
	peerSkew = 2 * time.Minute
)

// peerEnvelope is what is sealed.
type peerEnvelope struct {
	Time time.Time       `json:"time"`
	Body json.RawMessage `json:"body"`
}

// headInfo describes a head in the peer protocol.
type headInfo struct {
	ID       string `json:"id"`
	APIAddr  string `json:"api_addr"`
	RaftAddr string `json:"raft_addr"`
	// Member: the head belongs to a cluster (has state).
	Member bool `json:"member,omitempty"`
	// LogVersion is the newest log format the head applies
	// (raftstore.LogVersion; 0 from older builds).
	LogVersion int `json:"log_version,omitempty"`
}

// joinRequest asks the leader for a head certificate.
type joinRequest struct {
	Head      headInfo `json:"head"`
	PublicKey []byte   `json:"public_key"`
	Hosts     []string `json:"hosts"`
}

// joinResponse carries the CA and the new head's certificate.
type joinResponse struct {
	CACertPEM string `json:"ca_cert_pem"`
	CertPEM   string `json:"cert_pem"`
}

// addRequest asks the leader to make the head a voter (Join) or only to
// record its addresses (an existing member).
type addRequest struct {
	Head headInfo `json:"head"`
	Join bool     `json:"join"`
}

// inviteRequest tells a head waiting to join where the cluster is.
type inviteRequest struct {
	Join []string `json:"join"`
}

func (c *clusterState) seal(v any) ([]byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	env, err := json.Marshal(peerEnvelope{Time: time.Now().UTC(), Body: body})
	if err != nil {
		return nil, err
	}
	return c.key.Seal(pki.PurposePeer, env), nil
}

func (c *clusterState) unseal(b []byte, v any) error {
	plain, err := c.key.Open(pki.PurposePeer, b)
	if err != nil {
		return api.Unauthorized("peer message does not open with this cluster's key (is --cluster-key-file the same on every head?)")
	}
	var env peerEnvelope
	if err := json.Unmarshal(plain, &env); err != nil {
		return api.Invalid("body", "malformed peer message")
	}
	if d := time.Since(env.Time); d > peerSkew || d < -peerSkew {
		return api.Unauthorized("peer message is stamped %s, more than %s from this head's clock: keep the heads' clocks in sync (NTP)", env.Time.Format(time.RFC3339), peerSkew)
	}
	if err := json.Unmarshal(env.Body, v); err != nil {
		return api.Invalid("body", "malformed peer message: %v", err)
	}
	return nil
}

// peerURL makes an API base URL of a peer address.
func (s *Server) peerURL(addr string) string {
	addr = strings.TrimRight(strings.TrimSpace(addr), "/")
	if strings.Contains(addr, "://") {
		return addr
	}
	if s.cfg.Cluster.InsecureDev {
		return "http://" + addr
	}
	return "https://" + addr
}

// peerCall sends a sealed request to a peer and opens its sealed answer.
func (s *Server) peerCall(ctx context.Context, addr, op string, req, resp any) error {
	body, err := s.cluster.seal(req)
	if err != nil {
		return err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, s.peerURL(addr)+peerPath+op, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/octet-stream")
	r, err := s.cluster.bootHTTP.Do(hr)
	if err != nil {
		return err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody))
	if err != nil {
		return err
	}
	if r.StatusCode != http.StatusOK {
		var env api.ErrorEnvelope
		if json.Unmarshal(b, &env) == nil && env.Error != nil {
			env.Error.Status = r.StatusCode
			return env.Error
		}
		return fmt.Errorf("%s: %s", op, r.Status)
	}
	return s.cluster.unseal(b, resp)
}

// peerHandler serves one sealed operation of at most limit bytes.
func (s *Server) peerHandler(limit int64, fn func(ctx context.Context, body []byte) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
		if err != nil {
			s.writeError(w, r, api.TooLarge("peer message too large"))
			return
		}
		out, err := fn(r.Context(), b)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		sealed, err := s.cluster.seal(out)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(sealed)
	}
}

// selfInfo describes this head.
func (s *Server) selfInfo() headInfo {
	h := headInfo{ID: s.cfg.ID, APIAddr: s.URL(), RaftAddr: s.cluster.raftAdvertise, Member: s.cluster.role() != "",
		LogVersion: raftstore.LogVersion}
	if s.storeIsOpen() {
		h.RaftAddr = s.raftAddr()
	}
	if h.RaftAddr == "" {
		h.RaftAddr = s.cluster.raftBind
	}
	return h
}

func (s *Server) handlePeerHello(ctx context.Context, b []byte) (any, error) {
	var from headInfo
	if err := s.cluster.unseal(b, &from); err != nil {
		return nil, err
	}
	return s.selfInfo(), nil
}

func (s *Server) handlePeerInvite(ctx context.Context, b []byte) (any, error) {
	var req inviteRequest
	if err := s.cluster.unseal(b, &req); err != nil {
		return nil, err
	}
	if s.cluster.role() != "" {
		return nil, api.FailedPrecondition("head %s already belongs to a cluster", s.cfg.ID)
	}
	if len(req.Join) == 0 {
		return nil, api.Invalid("join", "is required")
	}
	select {
	case s.cluster.invite <- req.Join:
	default:
	}
	return s.selfInfo(), nil
}

// handlePeerJoin (leader) issues a head certificate.
func (s *Server) handlePeerJoin(ctx context.Context, b []byte) (any, error) {
	var req joinRequest
	if err := s.cluster.unseal(b, &req); err != nil {
		return nil, err
	}
	if err := checkHeadInfo(req.Head); err != nil {
		return nil, err
	}
	_, ca := s.cluster.secretsOf(s.store.State())
	if ca == nil {
		return nil, api.Unavailable("the cluster's CA is not in the state yet; retry")
	}
	pub, err := pki.ParsePublicKey(req.PublicKey)
	if err != nil {
		return nil, api.Invalid("public_key", "%v", err)
	}
	certPEM, err := ca.IssueHead(pub, req.Head.ID, req.Hosts, time.Now())
	if err != nil {
		return nil, err
	}
	s.log.Info("issued a head certificate", "head", req.Head.ID, "api", req.Head.APIAddr)
	return joinResponse{CACertPEM: string(ca.CertPEM), CertPEM: string(certPEM)}, nil
}

// handlePeerAdd (leader) makes a head a voter and records its addresses.
func (s *Server) handlePeerAdd(ctx context.Context, b []byte) (any, error) {
	var req addRequest
	if err := s.cluster.unseal(b, &req); err != nil {
		return nil, err
	}
	if err := checkHeadInfo(req.Head); err != nil {
		return nil, err
	}
	if err := s.addHead(ctx, req.Head, req.Join); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func checkHeadInfo(h headInfo) error {
	switch {
	case h.ID == "" || len(h.ID) > 128:
		return api.Invalid("id", "must be 1..128 bytes")
	case h.APIAddr == "":
		return api.Invalid("api_addr", "is required")
	case h.RaftAddr == "":
		return api.Invalid("raft_addr", "is required")
	}
	return nil
}
