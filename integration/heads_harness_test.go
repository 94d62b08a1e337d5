package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// The multi-head tests run each head as an `amld server` process in a
// network namespace of its own (ip netns), joined to a bridge in the root
// namespace where the test runs. That gives every head its own address on
// one port (7070 API, 7071 Raft) as on real machines, lets the test kill
// a head with SIGKILL, and cut a head off its peers (blackhole routes in
// both namespaces) while the test still reaches it. Local-provider agents
// are children of their head and live in its namespace. Everything is
// named with a random prefix and removed in t.Cleanup.

// netLab is a bridge and the namespaces on it.
type netLab struct {
	t        testing.TB
	prefix   string // "aml" + 4 hex digits: every link and namespace name starts with it
	subnet   string // "10.231.X"
	hosts    []string
	iptables bool // a FORWARD rule was added
}

func ipCmd(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newNetLab(t testing.TB) *netLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the multi-head tests make network namespaces: run them as root (CI does)")
	}
	var b [2]byte
	_, _ = rand.Read(b[:])
	l := &netLab{t: t, prefix: "aml" + hex.EncodeToString(b[:])}
	routes, _ := exec.Command("ip", "route").Output()
	for {
		n, _ := rand.Int(rand.Reader, big.NewInt(250))
		l.subnet = fmt.Sprintf("10.231.%d", n.Int64()+1)
		if !bytes.Contains(routes, []byte(l.subnet+".0/24")) {
			break
		}
	}
	t.Cleanup(l.close)
	ipCmd(t, "link", "add", l.prefix+"br", "type", "bridge")
	ipCmd(t, "addr", "add", l.subnet+".1/24", "dev", l.prefix+"br")
	ipCmd(t, "link", "set", l.prefix+"br", "up")
	// Where br_netfilter is loaded (Docker loads it), bridged frames go
	// through iptables' FORWARD chain, whose policy Docker sets to DROP:
	// let this bridge's own traffic through.
	if _, err := exec.LookPath("iptables"); err == nil {
		if out, err := exec.Command("iptables", l.forwardRule("-I")...).CombinedOutput(); err != nil {
			t.Fatalf("iptables: %v\n%s", err, out)
		}
		l.iptables = true
	}
	return l
}

func (l *netLab) forwardRule(op string) []string {
	return []string{op, "FORWARD", "-i", l.prefix + "br", "-o", l.prefix + "br", "-j", "ACCEPT"}
}

// addHost makes namespace i with address subnet.(10+i) and returns both.
func (l *netLab) addHost(i int) (ns, ip string) {
	t := l.t
	ns = fmt.Sprintf("%sh%d", l.prefix, i)
	ip = fmt.Sprintf("%s.%d", l.subnet, 10+i)
	veth, peer := fmt.Sprintf("%sv%d", l.prefix, i), fmt.Sprintf("%sp%d", l.prefix, i)
	ipCmd(t, "netns", "add", ns)
	l.hosts = append(l.hosts, ns)
	ipCmd(t, "link", "add", veth, "type", "veth", "peer", "name", peer)
	ipCmd(t, "link", "set", peer, "netns", ns)
	ipCmd(t, "link", "set", veth, "master", l.prefix+"br")
	ipCmd(t, "link", "set", veth, "up")
	ipCmd(t, "netns", "exec", ns, "ip", "link", "set", "lo", "up")
	ipCmd(t, "netns", "exec", ns, "ip", "addr", "add", ip+"/24", "dev", peer)
	ipCmd(t, "netns", "exec", ns, "ip", "link", "set", peer, "up")
	return ns, ip
}

// cut drops all traffic between the two namespaces (both directions).
func (l *netLab) cut(nsA, ipA, nsB, ipB string) {
	ipCmd(l.t, "netns", "exec", nsA, "ip", "route", "add", "blackhole", ipB+"/32")
	ipCmd(l.t, "netns", "exec", nsB, "ip", "route", "add", "blackhole", ipA+"/32")
}

// heal undoes cut.
func (l *netLab) heal(nsA, ipA, nsB, ipB string) {
	ipCmd(l.t, "netns", "exec", nsA, "ip", "route", "del", "blackhole", ipB+"/32")
	ipCmd(l.t, "netns", "exec", nsB, "ip", "route", "del", "blackhole", ipA+"/32")
}

func (l *netLab) close() {
	for _, ns := range l.hosts {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
	_ = exec.Command("ip", "link", "del", l.prefix+"br").Run()
	if l.iptables {
		_ = exec.Command("iptables", l.forwardRule("-D")...).Run()
	}
}

// nhead is one `amld server` in its namespace.
type nhead struct {
	t       testing.TB
	id      string
	ns, ip  string
	dataDir string
	args    []string
	cmd     *exec.Cmd
	out     *syncBuffer
	done    chan struct{}
}

func (h *nhead) url() string { return "https://" + h.ip + ":7070" }

func (h *nhead) start() {
	h.t.Helper()
	args := append([]string{"netns", "exec", h.ns, filepath.Join(binDir, "amld"), "server"}, h.args...)
	h.cmd = exec.Command("ip", args...)
	if env := os.Getenv("AMLD_BENCH_HEAD_ENV"); env != "" {
		h.cmd.Env = append(os.Environ(), strings.Fields(env)...)
	}
	if h.out == nil {
		h.out = &syncBuffer{}
	}
	fmt.Fprintf(h.out, "---- start %s\n", time.Now().Format(time.RFC3339Nano))
	h.cmd.Stdout, h.cmd.Stderr = h.out, h.out
	if err := h.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) {
		_ = c.Wait()
		close(done)
	}(h.cmd, h.done)
}

func (h *nhead) running() bool {
	select {
	case <-h.done:
		return false
	default:
		return h.cmd != nil
	}
}

func (h *nhead) kill9() {
	if h.running() {
		_ = h.cmd.Process.Signal(syscall.SIGKILL)
		<-h.done
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (h *nhead) stop() {
	if !h.running() {
		return
	}
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.done:
	case <-time.After(20 * time.Second):
		h.kill9()
		h.t.Errorf("head %s did not stop within 20s of SIGTERM", h.id)
	}
}

// hcluster is a cluster of heads in namespaces.
type hcluster struct {
	t       testing.TB
	lab     *netLab
	keyFile string
	heads   []*nhead
	token   string
	caPEM   []byte
	caFile  string
}

// startCluster starts n heads with --bootstrap-expect n and waits until
// all are voters; extra flags go to every head.
func startCluster(t testing.TB, n int, extra ...string) *hcluster {
	t.Helper()
	c := &hcluster{t: t, lab: newNetLab(t)}
	dir := t.TempDir()
	c.keyFile = filepath.Join(dir, "cluster.key")
	key, err := exec.Command(filepath.Join(binDir, "amld"), "keygen").Output()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for i := 1; i <= n; i++ {
		ns, ip := c.lab.addHost(i)
		c.heads = append(c.heads, &nhead{t: t, id: fmt.Sprintf("h%d", i), ns: ns, ip: ip, dataDir: filepath.Join(dir, fmt.Sprintf("h%d", i))})
		addrs = append(addrs, ip+":7070")
	}
	t.Cleanup(func() {
		for _, h := range c.heads {
			h.kill9()
			stopLocalNodes(h.dataDir)
			if t.Failed() {
				t.Logf("---- output of head %s:\n%s", h.id, tail(h.out.String(), 60))
			}
		}
	})
	for i, h := range c.heads {
		var others []string
		for j, a := range addrs {
			if j != i {
				others = append(others, a)
			}
		}
		h.args = c.headArgs(h, "--bootstrap-expect", fmt.Sprint(n), "--join", strings.Join(others, ","))
		h.args = append(h.args, extra...)
		h.start()
	}
	// h1 has the smallest ID: it bootstraps and keeps the admin token.
	waitFor(t, 30*time.Second, "the cluster to bootstrap", func() (bool, string) {
		tok, err1 := os.ReadFile(filepath.Join(c.heads[0].dataDir, "admin.token"))
		ca, err2 := os.ReadFile(filepath.Join(c.heads[0].dataDir, "tls", "ca.crt"))
		if err1 != nil || err2 != nil {
			return false, fmt.Sprint(err1, err2)
		}
		c.token, c.caPEM = strings.TrimSpace(string(tok)), ca
		return true, ""
	})
	c.caFile = filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(c.caFile, c.caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	c.waitVoters(n)
	return c
}

// tail returns the last lines of s (for failure messages).
func tail(s string, lines int) string {
	ls := strings.Split(s, "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// headArgs is the command line of a head in this cluster.
func (c *hcluster) headArgs(h *nhead, extra ...string) []string {
	return append([]string{"--id", h.id, "--data-dir", h.dataDir, "--listen", h.ip + ":7070", "--raft", h.ip + ":7071",
		"--cluster-key-file", c.keyFile, "--heartbeat-ttl", "30s"}, extra...)
}

// client reaches the given heads (all when none is given).
func (c *hcluster) client(heads ...*nhead) *api.Client {
	c.t.Helper()
	if len(heads) == 0 {
		heads = c.heads
	}
	var addrs []string
	for _, h := range heads {
		addrs = append(addrs, h.url())
	}
	cl, err := api.NewClient(api.Config{Addresses: addrs, Token: c.token, CACertPEM: c.caPEM})
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// status asks one head for its status.
func (c *hcluster) status(h *nhead) (*api.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.client(h).Status(ctx)
}

// leader waits until the running heads agree on a leader and returns it.
func (c *hcluster) leader() *nhead {
	c.t.Helper()
	var out *nhead
	waitFor(c.t, 30*time.Second, "a leader", func() (bool, string) {
		out = nil
		for _, h := range c.heads {
			if !h.running() {
				continue
			}
			st, err := c.status(h)
			if err == nil && st.State == "Leader" {
				out = h
				return true, ""
			}
		}
		return false, "no head says it leads"
	})
	return out
}

// waitVoters waits until the cluster has n voters, all answering.
func (c *hcluster) waitVoters(n int) {
	c.t.Helper()
	cl := c.client()
	waitFor(c.t, 60*time.Second, fmt.Sprintf("%d voters", n), func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ms, err := cl.Members(ctx)
		if err != nil {
			return false, err.Error()
		}
		ok := 0
		for _, m := range ms {
			if m.Voter && m.Reachable && m.APIAddr != "" {
				ok++
			}
		}
		return ok == n && len(ms) == n, fmt.Sprintf("%+v", ms)
	})
}

// ctl runs amlctl against the cluster.
func (c *hcluster) ctl(args ...string) (string, string, int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var addrs []string
	for _, h := range c.heads {
		addrs = append(addrs, h.ip+":7070")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "amlctl"), args...)
	cmd.Env = append(os.Environ(), "AMLCTL_ADDR="+strings.Join(addrs, ","), "AMLCTL_TOKEN="+c.token,
		"AMLCTL_CA_FILE="+c.caFile, "AMLCTL_CONFIG="+filepath.Join(c.t.TempDir(), "none"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("amlctl %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}
