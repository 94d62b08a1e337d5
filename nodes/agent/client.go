package agent

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/internal/waits"
)

// defaultHeartbeatInterval is used when the head gives none.
const defaultHeartbeatInterval = 5 * time.Second

// session is the agent's current credential.
type session struct {
	// gen counts registrations, so concurrent 401s register once.
	gen      int
	nodeID   string
	client   *api.Client
	interval time.Duration
}

// nodeFile is WorkDir/node.json: the node's identity and token (0600).
type nodeFile struct {
	NodeID              string `json:"node_id"`
	NodeToken           string `json:"node_token"`
	HeartbeatIntervalMS int    `json:"heartbeat_interval_ms,omitempty"`
	// SSHPort is the SSH port registered with the token: a restarted agent
	// serving on another port registers again.
	SSHPort int `json:"ssh_port,omitempty"`
}

func (a *Agent) nodeFilePath() string { return filepath.Join(a.cfg.WorkDir, "node.json") }

// session returns the current credential.
func (a *Agent) session() session {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sess
}

func (a *Agent) setSession(nf nodeFile) {
	iv := time.Duration(nf.HeartbeatIntervalMS) * time.Millisecond
	if iv <= 0 {
		iv = defaultHeartbeatInterval
	}
	a.mu.Lock()
	a.sess = session{gen: a.sess.gen + 1, nodeID: nf.NodeID, client: a.join.WithToken(nf.NodeToken), interval: iv}
	a.mu.Unlock()
}

// login reuses the token saved in node.json, or registers.
func (a *Agent) login(ctx context.Context) error {
	b, err := os.ReadFile(a.nodeFilePath())
	if err == nil {
		var nf nodeFile
		if json.Unmarshal(b, &nf) == nil && nf.NodeToken != "" && nf.NodeID != "" &&
			(a.cfg.NodeID == "" || nf.NodeID == a.cfg.NodeID) && nf.SSHPort == a.sshPort {
			a.setSession(nf)
			a.log.Info("reusing the saved node credential", "node", nf.NodeID)
			return nil
		}
	}
	return a.reregister(ctx, 0)
}

// reregister registers with the join token unless a registration newer
// than gen already happened. It retries until it succeeds or ctx ends; it
// returns ErrNodeRemoved when the head does not know the node.
func (a *Agent) reregister(ctx context.Context, gen int) error {
	a.authMu.Lock()
	defer a.authMu.Unlock()
	if cur := a.session(); cur.gen != gen {
		return nil
	}
	nodeID := a.session().nodeID
	if nodeID == "" {
		nodeID = a.cfg.NodeID
	}
	req := api.RegisterRequest{
		NodeID:   nodeID,
		Target:   a.cfg.Target,
		Hostname: a.cfg.Hostname,
		Address:  a.address(),
		Capacity: a.cfg.Capacity,
		GPUs:     a.cfg.GPUs,
		GPUError: a.cfg.GPUError,
		Version:  a.cfg.Version,
		Runtimes: a.runtimeNames(),
		HostKey:  a.sshd.HostKey(),
		SSHPort:  a.sshPort,
	}
	bo := a.backoff()
	for {
		cctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
		resp, err := a.join.Register(cctx, req)
		cancel()
		if err == nil {
			if resp.NodeID == "" || resp.NodeToken == "" {
				err = errors.New("head answered without a node ID or token")
			} else {
				nf := nodeFile{NodeID: resp.NodeID, NodeToken: resp.NodeToken, HeartbeatIntervalMS: resp.HeartbeatIntervalMS, SSHPort: a.sshPort}
				if b, merr := json.Marshal(nf); merr == nil {
					if werr := writeFileAtomic(a.nodeFilePath(), b, 0o600); werr != nil {
						a.log.Warn("could not save the node credential", "err", werr)
					}
				}
				a.setSession(nf)
				a.log.Info("registered", "node", resp.NodeID, "heartbeat_interval", a.session().interval)
				if resp.Unusable != "" {
					a.log.Error("the head marked this node unusable; it will get no runs", "reason", resp.Unusable)
				}
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if nodeID != "" && api.StatusOf(err) == http.StatusNotFound {
			return ErrNodeRemoved
		}
		d := bo.next()
		a.log.Warn("registration failed; retrying", "err", err, "retry_in", d)
		if !waits.Sleep(ctx, d) {
			return ctx.Err()
		}
	}
}

// call runs fn with the node client until it succeeds, fails for good, or
// ctx ends; timeout bounds each try. Network errors, timeouts and 5xx (and
// 408, 429) answers are retried with backoff; a 401 registers again first.
// Other 4xx errors are returned: the caller decides (409 means fenced).
func (a *Agent) call(ctx context.Context, what string, timeout time.Duration, fn func(context.Context, *api.Client) error) error {
	bo := a.backoff()
	for {
		s := a.session()
		cctx, cancel := context.WithTimeout(ctx, timeout)
		err := fn(cctx, s.client)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		st := api.StatusOf(err)
		if st == http.StatusUnauthorized {
			a.log.Warn("the head refused the node token; registering again", "call", what)
			if rerr := a.reregister(ctx, s.gen); rerr != nil {
				if errors.Is(rerr, ErrNodeRemoved) {
					a.markRemoved()
				}
				return rerr
			}
			continue
		}
		if st >= 400 && st < 500 && st != http.StatusRequestTimeout && st != http.StatusTooManyRequests {
			return err
		}
		d := bo.next()
		a.log.Warn("head call failed; retrying", "call", what, "err", err, "retry_in", d)
		if !waits.Sleep(ctx, d) {
			return ctx.Err()
		}
	}
}

// isFenced reports whether a report's error means the head no longer takes
// reports of the attempt (409; 404: the attempt is gone).
func isFenced(err error) bool {
	st := api.StatusOf(err)
	return st == http.StatusConflict || st == http.StatusNotFound
}

// address is the node's address for peers: the configured one, or the
// local address of the route to the first head.
func (a *Agent) address() string {
	if a.cfg.Address != "" {
		return a.cfg.Address
	}
	head := strings.TrimSpace(a.join.Addresses()[0])
	u, err := url.Parse(head)
	if err != nil || u.Hostname() == "" {
		return ""
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.Dial("udp", net.JoinHostPort(u.Hostname(), port)) // sends nothing
	if err != nil {
		return ""
	}
	defer conn.Close()
	if ua, ok := conn.LocalAddr().(*net.UDPAddr); ok {
		return ua.IP.String()
	}
	return ""
}

// backoff is capped exponential backoff with jitter.
type backoff struct{ min, max, cur time.Duration }

func (a *Agent) backoff() *backoff { return &backoff{min: a.cfg.RetryMin, max: a.cfg.RetryMax} }

// next returns the next wait: the step doubles from min up to max, and the
// wait is a random point in its upper half.
func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else if b.cur = 2 * b.cur; b.cur > b.max {
		b.cur = b.max
	}
	half := b.cur / 2
	return half + rand.N(half+1)
}

func (b *backoff) reset() { b.cur = 0 }

func (a *Agent) runtimeNames() []string {
	names := make([]string, 0, len(a.runtimes))
	for _, rt := range a.cfg.Runtimes {
		names = append(names, rt.Name())
	}
	return names
}
