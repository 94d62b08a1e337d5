package server

import (
	"slices"
	"strings"

	"github.com/distribution/reference"

	"github.com/amld/amld/api"
	"github.com/amld/amld/nodes"
)

// runtimeProvider is an optional ability of a node provider: it says which
// runtimes the agents of its nodes have. A provider without it gives
// process-runtime nodes only.
type runtimeProvider interface {
	Runtimes() []string
}

// providerRuntimes lists the runtimes prov's nodes have.
func providerRuntimes(prov nodes.Provider) []string {
	if rp, ok := prov.(runtimeProvider); ok {
		return rp.Runtimes()
	}
	return []string{"process"}
}

// checkImageRef checks that a run's image, when it has one, is a valid
// Docker image reference ("python:3.12", "amld/base:cpu",
// "registry.example:5000/team/img@sha256:...").
func checkImageRef(image string) error {
	if image == "" {
		return nil
	}
	if strings.TrimSpace(image) != image {
		return api.Invalid("environment.image", "%q has surrounding white space", image)
	}
	if _, err := reference.ParseNormalizedNamed(image); err != nil {
		return api.Invalid("environment.image", "%q is not a valid image reference: %v", image, err)
	}
	return nil
}

// checkImageRuntime refuses a run with an image on a target whose provider
// cannot give nodes with the docker runtime, and a run without one on a
// target whose nodes have no process runtime of use (docker provider).
func checkImageRuntime(s *api.RunSpec, t *api.Target, prov nodes.Provider) error {
	rts := []string{"process"}
	if prov != nil {
		rts = providerRuntimes(prov)
	}
	if s.Environment.Image == "" {
		if slices.Contains(rts, "process") {
			return nil
		}
		return api.Invalid("environment.image", "is required on target %s: its nodes (provider %s) run every run in a container, e.g. --image amld/base:cpu", t.Name, t.Provider)
	}
	if slices.Contains(rts, "docker") {
		return nil
	}
	return api.Invalid("environment.image", "target %s (provider %s) has no nodes that run images: no Docker Engine answered this head; leave image empty to use the process runtime, or submit to a target with --provider docker", t.Name, t.Provider)
}
