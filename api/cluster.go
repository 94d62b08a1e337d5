package api

import (
	"context"
	"io"
	"net/url"
	"sync/atomic"
	"time"
)

// MinIndexHeader carries the highest state index a client has seen (from
// IndexHeader). A head whose state is older waits for it to catch up, and
// answers 503 if it does not soon, so that a client moved to another head
// by a failover never reads a state older than one it already saw.
const MinIndexHeader = "X-Amld-Min-Index"

// indexSeen is the highest index a client (and its WithToken copies) saw.
type indexSeen struct{ n atomic.Uint64 }

func (s *indexSeen) get() uint64 { return s.n.Load() }

func (s *indexSeen) raise(n uint64) {
	for {
		old := s.n.Load()
		if n <= old || s.n.CompareAndSwap(old, n) {
			return
		}
	}
}

// HeadStatus is a head's own view of Raft, part of Status.
type HeadStatus struct {
	// State is Leader, Follower, Candidate, Shutdown, or Joining (the head
	// has not joined its cluster yet).
	State string `json:"state,omitempty"`
	// Term is the Raft term the head is in.
	Term uint64 `json:"term,omitempty"`
	// AppliedIndex is the last log entry the head has applied.
	AppliedIndex uint64 `json:"applied_index,omitempty"`
	// CommitIndex is the last entry it knows committed.
	CommitIndex uint64 `json:"commit_index,omitempty"`
	// LastContactMS is how long ago the head last heard from the leader in
	// milliseconds; -1 on the leader or when it never has.
	LastContactMS int64 `json:"last_contact_ms,omitempty"`
	// SnapshotRestores counts the snapshots installed since the head
	// started (catching up from the leader, or a restored backup).
	SnapshotRestores int64 `json:"snapshot_restores,omitempty"`
}

// Member is one head of the cluster, as `amlctl server members` shows it.
type Member struct {
	ID       string `json:"id"`
	APIAddr  string `json:"api_addr"`
	RaftAddr string `json:"raft_addr"`
	Voter    bool   `json:"voter"`
	Leader   bool   `json:"leader"`
	// LogVersion is the newest log format the head's build applies, as it
	// recorded it (0: not recorded yet, or a build from before formats).
	// The leader writes batch entries (format 1) only when every head
	// records at least 1.
	LogVersion int `json:"log_version"`
	// Reachable says whether the answering head could ask this one for its
	// status; the fields below come from that answer.
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	HeadStatus
}

// JoinHeadRequest asks the cluster to take in the head at Address.
type JoinHeadRequest struct {
	Address string `json:"address"`
}

// JoinHeadResponse names the head that was invited.
type JoinHeadResponse struct {
	ID string `json:"id"`
}

// Members lists the cluster's heads.
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	var ms []Member
	_, err := c.do(ctx, request{method: "GET", path: "/v1/cluster/members", out: &ms})
	return ms, err
}

// RemoveMember removes a head from the cluster.
func (c *Client) RemoveMember(ctx context.Context, id string) error {
	_, err := c.do(ctx, request{method: "DELETE", path: "/v1/cluster/members/" + url.PathEscape(id)})
	return err
}

// JoinMember invites the head listening at address (started with
// --bootstrap-expect 0 and the cluster's key) into the cluster.
func (c *Client) JoinMember(ctx context.Context, address string) (*JoinHeadResponse, error) {
	var r JoinHeadResponse
	_, err := c.do(ctx, request{method: "POST", path: "/v1/cluster/members", body: JoinHeadRequest{Address: address}, out: &r})
	return &r, err
}

// SaveSnapshot writes a snapshot of the whole state, taken on the leader,
// to w.
func (c *Client) SaveSnapshot(ctx context.Context, w io.Writer) error {
	_, err := c.do(ctx, request{method: "GET", path: "/v1/operator/snapshot", out: w, timeout: 10 * time.Minute})
	return err
}

// RestoreSnapshot replaces the cluster's whole state with a snapshot that
// SaveSnapshot wrote.
func (c *Client) RestoreSnapshot(ctx context.Context, snap []byte) error {
	_, err := c.do(ctx, request{method: "PUT", path: "/v1/operator/snapshot", raw: snap, timeout: 10 * time.Minute})
	return err
}
