package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/amld/amld/api"
)

func TestCreateClusterFromFlagsSendsTheSpec(t *testing.T) {
	f := newFakeHead(t)
	f.handle("POST /v1/targets", &api.Target{TargetSpec: api.TargetSpec{Name: "cpu-cluster", Type: "cluster"}, ProvisioningState: "Creating"})
	res := f.runCLI(t.Context(), "compute", "create", "cluster", "--name", "cpu-cluster", "--vm-size", "cpu-2",
		"--min-nodes", "0", "--max-nodes", "4", "--idle-seconds-before-scaledown", "120", "--vm-priority", "dedicated",
		"--provider", "local", "--preemption", "requeue", "--description", "team pool")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	var got map[string]any
	if err := json.Unmarshal(f.body("POST /v1/targets"), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"name": "cpu-cluster", "type": "cluster", "vm_size": "cpu-2", "min_nodes": 0.0,
		"max_nodes": 4.0, "idle_seconds_before_scaledown": 120.0, "vm_priority": "dedicated", "provider": "local",
		"preemption": "requeue", "description": "team pool"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sent\n %v\nwant\n %v", got, want)
	}
	if h := f.headers["POST /v1/targets"].Get("Authorization"); h != "Bearer tok-secret" {
		t.Errorf("Authorization = %q", h)
	}
	if !strings.Contains(res.stdout, "cpu-cluster") || strings.Contains(res.stdout+res.stderr, "tok-secret") {
		t.Errorf("stdout %q stderr %q", res.stdout, res.stderr)
	}
}

func TestCreateFromFileWithFlagOverride(t *testing.T) {
	f := newFakeHead(t)
	f.handle("POST /v1/targets", &api.Target{})
	p := writeFile(t, "cluster.yml", "name: cpu-cluster\nvm_size: cpu-2\nmax_nodes: 4\n")
	if res := f.runCLI(t.Context(), "compute", "create", "-f", p, "--max-nodes", "8"); res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	var got api.TargetSpec
	if err := json.Unmarshal(f.body("POST /v1/targets"), &got); err != nil {
		t.Fatal(err)
	}
	if got.MaxNodes != 8 || got.Name != "cpu-cluster" || got.Type != "cluster" || got.IdleSecondsBeforeScaledown != nil {
		t.Errorf("sent %+v; want the file's spec with max_nodes 8 and the default idle time left to the head", got)
	}
}

func TestUpdateSendsOnlyGivenFields(t *testing.T) {
	f := newFakeHead(t)
	f.handle("PATCH /v1/targets/{name}", &api.Target{})
	if res := f.runCLI(t.Context(), "compute", "update", "cpu-cluster", "--max-nodes", "8"); res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if got := string(f.body("PATCH /v1/targets/cpu-cluster")); strings.TrimSpace(got) != `{"max_nodes":8}` {
		t.Errorf("sent %s", got)
	}
}

// runScript is a run that is queued, runs on n-1 and ends as final.
func runScript(final *api.Run) []*api.Run {
	running := &api.Run{ID: "r-1", State: api.RunRunning, Attempts: []api.Attempt{
		{Number: 1, Allocations: []api.Allocation{{NodeID: "n-1"}}}}}
	return []*api.Run{
		{ID: "r-1", State: api.RunQueued, Reason: "waiting for 1 node of cpu-2: 0 ready, 1 preparing"},
		running,
		final,
	}
}

func TestSubmitWaitStreamsOutputAndExitsWithTheRunsCode(t *testing.T) {
	f := newFakeHead(t)
	f.handle("POST /v1/runs", &api.Run{ID: "r-1", State: api.RunQueued, RunSpec: api.RunSpec{Target: "cpu-cluster"}})
	f.runStates = runScript(&api.Run{ID: "r-1", State: api.RunFailed, ExitCode: ptr(3), Reason: "exit code 3",
		Attempts: []api.Attempt{{Number: 1, Ended: true, ExitCode: ptr(3), Reason: "exit code 3"}}})
	f.setLog(chunk(1, 0, "hello\n", false))
	f.setLog(chunk(1, 6, "world\n", true))
	src := t.TempDir()
	writeTree(t, src, map[string]string{"train.py": "print(1)", ".amlignore": "*.bin\n", "w.bin": "x"})

	res := f.runCLI(t.Context(), "job", "submit", "--target", "cpu-cluster", "--source", src, "--env", "A=1",
		"--cpus", "2", "--wait", "--", "python3", "train.py", "--epochs", "5")
	if res.code != 3 {
		t.Fatalf("exit %d, want 3; stderr %s", res.code, res.stderr)
	}
	if res.stdout != "hello\nworld\n" {
		t.Errorf("stdout = %q, want both chunks in order", res.stdout)
	}
	for _, want := range []string{"Queued: waiting for 1 node of cpu-2", "Running on n-1", "Failed: exit code 3"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr %q lacks %q", res.stderr, want)
		}
	}
	var spec api.RunSpec
	if err := json.Unmarshal(f.body("POST /v1/runs"), &spec); err != nil {
		t.Fatal(err)
	}
	want := api.RunSpec{Target: "cpu-cluster", Command: []string{"python3", "train.py", "--epochs", "5"},
		Env: map[string]string{"A": "1"}, SourceID: "b-1", Resources: &api.Resources{CPUs: 2}}
	if !reflect.DeepEqual(spec, want) {
		t.Errorf("submitted\n %+v\nwant\n %+v", spec, want)
	}
	if len(f.blobs) != 1 || !reflect.DeepEqual(tarNames(t, f.blobs[0]), []string{".amlignore", "train.py"}) {
		t.Errorf("uploaded source is not the snapshot of %s", src)
	}
}

func TestSubmitWaitFollowsARequeuedRunToItsNextAttempt(t *testing.T) {
	f := newFakeHead(t)
	f.handle("POST /v1/runs", &api.Run{ID: "r-1", State: api.RunQueued})
	a1 := api.Attempt{Number: 1, Allocations: []api.Allocation{{NodeID: "n-1"}}}
	a1Lost := a1
	a1Lost.Ended, a1Lost.Reason = true, "node n-1 lost"
	a2 := api.Attempt{Number: 2, Allocations: []api.Allocation{{NodeID: "n-2"}}}
	a2Done := a2
	a2Done.Ended, a2Done.ExitCode = true, ptr(0)
	f.runStates = []*api.Run{
		{ID: "r-1", State: api.RunRunning, Attempts: []api.Attempt{a1}},
		{ID: "r-1", State: api.RunQueued, Reason: "requeued: node n-1 lost", Attempts: []api.Attempt{a1Lost}},
		{ID: "r-1", State: api.RunRunning, Attempts: []api.Attempt{a1Lost, a2}},
		{ID: "r-1", State: api.RunCompleted, ExitCode: ptr(0), Attempts: []api.Attempt{a1Lost, a2Done}},
	}
	f.setLog(chunk(1, 0, "epoch 1\n", true))
	f.setLog(chunk(2, 0, "epoch 1\nepoch 2\n", true))

	res := f.runCLI(t.Context(), "job", "submit", "--target", "cpu-cluster", "--wait", "--", "python3", "train.py")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if res.stdout != "epoch 1\nepoch 1\nepoch 2\n" {
		t.Errorf("stdout = %q", res.stdout)
	}
	if !strings.Contains(res.stderr, "--- attempt 2 (requeued: node n-1 lost) ---") || !strings.Contains(res.stderr, "Running on n-2") {
		t.Errorf("stderr = %q; want the move to attempt 2 announced", res.stderr)
	}
}

func TestInterruptStopsWaitingAndSaysHowToReattach(t *testing.T) {
	f := newFakeHead(t)
	f.handle("POST /v1/runs", &api.Run{ID: "r-1", State: api.RunQueued})
	f.runStates = runScript(&api.Run{ID: "r-1", State: api.RunCompleted})[:2] // runs forever
	f.setLog(chunk(1, 0, "step 1\n", false))
	ctx, cancel := context.WithCancel(t.Context())
	f.onLogs = func(string) { cancel() } // Ctrl-C while the output streams
	f.setLog(chunk(1, 7, "", false))

	res := f.runCLI(ctx, "job", "submit", "--target", "cpu-cluster", "--wait", "--", "sleep", "1000")
	if res.code != 130 {
		t.Errorf("exit %d, want 130", res.code)
	}
	if !strings.Contains(res.stderr, "keeps going") || !strings.Contains(res.stderr, "amlctl job logs r-1 -f") {
		t.Errorf("stderr = %q; want how to reattach", res.stderr)
	}
}

func TestLogsFollowOfAFixedAttempt(t *testing.T) {
	f := newFakeHead(t)
	f.runStates = []*api.Run{{ID: "r-1", State: api.RunCompleted, Attempts: []api.Attempt{{Number: 1, Ended: true}, {Number: 2, Ended: true}}}}
	f.setLog(chunk(1, 0, "first try\n", true))
	res := f.runCLI(t.Context(), "job", "logs", "r-1", "-f", "--attempt", "1")
	if res.code != 0 || res.stdout != "first try\n" {
		t.Errorf("exit %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
}

func TestLogsWithoutFollowPrintsWhatThereIs(t *testing.T) {
	f := newFakeHead(t)
	f.runStates = []*api.Run{{ID: "r-1", State: api.RunRunning, Attempts: []api.Attempt{{Number: 1}}}}
	f.setLog(chunk(0, 0, "a\n", false))
	f.setLog(chunk(0, 2, "b\n", false))
	f.setLog(chunk(0, 4, "", false))
	res := f.runCLI(t.Context(), "job", "logs", "r-1")
	if res.code != 0 || res.stdout != "a\nb\n" {
		t.Errorf("exit %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
}

func TestJSONOutputParses(t *testing.T) {
	f := newFakeHead(t)
	idle := 60
	targets := []*api.Target{{TargetSpec: api.TargetSpec{Name: "cpu-cluster", Type: "cluster", MaxNodes: 4,
		IdleSecondsBeforeScaledown: &idle}, ProvisioningState: "Succeeded", CurrentNodeCount: 2}}
	f.handle("GET /v1/targets", targets)
	f.handle("GET /v1/vm-sizes", nil)
	f.runStates = []*api.Run{{ID: "r-1", State: api.RunCompleted, RunSpec: api.RunSpec{Command: []string{"true"}}}}

	res := f.runCLI(t.Context(), "compute", "list", "-o", "json")
	var got []*api.Target
	if err := json.Unmarshal([]byte(res.stdout), &got); err != nil || res.code != 0 {
		t.Fatalf("compute list -o json: %v, exit %d, %q", err, res.code, res.stdout)
	}
	if !reflect.DeepEqual(got, targets) {
		t.Errorf("got %+v", got[0])
	}
	if !strings.Contains(res.stdout, "\n  {") {
		t.Errorf("not indented by 2: %q", res.stdout)
	}

	res = f.runCLI(t.Context(), "job", "show", "r-1", "-o", "json")
	var r api.Run
	if err := json.Unmarshal([]byte(res.stdout), &r); err != nil || r.ID != "r-1" || r.State != api.RunCompleted {
		t.Errorf("job show -o json: %v %q", err, res.stdout)
	}

	res = f.runCLI(t.Context(), "compute", "list-sizes", "-o", "json")
	if strings.TrimSpace(res.stdout) != "[]" {
		t.Errorf("an empty list prints %q, want []", res.stdout)
	}
}

func TestHumanShowOfACluster(t *testing.T) {
	f := newFakeHead(t)
	f.handle("GET /v1/targets/{name}", &api.Target{TargetSpec: api.TargetSpec{Name: "cpu-cluster", Type: "cluster", MaxNodes: 4},
		ProvisioningState: "Succeeded", AllocationState: "Resizing", CurrentNodeCount: 1, TargetNodeCount: 3,
		NodeStateCounts: api.NodeStateCounts{Idle: 1, Preparing: 2}, ScaleReason: "2 runs waiting",
		ProvisioningErrors: []api.ProvisioningError{{Code: "CreateFailed", Message: "agent did not start"}}})
	res := f.runCLI(t.Context(), "compute", "show", "cpu-cluster")
	for _, want := range []string{"provisioning_state:", "Succeeded", "Resizing", "idle=1 running=0 preparing=2",
		"2 runs waiting", "CreateFailed: agent did not start", "target_node_count:", "current_node_count:"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("show lacks %q:\n%s", want, res.stdout)
		}
	}
}

func TestErrorsAndExitCodes(t *testing.T) {
	f := newFakeHead(t)
	f.handleError("GET /v1/targets/{name}", api.NotFound("no target nope"))
	f.handleError("GET /v1/whoami", api.Unauthorized("invalid token"))
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"compute", "show", "nope"}, 1, "amlctl: no target nope"},
		{[]string{"whoami"}, 1, "invalid token (check --token"},
		{[]string{"compute", "show"}, 2, "takes 1 argument(s): NAME"},
		{[]string{"compute", "lst"}, 2, `unknown command "lst"`},
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
		{[]string{"compute", "list", "-o", "yaml"}, 2, "-o/--output must be json or table"},
		{[]string{"job", "submit", "--target", "t", "--cpus", "two", "--", "x"}, 2, "--cpus"},
		{[]string{"job", "submit", "--target", "t", "--env", "NOVALUE", "--", "x"}, 2, "--env must be K=V"},
		{[]string{"job", "submit", "--target", "t"}, 2, "no command"},
		{[]string{"job", "submit", "--", "x"}, 2, "--target (target) is required"},
		{[]string{"job", "submit", "--target", "t", "--distribution", "horovod", "--", "x"}, 2, "--distribution"},
		{[]string{"job", "list", "--state", "Exploded"}, 2, "--state must be one of"},
		{[]string{"compute", "create", "cluster", "--name", "c"}, 2, "--max-nodes (max_nodes) is required"},
		{[]string{"compute", "create", "cluster", "--name", "c", "--max-nodes", "2", "--vm-priority", "spot"}, 2, "--vm-priority"},
		{[]string{"compute", "update", "c"}, 2, "nothing to update"},
		{[]string{"user", "create", "bob", "--role", "root"}, 2, "--role must be user or admin"},
		{[]string{"job", "download", "r-1"}, 2, "--dir is required"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			res := f.runCLI(t.Context(), tc.args...)
			if res.code != tc.code || !strings.Contains(res.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", res.code, res.stderr, tc.code, tc.want)
			}
			if strings.Contains(res.stdout+res.stderr, "tok-secret") {
				t.Error("the token leaked")
			}
		})
	}
}

func TestUserCreatePrintsTheTokenOnce(t *testing.T) {
	f := newFakeHead(t)
	f.handle("POST /v1/users", &api.UserCreated{User: api.User{Name: "bob", Role: "user"}, Token: "amld_new"})
	res := f.runCLI(t.Context(), "user", "create", "bob")
	if res.code != 0 || strings.Count(res.stdout, "amld_new") != 1 {
		t.Errorf("exit %d stdout %q", res.code, res.stdout)
	}
	if got := strings.TrimSpace(string(f.body("POST /v1/users"))); !strings.Contains(got, `"role":"user"`) {
		t.Errorf("sent %s", got)
	}
}

func TestSubmitWaitJSONPrintsTheFinalRun(t *testing.T) {
	f := newFakeHead(t)
	f.handle("POST /v1/runs", &api.Run{ID: "r-1", State: api.RunQueued})
	f.runStates = runScript(&api.Run{ID: "r-1", State: api.RunCompleted, Attempts: []api.Attempt{{Number: 1, Ended: true}}})
	f.setLog(chunk(1, 0, "out\n", true))
	res := f.runCLI(t.Context(), "job", "submit", "--target", "t", "--wait", "-o", "json", "--", "true")
	var r api.Run
	if err := json.Unmarshal([]byte(res.stdout), &r); err != nil || r.State != api.RunCompleted || res.code != 0 {
		t.Errorf("exit %d, stdout %q: %v", res.code, res.stdout, err)
	}
}

func TestSettingsPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	if err := os.WriteFile(cfg, []byte(`{"address":"file:1,file:2","token":"file-tok"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name        string
		flagAddr    string
		env         map[string]string
		wantAddrs   []string
		wantToken   string
		wantErrText string
	}{
		{"config file", "", map[string]string{envConfig: cfg}, []string{"file:1", "file:2"}, "file-tok", ""},
		{"env beats file", "", map[string]string{envConfig: cfg, envAddr: "env:1", envToken: "env-tok"}, []string{"env:1"}, "env-tok", ""},
		{"flag beats env", "flag:1, flag:2", map[string]string{envConfig: cfg, envAddr: "env:1"}, []string{"flag:1", "flag:2"}, "file-tok", ""},
		{"missing config from env is fine with env set", "", map[string]string{envConfig: filepath.Join(dir, "none"), envAddr: "env:1", envToken: "t"}, []string{"env:1"}, "t", ""},
		{"nothing", "", map[string]string{}, nil, "", "no head address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := &app{getenv: func(k string) string { return tc.env[k] }, addr: tc.flagAddr,
				configDir: func() (string, error) { return t.TempDir(), nil }}
			addrs, tok, err := a.settings()
			if tc.wantErrText != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrText) {
					t.Errorf("err = %v, want %q", err, tc.wantErrText)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(addrs, tc.wantAddrs) || tok != tc.wantToken {
				t.Errorf("got %v %q %v; want %v %q", addrs, tok, err, tc.wantAddrs, tc.wantToken)
			}
		})
	}
	a := &app{getenv: func(string) string { return "" }, configPath: filepath.Join(dir, "none")}
	if _, _, err := a.settings(); err == nil || !strings.Contains(err.Error(), "none") {
		t.Errorf("a missing --config file: err = %v", err)
	}
}
