package server

import (
	"strings"
	"testing"

	"github.com/amld/amld/api"
)

func testSizes(t testing.TB) *Sizes {
	t.Helper()
	s, err := NewSizes(nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestValidateTargetSpec(t *testing.T) {
	sizes := testSizes(t)
	ok := api.TargetSpec{Name: "cpu-cluster", VMSize: "cpu-2", MaxNodes: 4}
	cases := []struct {
		name   string
		mutate func(*api.TargetSpec)
		field  string // "" means valid
	}{
		{"valid", func(*api.TargetSpec) {}, ""},
		{"missing name", func(s *api.TargetSpec) { s.Name = "" }, "name"},
		{"short name", func(s *api.TargetSpec) { s.Name = "ab" }, "name"},
		{"24 chars ok", func(s *api.TargetSpec) { s.Name = "a23456789012345678901234" }, ""},
		{"25 chars", func(s *api.TargetSpec) { s.Name = "a234567890123456789012345" }, "name"},
		{"upper case", func(s *api.TargetSpec) { s.Name = "Cpu" }, "name"},
		{"underscore", func(s *api.TargetSpec) { s.Name = "cpu_x" }, "name"},
		{"digit first", func(s *api.TargetSpec) { s.Name = "9cpu" }, "name"},
		{"unknown type", func(s *api.TargetSpec) { s.Type = "aks" }, "type"},
		{"no size", func(s *api.TargetSpec) { s.VMSize = "" }, "vm_size"},
		{"unknown size", func(s *api.TargetSpec) { s.VMSize = "cpu-3" }, "vm_size"},
		{"max missing", func(s *api.TargetSpec) { s.MaxNodes = 0 }, "max_nodes"},
		{"max negative", func(s *api.TargetSpec) { s.MaxNodes = -1 }, "max_nodes"},
		{"min negative", func(s *api.TargetSpec) { s.MinNodes = -1 }, "min_nodes"},
		{"min above max", func(s *api.TargetSpec) { s.MinNodes = 5 }, "min_nodes"},
		{"min equals max", func(s *api.TargetSpec) { s.MinNodes = 4 }, ""},
		{"idle negative", func(s *api.TargetSpec) { v := -1; s.IdleSecondsBeforeScaledown = &v }, "idle_seconds_before_scaledown"},
		{"bad priority", func(s *api.TargetSpec) { s.VMPriority = "spot" }, "vm_priority"},
		{"lowpriority", func(s *api.TargetSpec) { s.VMPriority = "lowpriority" }, ""},
		{"unknown provider", func(s *api.TargetSpec) { s.Provider = "azure" }, "provider"},
		{"bad preemption", func(s *api.TargetSpec) { s.Preemption = "kill" }, "preemption"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := ok
			tc.mutate(&spec)
			got, err := validateTargetSpec(spec, sizes, []string{"local"}, "local")
			if tc.field == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if got.IdleSecondsBeforeScaledown == nil || got.VMPriority == "" || got.Provider != "local" || got.Type != api.KindCluster {
					t.Errorf("defaults not filled in: %+v", got)
				}
				return
			}
			ae, isAPI := err.(*api.Error)
			if !isAPI || ae.Field != tc.field || ae.Status != 400 {
				t.Fatalf("error = %v (field %q), want a 400 naming %q", err, fieldOf(err), tc.field)
			}
		})
	}
	_, err := validateTargetSpec(api.TargetSpec{Name: "abc", VMSize: "nope", MaxNodes: 1}, sizes, []string{"local"}, "local")
	if err == nil || !strings.Contains(err.Error(), "cpu-2, cpu-4") {
		t.Errorf("unknown size error should list the sizes: %v", err)
	}
}

func fieldOf(err error) string {
	if ae, ok := err.(*api.Error); ok {
		return ae.Field
	}
	return ""
}

func TestValidateRunSpec(t *testing.T) {
	sizes := testSizes(t)
	size, _ := sizes.Get("cpu-2")
	target := &api.Target{TargetSpec: api.TargetSpec{Name: "cpu-cluster", VMSize: "cpu-2", MaxNodes: 3}}
	cases := []struct {
		name   string
		spec   api.RunSpec
		field  string
		expect api.Resources
	}{
		{"whole node by default", api.RunSpec{Command: []string{"true"}}, "", size.Resources()},
		{"partial request", api.RunSpec{Command: []string{"true"}, Resources: &api.Resources{CPUs: 1}}, "", api.Resources{CPUs: 1, MemoryMB: 1024}},
		{"no command", api.RunSpec{}, "command", api.Resources{}},
		{"empty program", api.RunSpec{Command: []string{""}}, "command[0]", api.Resources{}},
		{"nul in arg", api.RunSpec{Command: []string{"echo", "a\x00b"}}, "command[1]", api.Resources{}},
		{"gang over max", api.RunSpec{Command: []string{"true"}, NodeCount: 4}, "node_count", api.Resources{}},
		{"gang at max", api.RunSpec{Command: []string{"true"}, NodeCount: 3}, "", size.Resources()},
		{"negative nodes", api.RunSpec{Command: []string{"true"}, NodeCount: -1}, "node_count", api.Resources{}},
		{"too many cpus", api.RunSpec{Command: []string{"true"}, Resources: &api.Resources{CPUs: 3}}, "resources.cpus", api.Resources{}},
		{"too much memory", api.RunSpec{Command: []string{"true"}, Resources: &api.Resources{MemoryMB: 1 << 20}}, "resources.memory_mb", api.Resources{}},
		{"gpus on cpu size", api.RunSpec{Command: []string{"true"}, Resources: &api.Resources{GPUs: 1}}, "resources.gpus", api.Resources{}},
		{"negative resources", api.RunSpec{Command: []string{"true"}, Resources: &api.Resources{CPUs: -1}}, "resources", api.Resources{}},
		{"bad distribution", api.RunSpec{Command: []string{"true"}, Distribution: "ring"}, "distribution", api.Resources{}},
		{"bad env key", api.RunSpec{Command: []string{"true"}, Env: map[string]string{"A-B": "1"}}, "env", api.Resources{}},
		{"priority range", api.RunSpec{Command: []string{"true"}, Priority: 5000}, "priority", api.Resources{}},
		{"retries range", api.RunSpec{Command: []string{"true"}, MaxRetries: -1}, "max_retries", api.Resources{}},
		{"preemptions range", api.RunSpec{Command: []string{"true"}, MaxPreemptions: intp(-2)}, "max_preemptions", api.Resources{}},
		{"duration range", api.RunSpec{Command: []string{"true"}, MaxRunDurationSeconds: -5}, "max_run_duration_seconds", api.Resources{}},
		{"ppn range", api.RunSpec{Command: []string{"true"}, ProcessCountPerNode: 5000}, "process_count_per_node", api.Resources{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			got, err := validateRunSpec(&spec, target, size)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if got != tc.expect {
					t.Errorf("request = %+v, want %+v", got, tc.expect)
				}
				return
			}
			if fieldOf(err) != tc.field {
				t.Fatalf("error = %v (field %q), want field %q", err, fieldOf(err), tc.field)
			}
		})
	}
	spec := api.RunSpec{Command: []string{"true"}, NodeCount: 2}
	if _, err := validateRunSpec(&spec, target, size); err != nil || spec.Distribution != api.DistributionMPI {
		t.Errorf("multi-node default distribution = %q, %v; want mpi", spec.Distribution, err)
	}
}

func intp(v int) *int { return &v }

func TestValidateTargetUpdate(t *testing.T) {
	tg := &api.Target{TargetSpec: api.TargetSpec{Name: "c", MinNodes: 1, MaxNodes: 4}}
	if err := validateTargetUpdate(tg, api.TargetUpdate{MaxNodes: intp(8)}); err != nil {
		t.Errorf("raise max: %v", err)
	}
	if err := validateTargetUpdate(tg, api.TargetUpdate{MaxNodes: intp(0)}); fieldOf(err) != "max_nodes" {
		t.Errorf("max 0: %v", err)
	}
	if err := validateTargetUpdate(tg, api.TargetUpdate{MinNodes: intp(5)}); fieldOf(err) != "min_nodes" {
		t.Errorf("min above max: %v", err)
	}
	if err := validateTargetUpdate(tg, api.TargetUpdate{}); err == nil {
		t.Errorf("empty update accepted")
	}
}
