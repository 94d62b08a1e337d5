package nodes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
)

// Labels of what the docker provider makes (the run containers' labels
// are the agent's: amld.role=run, amld.node, amld.run...).
const (
	labelRole    = "amld.role"    // "node" or "network" here
	labelHead    = "amld.head"    // the provider instance that made it
	labelNode    = "amld.node"    // a node container's node ID
	labelTarget  = "amld.target"  // the cluster
	labelForward = "amld.forward" // "LISTEN>DST" when the node reaches the head through a forwarder
)

// In-container paths of a node container.
const (
	nodeTokenPath  = "/run/amld/join.token"
	nodeCAPath     = "/run/amld/ca.crt"
	nodeSocketPath = "/var/run/docker.sock"
)

// DockerConfig configures the docker provider.
type DockerConfig struct {
	// Image is the node image; its entrypoint is a static amld binary
	// (`make images` builds amld/node:latest). Required.
	Image string
	// DataDir holds the nodes: DataDir/<nodeID>/ with join.token and the
	// agent's work dir, mounted into the node container at the same path
	// (run containers mount their work dirs from there, so the engine must
	// see this path: the head runs on the engine's host). It also keeps
	// the provider's instance ID. Required.
	DataDir string
	// HeadAddr, when set, is the head API URL node containers use, as is.
	// Otherwise each head address the leader gives is used, except that a
	// loopback or unspecified host is replaced by the node network's
	// gateway, where the provider forwards to the head when the head
	// listens on loopback only.
	HeadAddr string
	// Labels are put on every container and network the provider makes,
	// and on the run containers of its nodes' agents (tests clean up by
	// them).
	Labels map[string]string
	// StopNodesOnClose makes Close delete every node (amld dev).
	// Otherwise node containers outlive the head, which finds them again.
	StopNodesOnClose bool
	// StopTimeout is how long Delete gives an agent to stop after SIGTERM
	// (default 10s).
	StopTimeout time.Duration
	// Logger receives the provider's logs; nil discards them.
	Logger *slog.Logger
}

// Docker is the `docker` provider: each node is a container on the Docker
// Engine running `amld agent`, with the engine's socket (its runs are
// containers beside it, sharing its network), on a network per cluster
// where every node has its own address. The agents keep their run
// containers across a restart of the node container and adopt them.
type Docker struct {
	cfg      DockerConfig
	log      *slog.Logger
	cli      *client.Client
	instance string // labels everything this provider made
	socket   string // the engine's unix socket on this host
	uid, gid int
	sockGID  int

	netMu sync.Mutex // serializes making networks: the engine allows two of one name

	mu       sync.Mutex
	closed   bool
	creating map[string]int        // creates in flight by target
	nets     map[string]netInfo    // the clusters' networks, by target
	fwd      map[string]*forwarder // listen address → forwarder
}

var _ Provider = (*Docker)(nil)

// NewDocker connects to the engine (client.FromEnv) and checks that it
// answers (ctx bounds the check) and has the node image.
func NewDocker(ctx context.Context, cfg DockerConfig) (*Docker, error) {
	if cfg.Image == "" {
		return nil, errors.New("docker provider: Image is required")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("docker provider: DataDir is required")
	}
	if cfg.StopTimeout < 0 {
		return nil, fmt.Errorf("docker provider: StopTimeout %s must not be negative", cfg.StopTimeout)
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if cfg.HeadAddr != "" {
		if _, _, err := splitHeadURL(cfg.HeadAddr); err != nil {
			return nil, fmt.Errorf("docker provider: HeadAddr: %w", err)
		}
	}
	var err error
	if cfg.DataDir, err = filepath.Abs(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("docker provider: DataDir: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("docker provider: DataDir: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker provider: %w", err)
	}
	fail := func(err error) (*Docker, error) {
		cli.Close()
		return nil, err
	}
	if _, err := cli.Ping(ctx); err != nil {
		return fail(fmt.Errorf("docker provider: no engine answers: %w", err))
	}
	sock, ok := strings.CutPrefix(cli.DaemonHost(), "unix://")
	if !ok {
		return fail(fmt.Errorf("docker provider: the engine at %s is not a local unix socket, which node containers must mount", cli.DaemonHost()))
	}
	fi, err := os.Stat(sock)
	if err != nil {
		return fail(fmt.Errorf("docker provider: engine socket: %w", err))
	}
	if _, err := cli.ImageInspect(ctx, cfg.Image); err != nil {
		return fail(fmt.Errorf("docker provider: node image %q: %w (make images builds it)", cfg.Image, err))
	}
	inst, err := instanceID(filepath.Join(cfg.DataDir, "instance"))
	if err != nil {
		return fail(fmt.Errorf("docker provider: %w", err))
	}
	d := &Docker{
		cfg: cfg, log: log, cli: cli, instance: inst, socket: sock,
		uid: os.Geteuid(), gid: os.Getegid(),
		creating: map[string]int{}, nets: map[string]netInfo{}, fwd: map[string]*forwarder{},
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		d.sockGID = int(st.Gid)
	}
	return d, nil
}

// netInfo is a cluster's network.
type netInfo struct{ id, gw string }

// instanceID reads the provider's instance ID from path, making it once.
func instanceID(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b[:])
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write instance ID: %w", err)
	}
	return id, nil
}

// Name implements Provider.
func (d *Docker) Name() string { return "docker" }

// Runtimes says that this provider's nodes run images, and only images:
// a node container holds amld alone, so a run needs an image of its own.
func (d *Docker) Runtimes() []string { return []string{"docker"} }

// ListInterval says how often the leader may call List: it is one cheap
// engine call, so lost node containers are found within seconds.
func (d *Docker) ListInterval() time.Duration { return 2 * time.Second }

// Instance is the ID that labels (amld.head) everything this provider made.
func (d *Docker) Instance() string { return d.instance }

func nodeContainerName(nodeID string) string { return "amld-node-" + nodeID }

// Create implements Provider: a node container on the cluster's network,
// running `amld agent` with the join token in a read-only file.
func (d *Docker) Create(ctx context.Context, spec NodeSpec) (string, error) {
	if !safeNodeID(spec.NodeID) || strings.ContainsAny(spec.NodeID, " :") {
		return "", fmt.Errorf("docker provider: node ID %q is not a safe name", spec.NodeID)
	}
	if spec.JoinToken == "" {
		return "", errors.New("docker provider: no join token for the agent")
	}
	heads := spec.HeadAddrs
	if d.cfg.HeadAddr != "" {
		heads = []string{d.cfg.HeadAddr}
	}
	if len(heads) == 0 {
		return "", errors.New("docker provider: no head address for the agent")
	}
	name := nodeContainerName(spec.NodeID)
	if ins, err := d.cli.ContainerInspect(ctx, name); err == nil && ins.State != nil && ins.State.Running {
		return ins.ID, nil // made already
	}
	if !d.beginCreate(spec.Target) {
		return "", errors.New("docker provider: closed")
	}
	defer d.endCreate(spec.Target)

	netName, gw, err := d.ensureNetwork(ctx, spec.Target)
	if err != nil {
		return "", err
	}
	headURLs, forward, err := d.headURLs(heads, gw)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(d.cfg.DataDir, spec.NodeID)
	work := filepath.Join(dir, "work")
	if err := os.MkdirAll(work, 0o700); err != nil {
		return "", fmt.Errorf("docker provider: %w", err)
	}
	tokenFile := filepath.Join(dir, "join.token")
	if err := os.WriteFile(tokenFile, []byte(spec.JoinToken+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("docker provider: write join token: %w", err)
	}
	if err := os.Chmod(tokenFile, 0o600); err != nil {
		return "", fmt.Errorf("docker provider: %w", err)
	}
	binds := []string{
		d.socket + ":" + nodeSocketPath,
		tokenFile + ":" + nodeTokenPath + ":ro",
		work + ":" + work,
	}
	var tlsArgs []string
	if len(spec.CACertPEM) > 0 {
		// The heads speak TLS: the agent checks them against the cluster
		// CA, under the name the head's certificate carries (the gateway
		// address it dials may not be in it).
		caFile := filepath.Join(dir, "ca.crt")
		if err := os.WriteFile(caFile, spec.CACertPEM, 0o644); err != nil {
			return "", fmt.Errorf("docker provider: write the cluster CA: %w", err)
		}
		binds = append(binds, caFile+":"+nodeCAPath+":ro")
		tlsArgs = []string{"--ca-file", nodeCAPath}
		if len(heads) > 0 {
			if host, _, err := splitHeadURL(heads[0]); err == nil && forward != "" {
				tlsArgs = append(tlsArgs, "--tls-server-name", host)
			}
		}
	}
	res := spec.Size.Resources()
	cmd := []string{"agent",
		"--head", strings.Join(headURLs, ","),
		"--node-id", spec.NodeID,
		"--target", spec.Target,
		"--join-token-file", nodeTokenPath,
		"--work-dir", work,
		"--cpus", strconv.Itoa(res.CPUs),
		"--memory-mb", strconv.FormatInt(res.MemoryMB, 10),
		"--gpus", strconv.Itoa(res.GPUs),
		"--keep-containers",
		"--docker-network", "container:" + name,
		"--docker-label", labelHead + "=" + d.instance,
	}
	cmd = append(cmd, tlsArgs...)
	labels := d.labels("node")
	labels[labelNode] = spec.NodeID
	labels[labelTarget] = spec.Target
	if forward != "" {
		labels[labelForward] = forward
	}
	for _, k := range sortedKeys(d.cfg.Labels) {
		cmd = append(cmd, "--docker-label", k+"="+d.cfg.Labels[k])
	}
	cfg := &container.Config{
		Image:    d.cfg.Image,
		Cmd:      cmd,
		Hostname: spec.NodeID,
		Labels:   labels,
	}
	hc := &container.HostConfig{
		Binds:       binds,
		NetworkMode: container.NetworkMode(netName),
		LogConfig:   container.LogConfig{Type: "json-file"},
	}
	if d.uid != 0 {
		// The agent runs as the head's user, so that the head can remove
		// what its runs leave in the node's dir; the engine's socket group
		// lets it start them.
		cfg.User = fmt.Sprintf("%d:%d", d.uid, d.gid)
		hc.GroupAdd = []string{strconv.Itoa(d.sockGID)}
	}
	// A stopped container of this name is a leftover: replace it.
	if err := d.cli.ContainerRemove(ctx, name, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("docker provider: remove old container %s: %w", name, err)
	}
	created, err := d.cli.ContainerCreate(ctx, cfg, hc, nil, nil, name)
	if err != nil {
		return "", fmt.Errorf("docker provider: create node container: %w", err)
	}
	if err := d.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		_ = d.cli.ContainerRemove(rctx, created.ID, container.RemoveOptions{Force: true})
		cancel()
		return "", fmt.Errorf("docker provider: start node container: %w", err)
	}
	d.log.Info("started node container", "node", spec.NodeID, "container", name, "network", netName)
	return created.ID, nil
}

// Delete implements Provider: the node's run containers, then its
// container (SIGTERM to the agent, StopTimeout, SIGKILL), then its dir.
func (d *Docker) Delete(ctx context.Context, nodeID, providerID string) error {
	if !safeNodeID(nodeID) {
		return fmt.Errorf("docker provider: node ID %q is not a safe name", nodeID)
	}
	if err := d.removeRuns(ctx, nodeID); err != nil {
		return err
	}
	name := nodeContainerName(nodeID)
	secs := int(d.cfg.StopTimeout.Seconds())
	if err := d.cli.ContainerStop(ctx, name, container.StopOptions{Timeout: &secs}); err != nil && !cerrdefs.IsNotFound(err) {
		d.log.Warn("stop node container", "node", nodeID, "err", err)
	}
	if err := d.cli.ContainerRemove(ctx, name, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("docker provider: remove node container %s: %w", name, err)
	}
	// Runs the agent started while it stopped.
	if err := d.removeRuns(ctx, nodeID); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(d.cfg.DataDir, nodeID)); err != nil {
		return fmt.Errorf("docker provider: remove node dir: %w", err)
	}
	d.log.Info("removed node container", "node", nodeID)
	return nil
}

// removeRuns removes the run containers of nodeID.
func (d *Docker) removeRuns(ctx context.Context, nodeID string) error {
	runs, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", labelRole+"=run"),
		filters.Arg("label", labelNode+"="+nodeID),
	)})
	if err != nil {
		return fmt.Errorf("docker provider: list run containers: %w", err)
	}
	for _, c := range runs {
		if err := d.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("docker provider: remove run container: %w", err)
		}
	}
	return nil
}

// labels returns the labels of what this provider makes, for role.
func (d *Docker) labels(role string) map[string]string {
	l := map[string]string{}
	for k, v := range d.cfg.Labels {
		l[k] = v
	}
	l[labelRole] = role
	l[labelHead] = d.instance
	return l
}

// beginCreate counts a create in flight for target (networks in use are
// not collected); false once the provider is closed.
func (d *Docker) beginCreate(target string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	d.creating[target]++
	return true
}

func (d *Docker) endCreate(target string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.creating[target]--; d.creating[target] <= 0 {
		delete(d.creating, target)
	}
}

// headURLs gives the URLs node containers use for heads: a loopback or
// unspecified host becomes the network's gateway gw, and when such a head
// listens on loopback only, a forwarder on gw joins the two. forward
// describes the forwarder ("" for none), for List to restore it after a
// restart of the head.
func (d *Docker) headURLs(heads []string, gw string) (urls []string, forward string, err error) {
	for _, h := range heads {
		host, port, err := splitHeadURL(h)
		if err != nil {
			return nil, "", fmt.Errorf("docker provider: head address %q: %w", h, err)
		}
		if !isLocalHost(host) || d.cfg.HeadAddr != "" {
			urls = append(urls, h)
			continue
		}
		listen := joinHostPort(gw, port)
		dst := joinHostPort("127.0.0.1", port)
		if err := d.ensureForward(listen, dst); err != nil {
			return nil, "", err
		}
		if forward == "" {
			forward = listen + ">" + dst
		}
		scheme := "http"
		if strings.HasPrefix(h, "https://") {
			scheme = "https"
		}
		urls = append(urls, scheme+"://"+listen)
	}
	return urls, forward, nil
}

// ensureForward makes sure listen is forwarded to dst (or is served by the
// head itself).
func (d *Docker) ensureForward(listen, dst string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("docker provider: closed")
	}
	if _, ok := d.fwd[listen]; ok {
		return nil
	}
	f, err := listenForward(listen, dst, d.log)
	if err != nil {
		return fmt.Errorf("docker provider: forward %s to the head: %w", listen, err)
	}
	if f != nil {
		d.log.Info("forwarding the node network's gateway to the head", "listen", listen, "head", dst)
	}
	d.fwd[listen] = f // nil: the head listens there itself
	return nil
}

// splitHeadURL returns the host and port of a head URL (or host:port).
func splitHeadURL(s string) (host, port string, err error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", "", err
	}
	if u.Port() == "" {
		return "", "", errors.New("no port")
	}
	return u.Hostname(), u.Port(), nil
}

// isLocalHost reports whether host names this machine only from itself.
func isLocalHost(host string) bool {
	switch host {
	case "", "localhost", "0.0.0.0", "::", "127.0.0.1", "::1":
		return true
	}
	return strings.HasPrefix(host, "127.")
}

func joinHostPort(host, port string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}

// Close stops the forwarders; with StopNodesOnClose it first deletes every
// node and network this provider made.
func (d *Docker) Close(ctx context.Context) error {
	var errs []error
	if d.cfg.StopNodesOnClose {
		insts, err := d.List(ctx)
		if err != nil {
			errs = append(errs, err)
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, in := range insts {
			wg.Go(func() {
				if err := d.Delete(ctx, in.NodeID, in.ProviderID); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	d.mu.Lock()
	d.closed = true
	fwds := d.fwd
	d.fwd = map[string]*forwarder{}
	d.mu.Unlock()
	if d.cfg.StopNodesOnClose {
		if err := d.removeNetworks(ctx, nil); err != nil {
			errs = append(errs, err)
		}
	}
	for _, f := range fwds {
		if f != nil {
			f.close()
		}
	}
	d.cli.Close()
	return errors.Join(errs...)
}

// networkName is the cluster's network.
func (d *Docker) networkName(target string) string {
	return "amld-" + d.instance + "-" + target
}

// ensureNetwork returns the cluster's network (its ID) and its gateway,
// making the network if needed.
func (d *Docker) ensureNetwork(ctx context.Context, target string) (id, gw string, err error) {
	name := d.networkName(target)
	d.mu.Lock()
	n, ok := d.nets[target]
	d.mu.Unlock()
	if ok {
		return n.id, n.gw, nil
	}
	d.netMu.Lock()
	defer d.netMu.Unlock()
	ins, err := d.findNetwork(ctx, target)
	if err == nil && ins == nil {
		labels := d.labels("network")
		labels[labelTarget] = target
		if _, err = d.cli.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge", Labels: labels}); err != nil {
			return "", "", fmt.Errorf("docker provider: create network %s: %w", name, err)
		}
		d.log.Info("created the cluster's network", "network", name, "target", target)
		ins, err = d.findNetwork(ctx, target)
		if err == nil && ins == nil {
			err = errors.New("not found after its creation")
		}
	}
	if err != nil {
		return "", "", fmt.Errorf("docker provider: network %s: %w", name, err)
	}
	for _, c := range ins.IPAM.Config {
		if c.Gateway != "" && !strings.Contains(c.Gateway, ":") {
			gw = c.Gateway
			break
		}
	}
	if gw == "" {
		return "", "", fmt.Errorf("docker provider: network %s has no IPv4 gateway", name)
	}
	d.mu.Lock()
	d.nets[target] = netInfo{id: ins.ID, gw: gw}
	d.mu.Unlock()
	return ins.ID, gw, nil
}

// sortedKeys returns m's keys in order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// findNetwork returns the cluster's network (the oldest, should there be
// several), or nil.
func (d *Docker) findNetwork(ctx context.Context, target string) (*network.Summary, error) {
	nets, err := d.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", labelHead+"="+d.instance),
		filters.Arg("label", labelRole+"=network"),
		filters.Arg("label", labelTarget+"="+target),
	)})
	if err != nil || len(nets) == 0 {
		return nil, err
	}
	sort.Slice(nets, func(i, j int) bool {
		if !nets[i].Created.Equal(nets[j].Created) {
			return nets[i].Created.Before(nets[j].Created)
		}
		return nets[i].ID < nets[j].ID
	})
	return &nets[0], nil
}
