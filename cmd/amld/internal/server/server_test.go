package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/nodes"
)

// fakeProvider records calls and makes no machines: for tests of the head
// alone (the integration tests use the real local provider).
type fakeProvider struct {
	mu      sync.Mutex
	created []nodes.NodeSpec
	deleted []string
	failErr error
}

var _ nodes.Provider = (*fakeProvider)(nil)

func (p *fakeProvider) Name() string { return "fake" }

func (p *fakeProvider) Create(_ context.Context, spec nodes.NodeSpec) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failErr != nil {
		return "", p.failErr
	}
	p.created = append(p.created, spec)
	return "fake:" + spec.NodeID, nil
}

func (p *fakeProvider) Delete(_ context.Context, nodeID, _ string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.deleted = append(p.deleted, nodeID)
	return nil
}

func (p *fakeProvider) List(context.Context) ([]nodes.Instance, error) { return nil, nil }

// testServer runs a head with a fake provider on loopback ports.
type testServer struct {
	srv    *Server
	prov   *fakeProvider
	client *api.Client
	token  string // the admin's, which client sends
	stdout *lockedBuffer
	cancel context.CancelFunc
	done   chan error
}

func freeAddr(t testing.TB) string {
	t.Helper()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		next, _ := nextPort(addr)
		if l2, err := net.Listen("tcp", next); err == nil {
			l2.Close()
			return addr
		}
	}
}

// startTestServer starts a head; mods change its configuration first.
func startTestServer(t testing.TB, mods ...func(*Config)) *testServer {
	t.Helper()
	ts, cfg := launchTestServer(t, mods...)
	ts.waitReady(t)
	tok, err := os.ReadFile(filepath.Join(cfg.DataDir, adminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	ts.token = strings.TrimSpace(string(tok))
	ts.client, _ = api.NewClient(api.Config{Addresses: []string{ts.srv.URL()}, Token: ts.token})
	return ts
}

// launchTestServer starts a head without waiting for it to be ready.
func launchTestServer(t testing.TB, mods ...func(*Config)) (*testServer, Config) {
	t.Helper()
	prov := &fakeProvider{}
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = freeAddr(t)
	cfg.ID = "head-1"
	cfg.Providers = map[string]nodes.Provider{"fake": prov}
	cfg.DefaultProvider = "fake"
	cfg.Cluster.InsecureDev = true
	out := &lockedBuffer{}
	cfg.Stdout = out
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	} else {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for _, mod := range mods {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{srv: srv, prov: prov, stdout: out, cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- srv.Run(ctx) }()
	t.Cleanup(ts.stop)
	return ts, cfg
}

// waitReady waits for the head to serve.
func (ts *testServer) waitReady(t testing.TB) {
	t.Helper()
	select {
	case <-ts.srv.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("server not ready")
	}
}

func (ts *testServer) stop() {
	ts.cancel()
	select {
	case <-ts.done:
	case <-time.After(20 * time.Second):
	}
}

func TestBootstrapPrintsAdminTokenOnceAndStoresItHashed(t *testing.T) {
	ts := startTestServer(t)
	var tok string
	for deadline := time.Now().Add(5 * time.Second); tok == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if parts := strings.SplitAfter(ts.stdout.String(), "0600):\n\n"); len(parts) == 2 {
			tok = strings.TrimSpace(strings.Split(parts[1], "\n")[0])
		}
	}
	if tok == "" {
		t.Fatalf("no token printed: %q", ts.stdout.String())
	}
	w, err := ts.client.WithToken(tok).Whoami(context.Background())
	if err != nil || w.Role != api.RoleAdmin {
		t.Fatalf("whoami with the printed token: %+v %v", w, err)
	}
	st := ts.srv.store.State()
	if st.Credential(tok) != nil || st.Credential(hashToken(tok)) == nil {
		t.Errorf("the admin token must be stored as its hash only")
	}
	info, err := os.Stat(ts.srv.AdminTokenPath())
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("admin token file mode = %v, %v; want 0600", info.Mode().Perm(), err)
	}
}

func TestSubmittedRunWaitsWithAReasonAndTheClusterScalesUp(t *testing.T) {
	ts := startTestServer(t)
	ctx := context.Background()
	if _, err := ts.client.CreateTarget(ctx, api.TargetSpec{Name: "cpu-cluster", VMSize: "cpu-2", MaxNodes: 2}); err != nil {
		t.Fatal(err)
	}
	r, err := ts.client.SubmitRun(ctx, api.RunSpec{Target: "cpu-cluster", Command: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _, err := ts.client.GetRun(ctx, r.ID, api.Wait{})
		if err != nil {
			t.Fatal(err)
		}
		ts.prov.mu.Lock()
		created := len(ts.prov.created)
		ts.prov.mu.Unlock()
		if got.State == api.RunQueued && got.Reason != "" && created == 1 {
			tg, _ := ts.client.GetTarget(ctx, "cpu-cluster")
			if tg.TargetNodeCount != 1 || tg.NodeStateCounts.Preparing != 1 {
				t.Errorf("target = %+v, want target_node_count 1 and 1 preparing", tg)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %+v, %d nodes created; want Queued with a reason and one node asked for", got, created)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lockedBuffer is a goroutine-safe strings.Builder.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
