package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/amld/amld/internal/waits"
	// Decodes what encoding/json writes to the same values, several
	// times quicker (raftstore's TestFastJSONDecodesLikeEncodingJSON
	// checks the API's types).
	fastjson "github.com/segmentio/encoding/json"
)

// IndexHeader carries the state index an answer reflects.
const IndexHeader = "X-Amld-Index"

// Config says how a Client reaches the heads.
type Config struct {
	// Addresses of heads, as URLs (http://127.0.0.1:7070) or host:port.
	// The client moves on to the next when one stops answering.
	Addresses []string
	// Token is the bearer token sent with every call.
	Token string
	// HTTPClient is used when set (tests, TLS settings).
	HTTPClient *http.Client
	// CACertPEM is the cluster CA's certificate: heads' certificates are
	// verified against it, and addresses without a scheme mean https.
	// Ignored when HTTPClient is set (except for the scheme).
	CACertPEM []byte
	// Consistent makes every read go through the leader, after a barrier,
	// instead of being answered from the state of whichever head answers.
	Consistent bool
}

// Client calls an amld head's HTTP API. It is safe for concurrent use.
type Client struct {
	addrs      []string
	token      string
	hc         *http.Client
	consistent bool
	seen       *indexSeen // the highest state index any answer carried

	mu   sync.Mutex
	next int // index of the address to try first
}

// NewClient returns a client for cfg.
func NewClient(cfg Config) (*Client, error) {
	if len(cfg.Addresses) == 0 {
		return nil, errors.New("api: no head address given")
	}
	c := &Client{token: cfg.Token, hc: cfg.HTTPClient, consistent: cfg.Consistent, seen: &indexSeen{}}
	scheme := "http://"
	if len(cfg.CACertPEM) > 0 {
		scheme = "https://"
	}
	for _, a := range cfg.Addresses {
		a = strings.TrimRight(strings.TrimSpace(a), "/")
		if a == "" {
			continue
		}
		if !strings.Contains(a, "://") {
			a = scheme + a
		}
		u, err := url.Parse(a)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("api: head address %q is not a URL or host:port", a)
		}
		c.addrs = append(c.addrs, a)
	}
	if len(c.addrs) == 0 {
		return nil, errors.New("api: no head address given")
	}
	if c.hc == nil {
		tc, err := tlsConfig(cfg.CACertPEM)
		if err != nil {
			return nil, err
		}
		c.hc = &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:     tc,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 128,
			IdleConnTimeout:     90 * time.Second,
		}}
	}
	return c, nil
}

// WithToken returns a client that shares c's connections but sends token.
func (c *Client) WithToken(token string) *Client {
	return &Client{addrs: c.addrs, token: token, hc: c.hc, consistent: c.consistent, seen: c.seen}
}

// Addresses returns the head addresses the client uses.
func (c *Client) Addresses() []string { return append([]string(nil), c.addrs...) }

// request is one API call.
type request struct {
	method string
	path   string
	query  url.Values
	body   any    // JSON-encoded when set
	raw    []byte // sent as is when set
	out    any    // JSON-decoded into when set
	// idempotencyKey, when set, is sent as Idempotency-Key: the same on
	// every retry, so a head can recognise a request it already carried out.
	idempotencyKey string
	// timeout bounds one try when ctx has no deadline (default: see once).
	timeout time.Duration
}

// do runs req against the heads in turn, returning the answer's index header.
func (c *Client) do(ctx context.Context, req request) (uint64, error) {
	var payload []byte
	if req.body != nil {
		b, err := json.Marshal(req.body)
		if err != nil {
			return 0, fmt.Errorf("encode request: %w", err)
		}
		payload = b
	}
	c.mu.Lock()
	start := c.next
	c.mu.Unlock()
	var lastErr error
	// Up to three rounds over the heads: an election takes about a second,
	// during which heads answer 503 or not at all.
	for round := range retryRounds {
		if round > 0 && !waits.Sleep(ctx, time.Duration(round)*300*time.Millisecond) {
			break
		}
		for i := range c.addrs {
			n := (start + i) % len(c.addrs)
			idx, err, retry := c.once(ctx, c.addrs[n], req, payload)
			if !retry {
				if n != start {
					c.mu.Lock()
					c.next = n
					c.mu.Unlock()
				}
				return idx, err
			}
			lastErr = err
			if ctx.Err() != nil {
				return 0, lastErr
			}
		}
	}
	return 0, lastErr
}

// retryRounds is how many times a call goes round the heads.
const retryRounds = 3

// once sends req to one head; retry says whether another head may answer.
func (c *Client) once(ctx context.Context, base string, req request, payload []byte) (uint64, error, bool) {
	q := req.query
	if c.consistent && req.method == "GET" {
		q = url.Values{}
		for k, v := range req.query {
			q[k] = v
		}
		q.Set("consistent", "true")
	}
	u := base + req.path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	} else if req.raw != nil {
		body = bytes.NewReader(req.raw)
	}
	callCtx := ctx
	if _, ok := ctx.Deadline(); !ok {
		// A head that stops answering (a partition) must not hold the
		// call forever: bound the try, and move on when it ends.
		var cancel context.CancelFunc
		callCtx, cancel = context.WithTimeout(ctx, tryTimeout(req))
		defer cancel()
	}
	hr, err := http.NewRequestWithContext(callCtx, req.method, u, body)
	if err != nil {
		return 0, err, false
	}
	if c.token != "" {
		hr.Header.Set("Authorization", "Bearer "+c.token)
	}
	if req.idempotencyKey != "" {
		hr.Header.Set("Idempotency-Key", req.idempotencyKey)
	}
	if n := c.seen.get(); n > 0 {
		// Never read a state older than one already seen, when a
		// failover moves this client to a head that is behind.
		hr.Header.Set(MinIndexHeader, strconv.FormatUint(n, 10))
	}
	if payload != nil {
		hr.Header.Set("Content-Type", "application/json")
	} else if req.raw != nil {
		hr.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := c.hc.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err(), false
		}
		return 0, fmt.Errorf("%s %s: %w", req.method, base, err), true
	}
	defer resp.Body.Close()
	idx, _ := strconv.ParseUint(resp.Header.Get(IndexHeader), 10, 64)
	c.seen.raise(idx)
	if resp.StatusCode >= 300 {
		return idx, decodeError(resp), resp.StatusCode == http.StatusServiceUnavailable
	}
	switch out := req.out.(type) {
	case nil:
		_, _ = io.Copy(io.Discard, resp.Body)
	case io.Writer:
		if _, err := io.Copy(out, resp.Body); err != nil {
			return idx, fmt.Errorf("read answer: %w", err), false
		}
	default:
		// Read whole, then decode: fastjson's Decoder starts with a 32 KiB
		// buffer, which costs more than it saves on small answers.
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return idx, fmt.Errorf("read answer of %s %s: %w", req.method, req.path, err), false
		}
		if err := fastjson.Unmarshal(b, out); err != nil {
			return idx, fmt.Errorf("decode answer of %s %s: %w", req.method, req.path, err), false
		}
		sizeEnvs(out)
	}
	return idx, nil, false
}

// sizeEnvs gives the runs of a decoded answer their environments in maps
// sized to them (SizedEnv), so that a list of many runs does not hold 5 KB
// for each.
func sizeEnvs(out any) {
	switch v := out.(type) {
	case *Run:
		v.Env = SizedEnv(v.Env)
	case *[]*Run:
		for _, r := range *v {
			if r != nil {
				r.Env = SizedEnv(r.Env)
			}
		}
	case *AssignmentsResponse:
		for i := range v.Assignments {
			v.Assignments[i].Run.Env = SizedEnv(v.Assignments[i].Run.Env)
		}
	}
}

func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var env ErrorEnvelope
	if json.Unmarshal(b, &env) == nil && env.Error != nil && env.Error.Message != "" {
		env.Error.Status = resp.StatusCode
		return env.Error
	}
	msg := strings.TrimSpace(string(b))
	if msg == "" {
		msg = resp.Status
	}
	return &Error{Status: resp.StatusCode, Code: CodeInternal, Message: msg}
}

// Wait asks a blocking query to answer once the state index passes Index,
// or after Wait at the latest.
type Wait struct {
	Index uint64
	Wait  time.Duration
}

func (w Wait) query(q url.Values) url.Values {
	if q == nil {
		q = url.Values{}
	}
	if w.Index > 0 {
		q.Set("index", strconv.FormatUint(w.Index, 10))
	}
	if w.Wait > 0 {
		q.Set("wait", w.Wait.String())
	}
	return q
}

// --- targets ---

// CreateTarget creates a compute target.
func (c *Client) CreateTarget(ctx context.Context, spec TargetSpec) (*Target, error) {
	var t Target
	_, err := c.do(ctx, request{method: "POST", path: "/v1/targets", body: spec, out: &t})
	return &t, err
}

// ListTargets lists every target the caller may see.
func (c *Client) ListTargets(ctx context.Context) ([]*Target, error) {
	var ts []*Target
	_, err := c.do(ctx, request{method: "GET", path: "/v1/targets", out: &ts})
	return ts, err
}

// GetTarget returns one target with its status.
func (c *Client) GetTarget(ctx context.Context, name string) (*Target, error) {
	var t Target
	_, err := c.do(ctx, request{method: "GET", path: "/v1/targets/" + url.PathEscape(name), out: &t})
	return &t, err
}

// UpdateTarget changes a target's scaling settings.
func (c *Client) UpdateTarget(ctx context.Context, name string, u TargetUpdate) (*Target, error) {
	var t Target
	_, err := c.do(ctx, request{method: "PATCH", path: "/v1/targets/" + url.PathEscape(name), body: u, out: &t})
	return &t, err
}

// DeleteTarget deletes a target: its nodes are removed, then the target.
func (c *Client) DeleteTarget(ctx context.Context, name string) error {
	_, err := c.do(ctx, request{method: "DELETE", path: "/v1/targets/" + url.PathEscape(name)})
	return err
}

// ListNodes lists a target's nodes with the work on them.
func (c *Client) ListNodes(ctx context.Context, target string) ([]*NodeView, error) {
	var ns []*NodeView
	_, err := c.do(ctx, request{method: "GET", path: "/v1/targets/" + url.PathEscape(target) + "/nodes", out: &ns})
	return ns, err
}

// ListVMSizes returns the vm_size catalogue.
func (c *Client) ListVMSizes(ctx context.Context) ([]VMSize, error) {
	var ss []VMSize
	_, err := c.do(ctx, request{method: "GET", path: "/v1/vm-sizes", out: &ss})
	return ss, err
}

// --- runs ---

// UploadSource stores a source snapshot (a gzip'd tar, at most
// MaxSourceBytes) and returns its reference for RunSpec.SourceID.
func (c *Client) UploadSource(ctx context.Context, tgz []byte) (*BlobRef, error) {
	var ref BlobRef
	_, err := c.do(ctx, request{method: "POST", path: "/v1/blobs", raw: tgz, out: &ref})
	return &ref, err
}

// SubmitRun queues a run.
func (c *Client) SubmitRun(ctx context.Context, spec RunSpec) (*Run, error) {
	var r Run
	_, err := c.do(ctx, request{method: "POST", path: "/v1/runs", body: spec, out: &r, idempotencyKey: newIdempotencyKey()})
	return &r, err
}

// RunFilter narrows ListRuns.
type RunFilter struct {
	Target string
	State  string
}

// ListRuns lists runs, newest first.
func (c *Client) ListRuns(ctx context.Context, f RunFilter) ([]*Run, error) {
	q := url.Values{}
	if f.Target != "" {
		q.Set("target", f.Target)
	}
	if f.State != "" {
		q.Set("state", f.State)
	}
	var rs []*Run
	_, err := c.do(ctx, request{method: "GET", path: "/v1/runs", query: q, out: &rs})
	return rs, err
}

// GetRun returns a run. With w.Index set, it waits until the run changes
// past that index (or w.Wait passes) and returns the index to wait on next.
func (c *Client) GetRun(ctx context.Context, id string, w Wait) (*Run, uint64, error) {
	var r Run
	idx, err := c.do(ctx, request{method: "GET", path: "/v1/runs/" + url.PathEscape(id), query: w.query(nil), out: &r})
	return &r, idx, err
}

// CancelRun cancels a run: a queued run is Canceled at once, a running one
// goes through CancelRequested.
func (c *Client) CancelRun(ctx context.Context, id string) (*Run, error) {
	var r Run
	_, err := c.do(ctx, request{method: "POST", path: "/v1/runs/" + url.PathEscape(id) + "/cancel", out: &r})
	return &r, err
}

// LogQuery selects a log stream and where to read it from.
type LogQuery struct {
	// Attempt is the attempt number; 0 means the latest.
	Attempt int
	// NodeIndex is the node rank (default 0).
	NodeIndex int
	Offset    int64
	Wait
}

// Logs reads one node's output of one attempt of a run.
func (c *Client) Logs(ctx context.Context, id string, lq LogQuery) (*LogChunk, error) {
	q := lq.Wait.query(nil)
	if lq.Attempt > 0 {
		q.Set("attempt", strconv.Itoa(lq.Attempt))
	}
	q.Set("node", strconv.Itoa(lq.NodeIndex))
	q.Set("offset", strconv.FormatInt(lq.Offset, 10))
	var lc LogChunk
	_, err := c.do(ctx, request{method: "GET", path: "/v1/runs/" + url.PathEscape(id) + "/logs", query: q, out: &lc})
	return &lc, err
}

// DownloadOutputs writes the gzip'd tar of a run's outputs (attempt 0: the
// last attempt that has them) to w.
func (c *Client) DownloadOutputs(ctx context.Context, id string, attempt int, w io.Writer) error {
	q := url.Values{}
	if attempt > 0 {
		q.Set("attempt", strconv.Itoa(attempt))
	}
	_, err := c.do(ctx, request{method: "GET", path: "/v1/runs/" + url.PathEscape(id) + "/outputs", query: q, out: w})
	return err
}

// --- users ---

// Whoami describes the caller's token.
func (c *Client) Whoami(ctx context.Context) (*Whoami, error) {
	var w Whoami
	_, err := c.do(ctx, request{method: "GET", path: "/v1/whoami", out: &w})
	return &w, err
}

// CreateUser makes a user and returns its token, shown this once.
func (c *Client) CreateUser(ctx context.Context, name, role string) (*UserCreated, error) {
	var u UserCreated
	_, err := c.do(ctx, request{method: "POST", path: "/v1/users", body: User{Name: name, Role: role}, out: &u})
	return &u, err
}

// --- agent protocol ---

// Register joins a node; the client's token must be the join token.
func (c *Client) Register(ctx context.Context, req RegisterRequest) (*RegisterResponse, error) {
	var r RegisterResponse
	_, err := c.do(ctx, request{method: "POST", path: "/v1/agent/register", body: req, out: &r})
	return &r, err
}

// Heartbeat tells the head the node is alive.
func (c *Client) Heartbeat(ctx context.Context, nodeID string) error {
	_, err := c.do(ctx, request{method: "POST", path: "/v1/agent/heartbeat", body: HeartbeatRequest{NodeID: nodeID}})
	return err
}

// Assignments returns what the node should run, waiting past w.Index.
func (c *Client) Assignments(ctx context.Context, nodeID string, w Wait) (*AssignmentsResponse, error) {
	q := w.query(url.Values{"node": {nodeID}})
	var r AssignmentsResponse
	_, err := c.do(ctx, request{method: "GET", path: "/v1/agent/assignments", query: q, out: &r})
	return &r, err
}

// ReportStatus reports a transition of an attempt on the node.
func (c *Client) ReportStatus(ctx context.Context, s AttemptStatus) error {
	_, err := c.do(ctx, request{method: "POST", path: "/v1/agent/status", body: s})
	return err
}

// AppendLog ships output of an attempt on the node.
func (c *Client) AppendLog(ctx context.Context, l LogAppend) error {
	_, err := c.do(ctx, request{method: "POST", path: "/v1/agent/logs", body: l})
	return err
}

// UploadOutputs stores an attempt's outputs (a gzip'd tar).
func (c *Client) UploadOutputs(ctx context.Context, k AttemptKey, tgz []byte) (*BlobRef, error) {
	q := url.Values{"run": {k.RunID}, "attempt": {strconv.Itoa(k.Attempt)}, "node": {strconv.Itoa(k.NodeIndex)}}
	var ref BlobRef
	_, err := c.do(ctx, request{method: "POST", path: "/v1/agent/outputs", query: q, raw: tgz, out: &ref})
	return &ref, err
}

// DownloadBlob writes a blob (a run's source snapshot) to w.
func (c *Client) DownloadBlob(ctx context.Context, id string, w io.Writer) error {
	_, err := c.do(ctx, request{method: "GET", path: "/v1/blobs/" + url.PathEscape(id), out: w})
	return err
}

// Status is a head's view of the cluster, for health checks.
type Status struct {
	ID     string `json:"id"`
	Leader string `json:"leader"`
	Index  uint64 `json:"index"`
	HeadStatus
}

// Status returns the answering head's status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	_, err := c.do(ctx, request{method: "GET", path: "/v1/status", out: &s})
	return &s, err
}
