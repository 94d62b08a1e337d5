package server

import (
	"context"
	"testing"

	"github.com/amld/amld/api"
	"github.com/amld/amld/nodes"
)

// runtimesProv is a provider that only says which runtimes its nodes have.
type runtimesProv struct{ rts []string }

var _ nodes.Provider = runtimesProv{}

func (p runtimesProv) Name() string { return "fake" }
func (p runtimesProv) Create(context.Context, nodes.NodeSpec) (string, error) {
	return "", nil
}
func (p runtimesProv) Delete(context.Context, string, string) error   { return nil }
func (p runtimesProv) List(context.Context) ([]nodes.Instance, error) { return nil, nil }
func (p runtimesProv) Runtimes() []string                             { return p.rts }

// plainProv is a provider without the Runtimes ability.
type plainProv struct{ runtimesProv }

func (plainProv) Runtimes() {}

func TestCheckImageRefNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		image string
		ok    bool
	}{
		{"", true},
		{"amld/base:cpu", true},
		{"python:3.12", true},
		{"registry.example:5000/team/img:v1", true},
		{"img@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", true},
		{"Bad Image", false},
		{"team/Upper", false},
		{" amld/base:cpu", false},
		{"img:", false},
	} {
		err := checkImageRef(tc.image)
		if tc.ok != (err == nil) {
			t.Errorf("checkImageRef(%q) = %v, want ok=%v", tc.image, err, tc.ok)
		}
		if err != nil && fieldOf(err) != "environment.image" {
			t.Errorf("checkImageRef(%q): field %q, want environment.image", tc.image, fieldOf(err))
		}
	}
}

func TestCheckImageRuntimeMatchesProvider(t *testing.T) {
	target := &api.Target{TargetSpec: api.TargetSpec{Name: "c1", Provider: "fake"}}
	for _, tc := range []struct {
		name  string
		prov  nodes.Provider
		image string
		ok    bool
	}{
		{"process run, process nodes", runtimesProv{[]string{"process"}}, "", true},
		{"image run, process nodes", runtimesProv{[]string{"process"}}, "amld/base:cpu", false},
		{"image run, local nodes with an engine", runtimesProv{[]string{"process", "docker"}}, "amld/base:cpu", true},
		{"process run, local nodes with an engine", runtimesProv{[]string{"process", "docker"}}, "", true},
		{"image run, docker provider", runtimesProv{[]string{"docker"}}, "amld/base:cpu", true},
		{"process run, docker provider", runtimesProv{[]string{"docker"}}, "", false},
		{"image run, provider without the ability", plainProv{}, "amld/base:cpu", false},
		{"process run, provider without the ability", plainProv{}, "", true},
		{"image run, no provider", nil, "amld/base:cpu", false},
	} {
		s := &api.RunSpec{Command: []string{"true"}, Environment: api.Environment{Image: tc.image}}
		err := checkImageRuntime(s, target, tc.prov)
		if tc.ok != (err == nil) {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && fieldOf(err) != "environment.image" {
			t.Errorf("%s: field %q, want environment.image", tc.name, fieldOf(err))
		}
	}
}
