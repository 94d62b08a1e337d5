package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/autoscale"
	"github.com/amld/amld/nodes"
	"github.com/amld/amld/raftstore"
	"github.com/amld/amld/scheduler"
)

// Config is a head's configuration.
type Config struct {
	// ID names this head among its peers (default: the host name).
	ID string
	// DataDir holds the Raft log and snapshots, the token files and the
	// local provider's nodes.
	DataDir string
	// Listen is the HTTP API address (host:port; port 0 picks one).
	Listen string
	// Advertise is the API address agents and peers use (default: the
	// address actually listened on).
	Advertise string
	// RaftAddr is the Raft transport address (default: Listen's port + 1).
	RaftAddr string
	// Bootstrap makes a new single-voter cluster when the data dir is empty.
	Bootstrap bool
	// Sizes is the vm_size catalogue (default: the built-in one).
	Sizes *Sizes
	// Providers by name; DefaultProvider is used when a target names none.
	Providers       map[string]nodes.Provider
	DefaultProvider string
	// HeartbeatTTL: a node not heard from for this long becomes unusable
	// and its running attempts are requeued.
	HeartbeatTTL time.Duration
	// PreemptionGrace is how long a preempted attempt (evicted node, or
	// priority preemption) has between SIGTERM and SIGKILL on targets that
	// set no preemption_grace_seconds (default 30s; 0..10m).
	PreemptionGrace time.Duration
	// Autoscale tunes the autoscaler.
	Autoscale autoscale.Config
	// SchedulerQueueDepth is how many queued runs of each target the
	// scheduling rounds between full rounds consider (see scheduleLoop;
	// 1..1,000,000).
	SchedulerQueueDepth int
	// Raft tunes consensus (ID, DataDir and addresses are filled in).
	Raft raftstore.Config
	// Cluster says how this head finds its peers, and its TLS.
	Cluster ClusterConfig
	// Logger receives the head's logs (never a secret).
	Logger *slog.Logger
	// Stdout is where the admin token is printed, once, at bootstrap.
	Stdout io.Writer
	// EnableDebug serves Go's runtime profiles (pprof) to admins under
	// /v1/debug/pprof/.
	EnableDebug bool
	// AgentBinary is the amld binary the ssh provider installs on attached
	// machines and exec scripts are told of (default: this executable).
	AgentBinary string
}

// DefaultConfig returns a head configuration with documented defaults.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		ID:              host,
		Listen:          "127.0.0.1:7070",
		Bootstrap:       true,
		DefaultProvider: "local",
		HeartbeatTTL:    10 * time.Second,
		PreemptionGrace: api.DefaultPreemptionGraceSeconds * time.Second,
		Autoscale:       autoscale.DefaultConfig(),
		Raft:            raftstore.DefaultConfig(),

		SchedulerQueueDepth: DefaultSchedulerQueueDepth,
		Cluster:             ClusterConfig{BootstrapExpect: 1},
	}
}

// Validate checks the configuration, naming the field at fault.
func (c *Config) Validate() error {
	switch {
	case c.DataDir == "":
		return errors.New("data dir: required (--data-dir)")
	case c.ID == "":
		return errors.New("id: required")
	case c.Listen == "":
		return errors.New("listen: required (--listen host:port)")
	case c.HeartbeatTTL < time.Second || c.HeartbeatTTL > 10*time.Minute:
		return fmt.Errorf("heartbeat ttl: must be 1s..10m, got %s", c.HeartbeatTTL)
	case c.PreemptionGrace < 0 || c.PreemptionGrace > api.MaxPreemptionGraceSeconds*time.Second:
		return fmt.Errorf("preemption grace: must be 0s..%ds, got %s", api.MaxPreemptionGraceSeconds, c.PreemptionGrace)
	case c.SchedulerQueueDepth < 1 || c.SchedulerQueueDepth > 1_000_000:
		return fmt.Errorf("scheduler queue depth (--scheduler-queue-depth): must be 1..1000000, got %d", c.SchedulerQueueDepth)
	case len(c.Providers) == 0:
		return errors.New("providers: at least one node provider is required")
	}
	if _, ok := c.Providers[c.DefaultProvider]; !ok {
		return fmt.Errorf("default provider: %q is not configured", c.DefaultProvider)
	}
	if err := c.Cluster.Validate(); err != nil {
		return err
	}
	return c.Autoscale.Validate()
}

// Files in the data dir.
const (
	adminTokenFile = "admin.token"
	joinTokenFile  = "join.token"
)

// Server is one head.
type Server struct {
	cfg   Config
	log   *slog.Logger
	store *raftstore.Store
	ln    net.Listener
	http  *http.Server
	addr  string // advertised API address

	joinMu    sync.RWMutex
	joinToken string

	ready     chan struct{} // closed once the cluster is bootstrapped and known here
	readyOnce sync.Once

	hb *heartbeats
	// sealer seals the secrets kept in the state (attached machines'
	// credentials, runs' SSH keys) under a key derived from the cluster key.
	sealer *sealer
	// agentBinary is the amld binary installed on attached machines.
	agentBinary string
	// cluster holds the multi-head machinery: TLS material, the cluster
	// key, the forwarding proxy (cluster.go).
	cluster *clusterState
	// storeOpen is closed once store is set: a joining head serves only
	// the peer protocol and /v1/status before.
	storeOpen chan struct{}
	mux       http.Handler // the API's routes, behind forwarding
	// catchUp is the last log index on disk at start: until the state has
	// applied it, an unknown token may just not be loaded yet (503, not 401).
	catchUp uint64
	// logVersion is the log format every head applies, as the leader's
	// heads loop last saw it (0 until then, and on followers).
	logVersion atomic.Int64
	// hints are the wait reasons of the leader's last scheduling round, by
	// what runs ask: a submit starts its run with the one that fits.
	hints atomic.Pointer[scheduler.Hints]
	// forwards are the submits this head, a follower, forwards to the
	// leader (forward_submit.go).
	forwards chan *forwardCall
}

// New opens the head's state and binds its API address; Run serves.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Sizes == nil {
		sz, err := NewSizes(nil)
		if err != nil {
			return nil, err
		}
		cfg.Sizes = sz
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	agentBin, err := agentBinaryPath(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		ready:     make(chan struct{}),
		hb:        newHeartbeats(),
		storeOpen: make(chan struct{}),
		forwards:  make(chan *forwardCall),

		agentBinary: agentBin,
	}
	if err := s.addStateProviders(); err != nil {
		ln.Close()
		return nil, err
	}
	if err := s.setupCluster(ln); err != nil {
		ln.Close()
		return nil, err
	}
	if s.sealer, err = newSealer(s.cluster.key.Derive(sealerPurpose)); err != nil {
		ln.Close()
		return nil, err
	}
	if b, err := os.ReadFile(filepath.Join(cfg.DataDir, joinTokenFile)); err == nil {
		s.joinToken = strings.TrimSpace(string(b))
	}
	s.mux = s.routes()
	s.http = &http.Server{
		Handler:           accessLog(s.log, s.forwarding(s.mux)),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// openStore opens the Raft state (once this head's TLS material, if any,
// is in place) and lets the API serve it.
func (s *Server) openStore(bootstrap bool) error {
	rc := s.cfg.Raft
	rc.ID = s.cfg.ID
	rc.DataDir = filepath.Join(s.cfg.DataDir, "raft")
	rc.Bootstrap = bootstrap
	rc.Logger = s.cfg.Logger.With("component", "raft")
	rc.BindAddr = s.cluster.raftBind
	rc.AdvertiseAddr = s.cluster.raftAdvertise
	rc.TLS = s.cluster.peerTLS
	store, err := raftstore.Open(rc)
	if err != nil {
		return fmt.Errorf("open state: %w", err)
	}
	s.store = store
	s.catchUp = store.Raft().LastIndex()
	close(s.storeOpen)
	return nil
}

// nextPort returns host:port+1 of addr (the default Raft address).
func nextPort(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	var p int
	if _, err := fmt.Sscanf(port, "%d", &p); err != nil {
		return "", err
	}
	return net.JoinHostPort(host, fmt.Sprint(p+1)), nil
}

// Addr is the API address agents and clients use.
func (s *Server) Addr() string { return s.addr }

// URL is the API base URL (https unless Cluster.InsecureDev).
func (s *Server) URL() string {
	if s.cfg.Cluster.InsecureDev {
		return "http://" + s.addr
	}
	return "https://" + s.addr
}

// Ready is closed once the cluster is bootstrapped and this head can serve.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// AdminTokenPath is where the bootstrap admin token is kept for the operator.
func (s *Server) AdminTokenPath() string { return filepath.Join(s.cfg.DataDir, adminTokenFile) }

// Run serves the API and, while this head leads, carries out the leader's
// duties, until ctx is canceled; then it shuts down cleanly.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 1)

	s.http.BaseContext = func(net.Listener) context.Context { return ctx }
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.http.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			select {
			case errc <- fmt.Errorf("http: %w", err):
			default:
			}
			cancel()
		}
	}()
	s.log.Info("amld head serving", "api", s.URL(), "id", s.cfg.ID)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.joinCluster(ctx); err != nil {
			if ctx.Err() == nil {
				select {
				case errc <- err:
				default:
				}
				cancel()
			}
			return
		}
		var lwg sync.WaitGroup
		for _, loop := range []func(context.Context){s.leadershipLoop, s.watchReady, s.registerLoop, s.forwardLoop} {
			lwg.Add(1)
			go func() {
				defer lwg.Done()
				loop(ctx)
			}()
		}
		lwg.Wait()
	}()

	<-ctx.Done()
	shutdownCtx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	_ = s.http.Shutdown(shutdownCtx)
	wg.Wait()
	s.cluster.close()
	var err error
	if s.storeIsOpen() {
		err = s.store.Close()
	}
	select {
	case e := <-errc:
		return e
	default:
	}
	if err != nil {
		return fmt.Errorf("close state: %w", err)
	}
	s.log.Info("amld head stopped")
	return nil
}

// watchReady closes Ready once the cluster's bootstrap is applied (done by
// the first leader) and the join token is known here.
func (s *Server) watchReady(ctx context.Context) {
	var idx uint64
	for ctx.Err() == nil {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		st := s.store.WaitForIndex(wctx, idx)
		cancel()
		idx = st.Index()
		if st.Meta() != nil && s.JoinToken() != "" && s.cluster.certified() && st.Head(s.cfg.ID) != nil {
			s.readyOnce.Do(func() { close(s.ready) })
			return
		}
	}
}

// JoinToken returns the agents' join token (a secret; never log it): the
// one sealed in the replicated state, else the one this head made.
func (s *Server) JoinToken() string {
	if s.storeIsOpen() {
		if tok := s.cluster.joinTokenOf(s.store.State()); tok != "" {
			return tok
		}
	}
	s.joinMu.RLock()
	defer s.joinMu.RUnlock()
	return s.joinToken
}

// bootstrap initialises an empty cluster: an admin token (printed once,
// and kept 0600 in the data dir) and a join token, both stored hashed.
func (s *Server) bootstrap(ctx context.Context) error {
	if s.store.State().Meta() != nil {
		return nil
	}
	admin, join := newToken("amld"), newToken("join")
	if err := writeSecret(filepath.Join(s.cfg.DataDir, adminTokenFile), admin); err != nil {
		return err
	}
	if err := writeSecret(filepath.Join(s.cfg.DataDir, joinTokenFile), join); err != nil {
		return err
	}
	s.joinMu.Lock()
	s.joinToken = join
	s.joinMu.Unlock()
	_, err := s.store.Apply(ctx, raftstore.MsgBootstrap, &raftstore.BootstrapRequest{
		ClusterID:      newID("c"),
		AdminTokenHash: hashToken(admin),
		JoinTokenHash:  hashToken(join),
		Time:           time.Now().UTC(),
	})
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if err := s.ensureSecrets(ctx); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	fmt.Fprintf(s.cfg.Stdout, "amld: new cluster bootstrapped.\nAdmin token (shown once; kept for the operator in %s, mode 0600):\n\n    %s\n\n",
		s.AdminTokenPath(), admin)
	return nil
}

// writeSecret writes a token file readable by its owner only.
func writeSecret(path, secret string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// providerNames lists the configured providers.
func (s *Server) providerNames() []string {
	var out []string
	for n := range s.cfg.Providers {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// apply proposes a command; handlers use it so errors map to HTTP answers.
func (s *Server) apply(ctx context.Context, t raftstore.MsgType, req any) (uint64, error) {
	return s.store.Apply(ctx, t, req)
}

// now is the proposer's clock: every command is stamped here, in UTC.
func now() time.Time { return time.Now().UTC() }

var _ = api.RunQueued
