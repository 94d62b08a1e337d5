package server

import (
	"bytes"
	"net/http/httptest"
	"testing"

	"github.com/amld/amld/api"
)

// FuzzDecodeRunSpec feeds arbitrary bodies through the submit decoder and
// validator: they must answer with an error or a valid spec, never panic.
func FuzzDecodeRunSpec(f *testing.F) {
	f.Add([]byte(`{"target":"cpu-cluster","command":["python3","train.py"],"node_count":2,"resources":{"cpus":1}}`))
	f.Add([]byte(`{"target":"x","command":[],"env":{"A":"b"},"max_preemptions":-1}`))
	f.Add([]byte(`{"command":"notalist"}`))
	f.Add([]byte(`[1,2,3]`))
	f.Add([]byte(`{"target":"a"}{"target":"b"}`))
	sizes := testSizes(f)
	size, _ := sizes.Get("cpu-2")
	target := &api.Target{TargetSpec: api.TargetSpec{Name: "cpu-cluster", VMSize: "cpu-2", MaxNodes: 3}}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/v1/runs", bytes.NewReader(body))
		var spec api.RunSpec
		if err := decodeBody(r, &spec); err != nil {
			if api.StatusOf(err) >= 500 {
				t.Fatalf("decode error is a 5xx: %v", err)
			}
			return
		}
		req, err := validateRunSpec(&spec, target, size)
		if err != nil {
			if api.StatusOf(err) != 400 {
				t.Fatalf("validation error is not a 400: %v", err)
			}
			return
		}
		if !req.Fits(size.Resources()) || spec.NodeCount < 1 || spec.NodeCount > target.MaxNodes || len(spec.Command) == 0 {
			t.Fatalf("accepted an impossible run: %+v request %+v", spec, req)
		}
	})
}

// FuzzDecodeTargetSpec does the same for target creation.
func FuzzDecodeTargetSpec(f *testing.F) {
	f.Add([]byte(`{"name":"cpu-cluster","vm_size":"cpu-2","max_nodes":4}`))
	f.Add([]byte(`{"name":"a","vm_size":"cpu-2","min_nodes":9,"max_nodes":4,"idle_seconds_before_scaledown":-1}`))
	f.Add([]byte(`{"name":1}`))
	sizes := testSizes(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/v1/targets", bytes.NewReader(body))
		var spec api.TargetSpec
		if err := decodeBody(r, &spec); err != nil {
			if api.StatusOf(err) >= 500 {
				t.Fatalf("decode error is a 5xx: %v", err)
			}
			return
		}
		got, err := validateTargetSpec(spec, sizes, []string{"local"}, "local")
		if err != nil {
			if api.StatusOf(err) != 400 {
				t.Fatalf("validation error is not a 400: %v", err)
			}
			return
		}
		if !validName(got.Name) || got.MaxNodes < 1 || got.MinNodes > got.MaxNodes {
			t.Fatalf("accepted an invalid target: %+v", got)
		}
	})
}
