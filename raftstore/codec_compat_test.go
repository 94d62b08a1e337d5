package raftstore

import (
	stdjson "encoding/json"
	"maps"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/amld/amld/api"
	segjson "github.com/segmentio/encoding/json"
	"pgregory.net/rapid"
)

// Every head decodes every log entry, so the log is decoded with
// github.com/segmentio/encoding/json, about four times quicker than
// encoding/json; entries are still written by encoding/json (segmentio's
// encoder ignores omitzero). Heads must agree on every entry whichever
// decoder they use (a rolling upgrade mixes builds):
// TestFastJSONDecodesLikeEncodingJSON fills every command type, and every
// API type (the client decodes answers the same way), with random values,
// some left zero, and checks that both decoders read what encoding/json
// wrote as the same value.

// tricky are strings a JSON encoder may treat specially.
var tricky = []string{"", "a", "run-0123456789", "<b>&amp;</b>", "ünïcödé ✓", "line\nbreak\ttab", "quote\" back\\slash",
	"\u2028\u2029", "\x00\x1f", "bad \xff utf-8", "emoji 🚀", "/slash/", "1e3"}

// fill sets every field that v (a settable value) reaches to random
// values, leaving some of them zero (omitempty and omitzero matter).
func fill(t *rapid.T, v reflect.Value, depth int) {
	isTime := v.Type() == reflect.TypeFor[time.Time]()
	if (isTime || v.Kind() != reflect.Struct) && rapid.IntRange(0, 4).Draw(t, "zero") == 0 {
		return
	}
	if isTime {
		sec := rapid.Int64Range(-1<<33, 1<<34).Draw(t, "sec")
		tm := time.Unix(sec, int64(rapid.IntRange(0, 999999999).Draw(t, "nsec")))
		if rapid.Bool().Draw(t, "utc") {
			tm = tm.UTC()
		} else {
			tm = tm.In(time.FixedZone("", rapid.IntRange(-12, 14).Draw(t, "zone")*3600))
		}
		v.Set(reflect.ValueOf(tm))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(t, v.Field(i), depth)
			}
		}
	case reflect.Pointer:
		if depth < 4 && rapid.IntRange(0, 3).Draw(t, "nonNil") > 0 {
			p := reflect.New(v.Type().Elem())
			fill(t, p.Elem(), depth+1)
			v.Set(p)
		}
	case reflect.Slice:
		if depth >= 4 {
			return
		}
		n := rapid.IntRange(0, 3).Draw(t, "len")
		if n == 0 && rapid.Bool().Draw(t, "nilSlice") {
			return
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fill(t, s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Map:
		if depth >= 4 {
			return
		}
		m := reflect.MakeMap(v.Type())
		for range rapid.IntRange(0, 3).Draw(t, "mapLen") {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(t, k, depth+1)
			fill(t, e, depth+1)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.String:
		v.SetString(rapid.SampledFrom(tricky).Draw(t, "string"))
	case reflect.Bool:
		v.SetBool(rapid.Bool().Draw(t, "bool"))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		bits := v.Type().Bits()
		v.SetInt(rapid.Int64Range(-1<<(bits-1), 1<<(bits-1)-1).Draw(t, "int"))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		v.SetUint(rapid.Uint64Range(0, math.MaxUint64>>(64-v.Type().Bits())).Draw(t, "uint"))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(rapid.SampledFrom([]float64{0, 1, -1.5, 1e21, 1e-7, 123456.789, math.MaxFloat32}).Draw(t, "float"))
	case reflect.Interface:
		// Left nil: no command holds an interface today, and a nil one
		// encodes as null in both.
	default:
		t.Fatalf("fill: %v of kind %v", v.Type(), v.Kind())
	}
}

// apiTypes are what the API sends and answers.
var apiTypes = map[string]func() any{
	"RegisterRequest": func() any { return new(api.RegisterRequest) }, "RegisterResponse": func() any { return new(api.RegisterResponse) },
	"HeartbeatRequest": func() any { return new(api.HeartbeatRequest) }, "AssignmentsResponse": func() any { return new(api.AssignmentsResponse) },
	"AttemptStatus": func() any { return new(api.AttemptStatus) }, "LogAppend": func() any { return new(api.LogAppend) },
	"LogChunk": func() any { return new(api.LogChunk) }, "BlobRef": func() any { return new(api.BlobRef) },
	"Status": func() any { return new(api.Status) }, "Members": func() any { return new([]api.Member) },
	"JoinHeadRequest": func() any { return new(api.JoinHeadRequest) }, "JoinHeadResponse": func() any { return new(api.JoinHeadResponse) },
	"ErrorEnvelope": func() any { return new(api.ErrorEnvelope) }, "AttachRequest": func() any { return new(api.AttachRequest) },
	"AttachResult": func() any { return new(api.AttachResult) }, "Host": func() any { return new(api.Host) },
	"AttemptSSH": func() any { return new(api.AttemptSSH) }, "NodeViews": func() any { return new([]api.NodeView) },
	"EvictionRequest": func() any { return new(api.EvictionRequest) }, "Eviction": func() any { return new(api.Eviction) },
	"RunSpec": func() any { return new(api.RunSpec) }, "Runs": func() any { return new([]*api.Run) },
	"TargetSpec": func() any { return new(api.TargetSpec) }, "Targets": func() any { return new([]*api.Target) },
	"TargetUpdate": func() any { return new(api.TargetUpdate) }, "User": func() any { return new(api.User) },
	"UserCreated": func() any { return new(api.UserCreated) }, "Whoami": func() any { return new(api.Whoami) },
}

func TestFastJSONDecodesLikeEncodingJSON(t *testing.T) {
	types := maps.Clone(apiTypes)
	for typ, newReq := range commandTypes {
		types[typ.String()+"Request"] = newReq
	}
	for name, newReq := range types {
		t.Run(name, func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				req := newReq()
				fill(t, reflect.ValueOf(req).Elem(), 0)
				data, err := stdjson.Marshal(req)
				if err != nil {
					t.Fatal(err)
				}
				fromStd, fromFast := newReq(), newReq()
				if err := stdjson.Unmarshal(data, fromStd); err != nil {
					t.Fatal(err)
				}
				if err := segjson.Unmarshal(data, fromFast); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(fromStd, fromFast) {
					t.Fatalf("decodings of %s differ:\nencoding/json: %+v\nsegmentio:     %+v", data, fromStd, fromFast)
				}
			})
		})
	}
}
