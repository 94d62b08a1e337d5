package server

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"testing"

	"github.com/amld/amld/api"
	fastjson "github.com/segmentio/encoding/json"
)

// bodyTypes are the request bodies the API decodes (decodeBody's callers).
var bodyTypes = map[string]func() any{
	"RunSpec":          func() any { return new(api.RunSpec) },
	"TargetSpec":       func() any { return new(api.TargetSpec) },
	"TargetUpdate":     func() any { return new(api.TargetUpdate) },
	"User":             func() any { return new(api.User) },
	"RegisterRequest":  func() any { return new(api.RegisterRequest) },
	"HeartbeatRequest": func() any { return new(api.HeartbeatRequest) },
	"AttemptStatus":    func() any { return new(api.AttemptStatus) },
	"LogAppend":        func() any { return new(api.LogAppend) },
	"JoinHeadRequest":  func() any { return new(api.JoinHeadRequest) },
	"AttachRequest":    func() any { return new(api.AttachRequest) },
	"EvictionRequest":  func() any { return new(api.EvictionRequest) },
}

// stdDecode is decodeBody as it was before the fast path: encoding/json
// alone, strict.
func stdDecode(data []byte, v any) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if dec.Decode(v) != nil || dec.More() {
		return false
	}
	_, err := dec.Token()
	return err == io.EOF
}

// FuzzDecodeJSONLikeEncodingJSON: every body the fast decoder takes,
// encoding/json takes too, with the same value, for every body type the
// API decodes. (What the fast decoder refuses goes to encoding/json, so
// its answers are the same by construction.)
func FuzzDecodeJSONLikeEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"target":"cpu-cluster","command":["python3","train.py"],"node_count":2,"resources":{"cpus":1,"memory_mb":512,"gpus":1}}`,
		`{"target":"x","command":[],"env":{"A":"b","ü":"\u00fc\ud83d\ude80"},"max_preemptions":-1,"priority":10}`,
		`{"name":"cpu-cluster","vm_size":"cpu-2","min_nodes":0,"max_nodes":4,"idle_seconds_before_scaledown":120,"priority":"lowpriority"}`,
		`{"max_nodes":9,"min_nodes":null}`,
		`{"name":"alice","role":"admin"}`,
		`{"run_id":"run-1","attempt":1,"node":0,"state":"Running","exit_code":0,"time":"2026-11-27T14:00:00Z"}`,
		`{"run_id":"run-1","attempt":2,"node":1,"data":"aGVsbG8="}`,
		`{"Target":"x","COMMAND":["a"]}`,
		`{"target":"a","target":"b"}`,
		`{"target":"a"} `,
		`{"target":"a"}{"target":"b"}`,
		`{"node_count":1e3}`, `{"node_count":1.0}`, `{"node_count":-0}`, `{"node_count":99999999999999999999}`,
		`{"target":"bad \xff utf-8","command":["\ud800"]}`,
		`{"target":"\u0000","env":{"":""}}`,
		`{"resources":null,"env":null,"command":null}`,
		`{"reſources":{"cpus":1}}`, `{"re\u017fources":{"cpus":1}}`, `{"node_K":1}`, // case folds only encoding/json knows
		`null`, ` `, ``, `[]`, `"x"`, `{"unknown":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for name, newV := range bodyTypes {
			fast := newV()
			rest, err := fastjson.Parse(body, fast, fastjson.DisallowUnknownFields)
			if err != nil || len(bytes.TrimLeft(rest, " \t\r\n")) != 0 {
				continue // decodeJSON asks encoding/json
			}
			std := newV()
			if !stdDecode(body, std) {
				t.Fatalf("%s: the fast decoder took %q, encoding/json refuses it", name, body)
			}
			if !reflect.DeepEqual(fast, std) {
				t.Fatalf("%s: decodings of %q differ:\nfast:          %+v\nencoding/json: %+v", name, body, fast, std)
			}
		}
	})
}

// TestDecodeJSONAnswersAsEncodingJSON: decodeJSON's errors are
// encoding/json's, worded by bodyError, whichever decoder refused first.
func TestDecodeJSONAnswersAsEncodingJSON(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{``, "is empty"},
		{`{"target":"a"}{"target":"b"}`, "more than one value"},
		{`{"target":"a"} x`, "malformed JSON"},
		{`{"target":1}`, "target"},
		{`{"nope":1}`, "nope"},
		{`{"command":"notalist"}`, "command"},
	} {
		var spec api.RunSpec
		err := decodeJSON([]byte(tc.body), &spec)
		if err == nil || api.StatusOf(err) != 400 || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
			t.Errorf("%q: %v, want a 400 naming %q", tc.body, err, tc.want)
		}
	}
	var spec api.RunSpec
	if err := decodeJSON([]byte(`{"target":"cpu","command":["true"]} `), &spec); err != nil || spec.Target != "cpu" || len(spec.Command) != 1 {
		t.Fatalf("a good body: %+v %v", spec, err)
	}
}
