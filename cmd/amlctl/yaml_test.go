package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/amld/amld/api"
)

// writeFile writes content to name in a fresh temp dir and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadJobFileValid(t *testing.T) {
	p := writeFile(t, "job.yml", `
target: cpu-cluster
command: ["python3", "train.py", "--epochs", "5"]
source: train
environment: {image: python:3.12}
env:
  LEARNING_TASK: demo
  EPOCHS: 5
resources:
  cpus: 1
  memory_mb: 2048
node_count: 2
process_count_per_node: 4
distribution: mpi
priority: 3
max_retries: 1
max_preemptions: 0
max_run_duration_seconds: 600
display_name: demo
`)
	spec, source, err := loadJobFile(p)
	if err != nil {
		t.Fatal(err)
	}
	zero := 0
	want := api.RunSpec{
		Target:                "cpu-cluster",
		Command:               []string{"python3", "train.py", "--epochs", "5"},
		Environment:           api.Environment{Image: "python:3.12"},
		Env:                   map[string]string{"LEARNING_TASK": "demo", "EPOCHS": "5"},
		Resources:             &api.Resources{CPUs: 1, MemoryMB: 2048},
		NodeCount:             2,
		ProcessCountPerNode:   4,
		Distribution:          "mpi",
		Priority:              3,
		MaxRetries:            1,
		MaxPreemptions:        &zero,
		MaxRunDurationSeconds: 600,
		DisplayName:           "demo",
	}
	if !reflect.DeepEqual(spec, want) {
		t.Errorf("spec\n got %+v\nwant %+v", spec, want)
	}
	if wantSrc := filepath.Join(filepath.Dir(p), "train"); source != wantSrc {
		t.Errorf("source = %q, want %q (relative to the YAML file)", source, wantSrc)
	}
}

func TestLoadJobFileStringCommandRunsThroughShell(t *testing.T) {
	p := writeFile(t, "job.yml", "target: t\ncommand: python3 train.py && echo done\n")
	spec, _, err := loadJobFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/bin/sh", "-c", "python3 train.py && echo done"}; !reflect.DeepEqual(spec.Command, want) {
		t.Errorf("command = %q, want %q", spec.Command, want)
	}
}

func TestLoadJobFileErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key", "target: t\ncomand: [a]\n", []string{`unknown key "comand"`}},
		{"unknown nested key", "target: t\nresources: {cpu: 2}\n", []string{`unknown key "cpu"`}},
		{"source_id is not a key", "target: t\nsource_id: b-1\n", []string{`unknown key "source_id"`}},
		{"wrong type", "target: t\nnode_count: two\n", []string{"node_count", "whole number"}},
		{"wrong nested type", "target: t\nresources: {cpus: lots}\n", []string{"resources.cpus", "whole number"}},
		{"command of numbers", "target: t\ncommand: {a: 1}\n", []string{"command", "list"}},
		{"duplicate key", "target: t\ntarget: u\n", []string{"target"}},
		{"not yaml", "target: [\n", []string{"job.yml"}},
		{"empty", "\n", []string{"empty"}},
		{"not a mapping", "- a\n- b\n", []string{"mapping"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := loadJobFile(writeFile(t, "job.yml", tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range append(tc.want, "job.yml") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadTargetFile(t *testing.T) {
	p := writeFile(t, "cluster.yml", `
name: cpu-cluster
vm_size: cpu-2
min_nodes: 0
max_nodes: 4
idle_seconds_before_scaledown: 60
vm_priority: dedicated
provider: local
preemption: requeue
`)
	spec, err := loadTargetFile(p)
	if err != nil {
		t.Fatal(err)
	}
	idle := 60
	want := api.TargetSpec{Name: "cpu-cluster", Type: "cluster", VMSize: "cpu-2", MaxNodes: 4,
		IdleSecondsBeforeScaledown: &idle, VMPriority: "dedicated", Provider: "local", Preemption: "requeue"}
	if !reflect.DeepEqual(spec, want) {
		t.Errorf("spec\n got %+v\nwant %+v", spec, want)
	}
	_, err = loadTargetFile(writeFile(t, "cluster.yml", "name: c\nmax_nodes: 4\ncolour: red\n"))
	if err == nil || !strings.Contains(err.Error(), `unknown key "colour"`) {
		t.Errorf("err = %v, want one naming colour", err)
	}
	_, err = loadTargetFile(writeFile(t, "cluster.yml", "name: c\nmax_nodes: many\n"))
	if err == nil || !strings.Contains(err.Error(), "max_nodes") {
		t.Errorf("err = %v, want one naming max_nodes", err)
	}
}

func TestExampleFilesLoad(t *testing.T) {
	if _, err := loadTargetFile("../../examples/cluster.yml"); err != nil && !os.IsNotExist(err) {
		t.Errorf("examples/cluster.yml: %v", err)
	}
	if _, _, err := loadJobFile("../../examples/job.yml"); err != nil && !os.IsNotExist(err) {
		t.Errorf("examples/job.yml: %v", err)
	}
}

// FuzzDecodeJobYAML feeds arbitrary files to the job decoder: it must
// answer with a spec or an error, never panic.
func FuzzDecodeJobYAML(f *testing.F) {
	f.Add("target: t\ncommand: [a, b]\nresources: {cpus: 1}\n")
	f.Add("command: echo hi\nenv: {A: 1}\n")
	f.Add("max_preemptions: null\nnode_count: 1e3\n")
	f.Add("- [\n")
	f.Fuzz(func(t *testing.T, s string) {
		var jf jobFile
		if err := decodeYAML([]byte(s), &jf); err == nil {
			jf.runSpec(".")
		}
		var ts api.TargetSpec
		_ = decodeYAML([]byte(s), &ts)
	})
}
