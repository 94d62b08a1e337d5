package main

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/amld/amld/api"
)

func TestSubmitFlagsMapToTheRunSpec(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"x.py": ""})
	file := writeFile(t, "job.yml", `
target: from-file
command: [python3, a.py]
source: src
env: {A: file, B: file}
resources: {cpus: 1, memory_mb: 1024}
priority: 5
`)
	writeTree(t, filepath.Dir(file), map[string]string{"src/a.py": ""})
	cases := []struct {
		name       string
		args       []string
		want       api.RunSpec
		withSource bool // a source snapshot is uploaded
	}{
		{
			name: "every flag",
			args: []string{"--target", "t", "--image", "img:1", "--env", "K=V", "--env", "E=a=b", "--cpus", "2",
				"--memory-mb", "4096", "--gpus", "1", "--node-count", "2", "--process-count-per-node", "4",
				"--distribution", "mpi", "--priority", "7", "--max-retries", "3", "--max-preemptions", "0",
				"--max-run-duration-seconds", "60", "--name", "demo", "--source", src, "--", "python3", "-u", "x.py"},
			want: api.RunSpec{Target: "t", Command: []string{"python3", "-u", "x.py"}, Environment: api.Environment{Image: "img:1"},
				Env: map[string]string{"K": "V", "E": "a=b"}, Resources: &api.Resources{CPUs: 2, MemoryMB: 4096, GPUs: 1},
				NodeCount: 2, ProcessCountPerNode: 4, Distribution: "mpi", Priority: 7, MaxRetries: 3,
				MaxPreemptions: ptr(0), MaxRunDurationSeconds: 60, DisplayName: "demo"},
			withSource: true,
		},
		{
			name: "defaults are left to the head",
			args: []string{"--target", "t", "true"},
			want: api.RunSpec{Target: "t", Command: []string{"true"}},
		},
		{
			name: "flags end at the command",
			args: []string{"--target", "t", "python3", "train.py", "--epochs", "5", "--wait"},
			want: api.RunSpec{Target: "t", Command: []string{"python3", "train.py", "--epochs", "5", "--wait"}},
		},
		{
			name: "flags override the file, field by field",
			args: []string{"-f", file, "--target", "t", "--env", "B=flag", "--gpus", "1"},
			want: api.RunSpec{Target: "t", Command: []string{"python3", "a.py"}, Env: map[string]string{"A": "file", "B": "flag"},
				Resources: &api.Resources{CPUs: 1, MemoryMB: 1024, GPUs: 1}, Priority: 5},
			withSource: true,
		},
		{
			name: "a command on the line replaces the file's",
			args: []string{"-f", file, "--", "bash", "run.sh"},
			want: api.RunSpec{Target: "from-file", Command: []string{"bash", "run.sh"}, Env: map[string]string{"A": "file", "B": "file"},
				Resources: &api.Resources{CPUs: 1, MemoryMB: 1024}, Priority: 5},
			withSource: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeHead(t)
			f.handle("POST /v1/runs", &api.Run{ID: "r-1", State: api.RunQueued})
			res := f.runCLI(t.Context(), append([]string{"job", "submit"}, tc.args...)...)
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			var got api.RunSpec
			if err := json.Unmarshal(f.body("POST /v1/runs"), &got); err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if tc.withSource {
				want.SourceID = "b-1"
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("sent\n %+v\nwant\n %+v", got, want)
			}
		})
	}
}

func TestCreateFlagsMapToTheTargetSpec(t *testing.T) {
	file := writeFile(t, "cluster.yml", "name: from-file\nvm_size: cpu-2\nmax_nodes: 2\nvm_priority: lowpriority\n")
	cases := []struct {
		name string
		args []string
		want api.TargetSpec
	}{
		{"flags only", []string{"cluster", "--name", "c1", "--vm-size", "cpu-4", "--max-nodes", "3"},
			api.TargetSpec{Name: "c1", Type: "cluster", VMSize: "cpu-4", MaxNodes: 3}},
		{"idle time and min nodes", []string{"cluster", "--name", "c1", "--max-nodes", "3", "--min-nodes", "1", "--idle-seconds-before-scaledown", "0"},
			api.TargetSpec{Name: "c1", Type: "cluster", MinNodes: 1, MaxNodes: 3, IdleSecondsBeforeScaledown: ptr(0)}},
		{"file with overrides", []string{"-f", file, "--max-nodes", "6", "--preemption", "requeue"},
			api.TargetSpec{Name: "from-file", Type: "cluster", VMSize: "cpu-2", MaxNodes: 6, VMPriority: "lowpriority", Preemption: "requeue"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeHead(t)
			f.handle("POST /v1/targets", &api.Target{})
			res := f.runCLI(t.Context(), append([]string{"compute", "create"}, tc.args...)...)
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			var got api.TargetSpec
			if err := json.Unmarshal(f.body("POST /v1/targets"), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("sent\n %+v\nwant\n %+v", got, tc.want)
			}
		})
	}
}

func TestExitCodeOfARun(t *testing.T) {
	cases := []struct {
		name string
		run  api.Run
		want int
	}{
		{"completed", api.Run{State: api.RunCompleted, ExitCode: ptr(0)}, 0},
		{"failed with a code", api.Run{State: api.RunFailed, ExitCode: ptr(3)}, 3},
		{"failed with a big code", api.Run{State: api.RunFailed, ExitCode: ptr(300)}, 255},
		{"failed with a negative code", api.Run{State: api.RunFailed, ExitCode: ptr(-9)}, 1},
		{"failed with code 0", api.Run{State: api.RunFailed, ExitCode: ptr(0)}, 1},
		{"failed without a code", api.Run{State: api.RunFailed, Reason: "max_run_duration_seconds exceeded"}, 1},
		{"failed, code on the last attempt", api.Run{State: api.RunFailed, Attempts: []api.Attempt{{Number: 1, ExitCode: ptr(7)}}}, 7},
		{"canceled", api.Run{State: api.RunCanceled}, 130},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := exitCodeFor(&tc.run); got != tc.want {
				t.Errorf("exitCodeFor = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestStateLinesAndBanners(t *testing.T) {
	queued := &api.Run{State: api.RunQueued, Reason: "waiting for 1 node of cpu-2: cluster at max_nodes=4, 4 running"}
	if got := stateLine(queued); got != "Queued: waiting for 1 node of cpu-2: cluster at max_nodes=4, 4 running" {
		t.Errorf("queued: %q", got)
	}
	running := &api.Run{State: api.RunRunning, Attempts: []api.Attempt{{Number: 1,
		Allocations: []api.Allocation{{NodeID: "n-abc"}, {NodeID: "n-def"}}}}}
	if got := stateLine(running); got != "Running on n-abc, n-def" {
		t.Errorf("running: %q", got)
	}
	if got := attemptBanner(&api.Attempt{Reason: "node n-1 lost"}, 2); got != "--- attempt 2 (requeued: node n-1 lost) ---" {
		t.Errorf("requeue banner: %q", got)
	}
	if got := attemptBanner(&api.Attempt{ExitCode: ptr(1), Reason: "exit code 1"}, 3); got != "--- attempt 3 (retried: exit code 1) ---" {
		t.Errorf("retry banner: %q", got)
	}
}
