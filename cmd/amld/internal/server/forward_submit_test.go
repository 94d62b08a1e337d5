package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/cmd/amld/internal/pki"
	"github.com/amld/amld/raftstore"
)

// testHead is one head of startTestHeads, with its access log.
type testHead struct {
	*testServer
	log *lockedBuffer
}

// accesses counts the head's access-log lines for method and path with
// the given status (0: any).
func (h *testHead) accesses(method, path string, status int) int {
	n := 0
	for _, l := range strings.Split(h.log.String(), "\n") {
		if strings.Contains(l, "msg=http ") && strings.Contains(l, "method="+method+" ") &&
			strings.Contains(l, "path="+path+" ") && (status == 0 || strings.Contains(l, fmt.Sprintf("status=%d ", status))) {
			n++
		}
	}
	return n
}

// startTestHeads starts n heads of one cluster in this process (plain
// HTTP, fake providers) and returns them with the admin token.
func startTestHeads(t *testing.T, n int) ([]*testHead, string) {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "cluster.key")
	if err := pki.WriteKeyFile(keyFile, pki.GenerateKey()); err != nil {
		t.Fatal(err)
	}
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = freeAddr(t)
	}
	var heads []*testHead
	var dataDir string
	for i := range n {
		buf := &lockedBuffer{}
		var others []string
		for j, a := range addrs {
			if j != i {
				others = append(others, a)
			}
		}
		ts, cfg := launchTestServer(t, func(c *Config) {
			c.ID = fmt.Sprintf("head-%d", i+1)
			c.Listen = addrs[i]
			c.Cluster.BootstrapExpect = n
			c.Cluster.Join = others
			c.Cluster.KeyFile = keyFile
			c.Logger = slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		})
		if i == 0 {
			dataDir = cfg.DataDir
		}
		heads = append(heads, &testHead{log: buf, testServer: ts})
	}
	for _, h := range heads {
		h.waitReady(t)
	}
	tok, err := os.ReadFile(filepath.Join(dataDir, adminTokenFile)) // head-1 bootstraps
	if err != nil {
		t.Fatal(err)
	}
	return heads, strings.TrimSpace(string(tok))
}

// TestFollowerForwardsSubmitsAsCommands: clients of a follower submit; the
// follower sends the leader the commands only (the leader serves no POST
// /v1/runs), in shared apply calls, and has every run in its own state
// when it answers. A submit the follower cannot settle itself (an unknown
// target) is the leader's to answer; a retried submit makes one run.
func TestFollowerForwardsSubmitsAsCommands(t *testing.T) {
	heads, token := startTestHeads(t, 3)
	var leader, follower *testHead
	waitUntil(t, 20*time.Second, "a leader", func() bool {
		for _, h := range heads {
			if h.srv.store.IsLeader() {
				leader = h
			}
		}
		return leader != nil
	})
	for _, h := range heads {
		if h != leader {
			follower = h
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lc, _ := api.NewClient(api.Config{Addresses: []string{leader.srv.URL()}, Token: token})
	if _, err := lc.CreateTarget(ctx, api.TargetSpec{Name: "cpu", VMSize: "cpu-2", MaxNodes: 1}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "the follower to see the leader's build and the target", func() bool {
		r, _ := http.NewRequest(http.MethodPost, "/v1/runs", nil)
		return follower.srv.servesSubmit(r) && follower.srv.store.State().Target("cpu") != nil
	})

	const n = 40
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			fc, _ := api.NewClient(api.Config{Addresses: []string{follower.srv.URL()}, Token: token})
			r, err := fc.SubmitRun(ctx, api.RunSpec{Target: "cpu", Command: []string{"echo", fmt.Sprint(i)}})
			if err != nil {
				t.Errorf("submit %d: %v", i, err)
				return
			}
			if follower.srv.store.State().Run(r.ID) == nil {
				t.Errorf("submit %d: the follower answered before its state had run %s", i, r.ID)
			}
			ids[i] = r.ID
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i, id := range ids {
		r := leader.srv.store.State().Run(id)
		if r == nil || r.Command[1] != fmt.Sprint(i) || r.Owner != "admin" {
			t.Fatalf("run %s of submit %d on the leader: %+v", id, i, r)
		}
	}
	calls := leader.accesses("POST", forwardPath, 200)
	if got := leader.accesses("POST", "/v1/runs", 0); got != 0 || calls == 0 || calls > n {
		t.Fatalf("the leader served %d submits and %d apply calls; want none and 1..%d", got, calls, n)
	}
	t.Logf("%d submits through the follower: %d apply calls to the leader", n, calls)

	// Not the follower's to settle: the leader answers, in its words.
	fc, _ := api.NewClient(api.Config{Addresses: []string{follower.srv.URL()}, Token: token})
	_, err := fc.SubmitRun(ctx, api.RunSpec{Target: "nope", Command: []string{"true"}})
	if !api.IsNotFound(err) || !strings.Contains(err.Error(), `no target named "nope"`) {
		t.Fatalf("submit to an unknown target through the follower: %v, want the 404 about it", err)
	}
	if got := leader.accesses("POST", "/v1/runs", 404); got != 1 {
		t.Fatalf("the leader answered %d submits with 404, want the one proxied", got)
	}
	wrong, _ := api.NewClient(api.Config{Addresses: []string{follower.srv.URL()}, Token: "not-a-token"})
	if _, err := wrong.SubmitRun(ctx, api.RunSpec{Target: "cpu", Command: []string{"true"}}); api.StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("submit with a wrong token through the follower: %v, want 401", err)
	}

	// The same idempotency key twice: one run, both answers name it.
	submit := func() string {
		body, _ := json.Marshal(api.RunSpec{Target: "cpu", Command: []string{"sleep", "1"}})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, follower.srv.URL()+"/v1/runs", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set(idempotencyHeader, "key-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r api.Run
		if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&r) != nil {
			t.Fatalf("idempotent submit: %s", resp.Status)
		}
		return r.ID
	}
	if a, b := submit(), submit(); a != b || a == "" {
		t.Fatalf("the same idempotency key made runs %q and %q", a, b)
	}
	if got := leader.accesses("POST", "/v1/runs", 0); got != 2 {
		t.Fatalf("the leader served %d submits, want the 404 and the wrong token only", got)
	}
}

// TestLeaderRefusesForwardedCommandsOtherThanSubmits: the apply call takes
// RunSubmit commands only, sealed with the cluster key.
func TestLeaderRefusesForwardedCommandsOtherThanSubmits(t *testing.T) {
	heads, _ := startTestHeads(t, 1)
	h := heads[0]
	cmd, err := raftstore.EncodeCommand(raftstore.MsgTargetDelete, &raftstore.TargetDeleteRequest{Name: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	out, retry, err := h.srv.callForward(context.Background(), h.srv.URL(), [][]byte{cmd})
	if err != nil || retry || len(out) != 1 || out[0].Error == nil || out[0].Error.Field != "commands" {
		t.Fatalf("a forwarded target delete: %+v retry %v err %v; want it refused", out, retry, err)
	}
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL()+forwardPath, strings.NewReader(`{"commands":[]}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("an apply call not sealed with the cluster key: %s, want 401", resp.Status)
	}
}

// waitUntil polls cond until it holds, failing the test after d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %s", what, d)
		}
	}
}
