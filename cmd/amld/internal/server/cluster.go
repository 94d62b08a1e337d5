package server

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/amld/amld/cmd/amld/internal/pki"
	"github.com/amld/amld/raftstore"
)

// ClusterConfig says how a head finds its peers and whether it speaks TLS.
type ClusterConfig struct {
	// BootstrapExpect is how many heads form a new cluster: 1 (the
	// default) bootstraps alone unless Join is set; N > 1 waits until N
	// heads without state see each other through Join, then the one with
	// the smallest ID bootstraps and the others join it; 0 never
	// bootstraps and waits to be joined (`amlctl server join`).
	BootstrapExpect int
	// Join lists peers' API addresses (host:port or URLs) to find the
	// cluster through.
	Join []string
	// KeyFile is the cluster key file every head of a cluster holds
	// (default DATA_DIR/cluster.key; a head bootstrapping alone makes it).
	KeyFile string
	// InsecureDev turns TLS off: plain HTTP and plain Raft TCP. For `amld
	// dev` and tests on one machine only.
	InsecureDev bool
	// TLSHosts are extra host names or IPs for this head's certificate.
	TLSHosts []string
}

// Validate names the field at fault.
func (c *ClusterConfig) Validate() error {
	if c.BootstrapExpect < 0 || c.BootstrapExpect > 9 {
		return fmt.Errorf("bootstrap expect: must be 0..9, got %d", c.BootstrapExpect)
	}
	if c.BootstrapExpect > 1 && len(c.Join) == 0 {
		return errors.New("join: --bootstrap-expect above 1 needs --join with the other heads' API addresses")
	}
	return nil
}

// Files of a head's cluster membership in its data dir.
const (
	memberFile  = "member"      // JSON memberMark: this head is (becoming) a member
	keyFileName = "cluster.key" // the default cluster key file
	tlsDir      = "tls"         // ca.crt, head.crt, head.key (and ca.key until it is in Raft)
)

// Roles a memberMark records.
const (
	roleBootstrap = "bootstrap" // made the cluster
	roleJoining   = "joining"   // has a certificate; not yet confirmed a voter
	roleJoined    = "joined"    // a confirmed voter
)

// memberMark is the content of DATA_DIR/member.
type memberMark struct {
	Role string   `json:"role"`
	Join []string `json:"join,omitempty"`
}

// clusterState is a head's multi-head machinery.
type clusterState struct {
	dataDir       string
	key           pki.Key
	insecure      bool
	raftBind      string
	raftAdvertise string
	hosts         []string // for this head's certificate

	mu           sync.Mutex
	mark         memberMark
	bootstrapper bool
	cert         *tls.Certificate // served on the API
	caPEM        []byte
	peerTLS      *tls.Config  // Raft transport and head-to-head HTTP; nil when insecure
	peerHTTP     *http.Client // head-to-head calls that verify the peer is a head
	bootHTTP     *http.Client // sealed peer protocol before this head has the CA
	pendingCA    *pki.CA      // the bootstrapper's CA until it is sealed into Raft
	invite       chan []string

	secMu     sync.Mutex
	secCached *raftstore.Secrets
	secToken  string
	secCA     *pki.CA
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// setupCluster reads the cluster key and TLS material, decides how this
// head starts, opens the store now when it can, and wraps ln in TLS.
func (s *Server) setupCluster(ln net.Listener) error {
	cfg := s.cfg
	c := &clusterState{dataDir: cfg.DataDir, insecure: cfg.Cluster.InsecureDev, invite: make(chan []string, 1)}
	s.cluster = c
	s.addr = cfg.Advertise
	if s.addr == "" {
		s.addr = ln.Addr().String()
	}
	// Raft addresses.
	c.raftBind = cfg.Raft.BindAddr
	if c.raftBind == "" {
		c.raftBind = cfg.RaftAddr
	}
	if c.raftBind == "" {
		b, err := nextPort(ln.Addr().String())
		if err != nil {
			return err
		}
		c.raftBind = b
	}
	c.raftAdvertise = cfg.Raft.AdvertiseAddr
	if c.raftAdvertise == "" {
		if host, port, err := net.SplitHostPort(c.raftBind); err == nil {
			if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
				ahost, _, _ := net.SplitHostPort(s.addr)
				c.raftAdvertise = net.JoinHostPort(ahost, port)
			}
		}
	}
	for _, a := range []string{s.addr, cfg.Listen, ln.Addr().String(), c.raftBind, c.raftAdvertise} {
		if h, _, err := net.SplitHostPort(a); err == nil && h != "" {
			c.hosts = append(c.hosts, h)
		}
	}
	if hn, err := os.Hostname(); err == nil {
		c.hosts = append(c.hosts, hn)
	}
	c.hosts = append(c.hosts, cfg.Cluster.TLSHosts...)

	// How this head starts.
	if b, err := os.ReadFile(filepath.Join(cfg.DataDir, memberFile)); err == nil {
		if err := json.Unmarshal(b, &c.mark); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(cfg.DataDir, memberFile), err)
		}
	} else if fileExists(filepath.Join(cfg.DataDir, "raft", "raft.db")) {
		c.mark = memberMark{Role: roleBootstrap} // a head of before clusters
	}
	alone := c.mark.Role == "" && len(cfg.Cluster.Join) == 0 && cfg.Cluster.BootstrapExpect == 1 && cfg.Bootstrap
	keyPath := cfg.Cluster.KeyFile
	if keyPath == "" {
		keyPath = filepath.Join(cfg.DataDir, keyFileName)
	}
	switch k, err := pki.ReadKeyFile(keyPath); {
	case err == nil:
		c.key = k
	case errors.Is(err, os.ErrNotExist) && (alone || c.mark.Role == roleBootstrap):
		c.key = pki.GenerateKey()
		if err := pki.WriteKeyFile(keyPath, c.key); err != nil {
			return fmt.Errorf("cluster key: %w", err)
		}
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("cluster key file %s: not found; every head of a cluster needs the same one: make it once with `amld keygen > FILE`, copy it to each head (mode 0600) and pass --cluster-key-file FILE", keyPath)
	default:
		return fmt.Errorf("cluster key: %w", err)
	}
	c.bootHTTP = newHeadHTTPClient(&tls.Config{InsecureSkipVerify: true}) // trust comes from the sealed body
	c.peerHTTP = newHeadHTTPClient(nil)

	if alone {
		if err := c.makeCA(cfg.ID, s.cfg.Logger); err != nil {
			return err
		}
		if err := c.writeMark(memberMark{Role: roleBootstrap}); err != nil {
			return err
		}
	}
	if c.mark.Role != "" {
		c.bootstrapper = c.mark.Role == roleBootstrap
		if err := c.loadTLS(cfg.ID); err != nil {
			return err
		}
	} else if !c.insecure {
		// Until it has joined, a head serves the sealed peer protocol
		// under a throwaway certificate.
		if err := c.throwawayCert(); err != nil {
			return err
		}
	}
	if !c.insecure {
		ln = tls.NewListener(ln, &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.currentCert(), nil },
		})
	}
	s.ln = ln
	if c.mark.Role != "" {
		return s.openStore(c.bootstrapper)
	}
	return nil
}

// newHeadHTTPClient is the client heads call each other with.
func newHeadHTTPClient(tc *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: 5 * time.Second,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}}
}

func (c *clusterState) close() {
	for _, hc := range []*http.Client{c.bootHTTP, c.peerHTTP} {
		hc.CloseIdleConnections()
	}
}

func (c *clusterState) writeMark(m memberMark) error {
	b, _ := json.Marshal(m)
	if err := writeSecret(filepath.Join(c.dataDir, memberFile), string(b)); err != nil {
		return err
	}
	c.mu.Lock()
	c.mark = m
	c.mu.Unlock()
	return nil
}

func (c *clusterState) role() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mark.Role
}

func (c *clusterState) tlsPath(name string) string { return filepath.Join(c.dataDir, tlsDir, name) }

// makeCA makes the cluster CA and this head's certificate, unless this
// head has them already. The CA key stays in DATA_DIR/tls/ca.key only
// until the leader has sealed it into Raft.
func (c *clusterState) makeCA(id string, log interface{ Info(string, ...any) }) error {
	if fileExists(c.tlsPath("head.crt")) {
		return nil
	}
	ca, caKey, err := pki.NewCA(id, time.Now())
	if err != nil {
		return err
	}
	key, keyPEM, err := pki.NewKey()
	if err != nil {
		return err
	}
	certPEM, err := ca.IssueHead(&key.PublicKey, id, c.hosts, time.Now())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(c.dataDir, tlsDir), 0o700); err != nil {
		return err
	}
	for name, b := range map[string][]byte{"ca.key": caKey, "head.key": keyPEM, "head.crt": certPEM, "ca.crt": ca.CertPEM} {
		if err := writeSecret(c.tlsPath(name), string(b)); err != nil {
			return err
		}
	}
	log.Info("made the cluster CA", "ca_file", c.tlsPath("ca.crt"))
	return nil
}

// loadTLS loads this head's certificate and the CA (and the CA key, on a
// bootstrapper that has not sealed it into Raft yet).
func (c *clusterState) loadTLS(id string) error {
	if c.bootstrapper && !fileExists(c.tlsPath("head.crt")) {
		if err := c.makeCA(id, discardInfo{}); err != nil { // a head of before TLS
			return err
		}
	}
	if b, err := os.ReadFile(c.tlsPath("ca.key")); err == nil {
		caPEM, err := os.ReadFile(c.tlsPath("ca.crt"))
		if err != nil {
			return err
		}
		if c.pendingCA, err = pki.LoadCA(caPEM, b); err != nil {
			return fmt.Errorf("%s: %w", c.tlsPath("ca.key"), err)
		}
	}
	if c.insecure && !fileExists(c.tlsPath("head.crt")) {
		return nil
	}
	return c.useCert(c.tlsPath("ca.crt"), c.tlsPath("head.crt"), c.tlsPath("head.key"))
}

type discardInfo struct{}

func (discardInfo) Info(string, ...any) {}

// useCert starts using a CA and head certificate from files.
func (c *clusterState) useCert(caFile, certFile, keyFile string) error {
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return fmt.Errorf("TLS: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("TLS: %w", err)
	}
	peer, err := pki.PeerTLS(caPEM, cert)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cert, c.caPEM = &cert, caPEM
	if !c.insecure {
		c.peerTLS = peer
		c.peerHTTP = newHeadHTTPClient(peer)
	}
	return nil
}

// throwawayCert makes a self-signed certificate for the API until this
// head has its own.
func (c *clusterState) throwawayCert() error {
	ca, _, err := pki.NewCA("joining", time.Now())
	if err != nil {
		return err
	}
	key, keyPEM, err := pki.NewKey()
	if err != nil {
		return err
	}
	certPEM, err := ca.IssueHead(&key.PublicKey, "joining", c.hosts, time.Now())
	if err != nil {
		return err
	}
	cert, err := tls.X509KeyPair(append(certPEM, ca.CertPEM...), keyPEM)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.cert = &cert
	c.mu.Unlock()
	return nil
}

func (c *clusterState) currentCert() *tls.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cert
}

// certified reports whether this head has its cluster certificate (always
// true without TLS).
func (c *clusterState) certified() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.insecure || c.peerTLS != nil
}

// headClient returns the client for calls to a peer head's API.
func (c *clusterState) headClient() *http.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peerHTTP
}

// CAPEM returns the cluster CA's certificate (nil without TLS).
func (c *clusterState) CAPEM() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.insecure {
		return nil
	}
	return c.caPEM
}

// secretsOf opens the sealed secrets of a state (cached per record).
func (c *clusterState) secretsOf(st *raftstore.State) (string, *pki.CA) {
	sec := st.Secrets()
	if sec == nil {
		return "", nil
	}
	c.secMu.Lock()
	defer c.secMu.Unlock()
	if c.secCached == sec {
		return c.secToken, c.secCA
	}
	tok, err := c.key.Open(pki.PurposeJoinToken, sec.SealedJoinToken)
	if err != nil {
		return "", nil
	}
	var ca *pki.CA
	if keyPEM, err := c.key.Open(pki.PurposeCAKey, sec.SealedCAKey); err == nil {
		ca, _ = pki.LoadCA([]byte(sec.CACertPEM), keyPEM)
	}
	c.secCached, c.secToken, c.secCA = sec, string(tok), ca
	return c.secToken, c.secCA
}

func (c *clusterState) joinTokenOf(st *raftstore.State) string {
	tok, _ := c.secretsOf(st)
	return tok
}

// storeIsOpen reports whether the Raft state is open here.
func (s *Server) storeIsOpen() bool {
	select {
	case <-s.storeOpen:
		return true
	default:
		return false
	}
}

// headURLs lists the heads' API URLs, this head first: what agents are
// given.
func (s *Server) headURLs() []string {
	out := []string{s.URL()}
	for _, h := range s.store.State().Heads() {
		if h.ID != s.cfg.ID && !slices.Contains(out, h.APIAddr) {
			out = append(out, h.APIAddr)
		}
	}
	return out
}

// raftAddr is the Raft address peers reach this head at.
func (s *Server) raftAddr() string { return s.store.RaftAddr() }
