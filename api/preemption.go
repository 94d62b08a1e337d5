package api

import (
	"context"
	"io"
	"net/url"
	"strconv"
	"time"
)

// EvictionRequest asks a head to simulate the eviction of one node of a
// lowpriority cluster, the way a cloud takes a spot VM back: the node gets
// notice, the attempts on it get SIGTERM and a grace period, then the
// machine is taken away and the runs are requeued.
type EvictionRequest struct {
	// NodeID names the node to evict. Required.
	NodeID string `json:"node_id"`
	// GraceSeconds overrides the notice (0..600); nil means the target's
	// preemption_grace_seconds, else the head's default.
	GraceSeconds *int `json:"grace_seconds,omitempty"`
}

// Eviction is a head's answer to an EvictionRequest.
type Eviction struct {
	Target string `json:"target"`
	NodeID string `json:"node_id"`
	// GraceSeconds is the notice the node got.
	GraceSeconds int `json:"grace_seconds"`
	// Deadline is when the machine is taken, at the latest.
	Deadline time.Time `json:"deadline"`
	// Runs lists the runs whose attempts were on the node: they are being
	// stopped and will be requeued.
	Runs []string `json:"runs"`
}

// MaxPreemptionGraceSeconds bounds preemption_grace_seconds and an
// eviction's grace_seconds.
const MaxPreemptionGraceSeconds = 600

// SimulateEviction evicts a node of a lowpriority cluster (see
// EvictionRequest).
func (c *Client) SimulateEviction(ctx context.Context, target string, req EvictionRequest) (*Eviction, error) {
	var e Eviction
	_, err := c.do(ctx, request{method: "POST", path: "/v1/targets/" + url.PathEscape(target) + "/simulate-eviction", body: req, out: &e})
	return &e, err
}

// UploadCheckpoint stores the checkpoint of an attempt (a gzip'd tar of its
// AML_CHECKPOINT_DIR, at most MaxCheckpointBytes) as the run's latest. Only
// node 0 of a live attempt may; otherwise the head answers 409 (fenced) or
// 403.
func (c *Client) UploadCheckpoint(ctx context.Context, k AttemptKey, tgz []byte) (*BlobRef, error) {
	q := url.Values{"run": {k.RunID}, "attempt": {strconv.Itoa(k.Attempt)}, "node": {strconv.Itoa(k.NodeIndex)}}
	var ref BlobRef
	_, err := c.do(ctx, request{method: "POST", path: "/v1/agent/checkpoints", query: q, raw: tgz, out: &ref})
	return &ref, err
}

// DownloadCheckpoint writes the run's latest checkpoint (a gzip'd tar) to w
// for an attempt that holds this node; nothing is written when the run has
// none.
func (c *Client) DownloadCheckpoint(ctx context.Context, k AttemptKey, w io.Writer) error {
	q := url.Values{"run": {k.RunID}, "attempt": {strconv.Itoa(k.Attempt)}, "node": {strconv.Itoa(k.NodeIndex)}}
	_, err := c.do(ctx, request{method: "GET", path: "/v1/agent/checkpoints", query: q, out: w})
	return err
}
