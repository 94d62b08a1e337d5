package server

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/amld/amld/api"
)

// TestDebugProfilesAreForAdminsOnlyAndOffByDefault: with --enable-debug
// an admin gets the pprof index and a named profile; a user is refused;
// without the flag the endpoints do not exist.
func TestDebugProfilesAreForAdminsOnlyAndOffByDefault(t *testing.T) {
	get := func(ts *testServer, token, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, ts.srv.URL()+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	admin := func(ts *testServer) string { return ts.token }

	on := startTestServer(t, func(c *Config) { c.EnableDebug = true })
	if code, body := get(on, admin(on), "/v1/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Fatalf("admin index: %d %.200s", code, body)
	}
	if code, body := get(on, admin(on), "/v1/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile") {
		t.Fatalf("admin goroutine profile: %d %.200s", code, body)
	}
	for _, p := range []string{"no-such", "cmdline"} {
		if code, _ := get(on, admin(on), "/v1/debug/pprof/"+p); code != 404 {
			t.Fatalf("%s: %d, want 404", p, code)
		}
	}
	u, err := on.client.CreateUser(context.Background(), "alice", api.RoleUser)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := get(on, u.Token, "/v1/debug/pprof/goroutine"); code != 403 {
		t.Fatalf("user: %d, want 403", code)
	}

	off := startTestServer(t)
	if code, _ := get(off, admin(off), "/v1/debug/pprof/goroutine"); code != 404 {
		t.Fatalf("without --enable-debug: %d, want 404", code)
	}
}
