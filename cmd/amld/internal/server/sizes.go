package server

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/amld/amld/api"
)

// builtinSizes is the vm_size catalogue every head knows.
var builtinSizes = []api.VMSize{
	{Name: "cpu-1", CPUs: 1, MemoryGB: 2},
	{Name: "cpu-2", CPUs: 2, MemoryGB: 8},
	{Name: "cpu-4", CPUs: 4, MemoryGB: 16},
	{Name: "cpu-8", CPUs: 8, MemoryGB: 32},
	{Name: "cpu-16", CPUs: 16, MemoryGB: 64},
	{Name: "gpu-1", CPUs: 6, MemoryGB: 56, GPUs: 1, GPUModel: "any"},
	{Name: "gpu-2", CPUs: 12, MemoryGB: 112, GPUs: 2, GPUModel: "any"},
	{Name: "gpu-4", CPUs: 24, MemoryGB: 224, GPUs: 4, GPUModel: "any"},
	{Name: "gpu-8", CPUs: 48, MemoryGB: 448, GPUs: 8, GPUModel: "any"},
}

// Sizes is a vm_size catalogue.
type Sizes struct {
	byName map[string]api.VMSize
	names  []string
}

// NewSizes returns the built-in catalogue plus extra entries (which replace
// built-ins of the same name).
func NewSizes(extra []api.VMSize) (*Sizes, error) {
	s := &Sizes{byName: map[string]api.VMSize{}}
	for _, v := range builtinSizes {
		s.byName[v.Name] = v
	}
	for i, v := range extra {
		if err := validateSize(v); err != nil {
			return nil, fmt.Errorf("sizes[%d]: %w", i, err)
		}
		s.byName[v.Name] = v
	}
	for n := range s.byName {
		s.names = append(s.names, n)
	}
	slices.Sort(s.names)
	return s, nil
}

// LoadSizesFile reads extra vm_sizes from a YAML (or JSON) file: a list of
// {name, cpus, memory_gb, gpus, gpu_model}.
func LoadSizesFile(path string) ([]api.VMSize, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []api.VMSize
	if err := yaml.UnmarshalStrict(b, &out); err != nil {
		return nil, fmt.Errorf("sizes file %s: %w", path, err)
	}
	return out, nil
}

func validateSize(v api.VMSize) error {
	switch {
	case !validName(v.Name):
		return fmt.Errorf("name %q: %s", v.Name, nameRule)
	case v.CPUs < 1 || v.CPUs > 1024:
		return fmt.Errorf("%s: cpus must be 1..1024, got %d", v.Name, v.CPUs)
	case v.MemoryGB <= 0 || v.MemoryGB > 16384:
		return fmt.Errorf("%s: memory_gb must be > 0 and <= 16384, got %v", v.Name, v.MemoryGB)
	case v.GPUs < 0 || v.GPUs > 64:
		return fmt.Errorf("%s: gpus must be 0..64, got %d", v.Name, v.GPUs)
	}
	return nil
}

// Get returns the size called name.
func (s *Sizes) Get(name string) (api.VMSize, bool) {
	v, ok := s.byName[name]
	return v, ok
}

// All returns the catalogue sorted by name.
func (s *Sizes) All() []api.VMSize {
	out := make([]api.VMSize, 0, len(s.names))
	for _, n := range s.names {
		out = append(out, s.byName[n])
	}
	return out
}

// Map returns the catalogue by name (a copy).
func (s *Sizes) Map() map[string]api.VMSize {
	m := make(map[string]api.VMSize, len(s.byName))
	for k, v := range s.byName {
		m[k] = v
	}
	return m
}

// NamesList lists the size names, for error messages.
func (s *Sizes) NamesList() string { return strings.Join(s.names, ", ") }
