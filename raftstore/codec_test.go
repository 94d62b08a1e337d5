package raftstore

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	req := &RunCancelRequest{RunID: "r-1", Time: t0}
	b, err := EncodeCommand(MsgRunCancel, req)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != byte(MsgRunCancel) {
		t.Fatalf("type byte %d", b[0])
	}
	typ, got, err := DecodeCommand(b)
	if err != nil || typ != MsgRunCancel {
		t.Fatalf("decode: %v %v", typ, err)
	}
	if g := got.(*RunCancelRequest); g.RunID != "r-1" || !g.Time.Equal(t0) {
		t.Fatalf("decoded %+v", g)
	}
	// A value works as well as a pointer.
	if _, err := EncodeCommand(MsgRunCancel, *req); err != nil {
		t.Fatal(err)
	}
}

func TestEncodeRefusesMismatchedRequests(t *testing.T) {
	cases := map[string]struct {
		t   MsgType
		req any
	}{
		"wrong type":   {MsgRunCancel, &RunSubmitRequest{}},
		"nil pointer":  {MsgRunCancel, (*RunCancelRequest)(nil)},
		"untyped nil":  {MsgRunCancel, nil},
		"unknown type": {MsgType(200), &RunCancelRequest{}},
	}
	for name, c := range cases {
		if _, err := EncodeCommand(c.t, c.req); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}

func TestDecodeRefusesBadEntries(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":        nil,
		"unknown type": {0, '{', '}'},
		"type only":    {byte(MsgRunSubmit)},
		"bad json":     append([]byte{byte(MsgRunSubmit)}, `{"run":`...),
		"wrong shape":  append([]byte{byte(MsgRunSubmit)}, `{"run":[1,2]}`...),
	} {
		if _, _, err := DecodeCommand(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	if _, _, err := DecodeCommand([]byte{250}); !errors.Is(err, ErrUnknownCommand) {
		t.Errorf("unknown type: %v", err)
	}
}

func TestEveryMsgTypeHasARequestAndAName(t *testing.T) {
	for mt := MsgBootstrap; mt <= MsgBlobPut; mt++ {
		newReq, ok := commandTypes[mt]
		if !ok || strings.HasPrefix(mt.String(), "MsgType(") {
			t.Fatalf("message type %d has no request or name", mt)
		}
		if _, err := EncodeCommand(mt, newReq()); err != nil {
			t.Fatalf("%v: %v", mt, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.ID, good.DataDir, good.BindAddr = "s1", "/tmp/x", "127.0.0.1:7001"
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	zero := Config{ID: "s1", DataDir: "/tmp/x", BindAddr: "127.0.0.1:0"}
	if err := zero.Validate(); err != nil {
		t.Fatalf("zero durations mean defaults: %v", err)
	}
	cases := []struct {
		field string
		mod   func(*Config)
	}{
		{"ID", func(c *Config) { c.ID = "" }},
		{"DataDir", func(c *Config) { c.DataDir = "" }},
		{"BindAddr", func(c *Config) { c.BindAddr = "nohost" }},
		{"AdvertiseAddr", func(c *Config) { c.AdvertiseAddr = "0.0.0.0:7001" }},
		{"HeartbeatTimeout", func(c *Config) { c.HeartbeatTimeout = time.Millisecond }},
		{"ElectionTimeout", func(c *Config) { c.ElectionTimeout = 2 * time.Minute }},
		{"CommitTimeout", func(c *Config) { c.CommitTimeout = time.Microsecond }},
		{"SnapshotInterval", func(c *Config) { c.SnapshotInterval = time.Millisecond }},
		{"SnapshotRetain", func(c *Config) { c.SnapshotRetain = -1 }},
		{"LeaderLeaseTimeout", func(c *Config) { c.LeaderLeaseTimeout = time.Second }},
		{"ElectionTimeout", func(c *Config) { c.HeartbeatTimeout = time.Second; c.LeaderLeaseTimeout = time.Second }},
	}
	for _, tc := range cases {
		c := good
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: got %v", tc.field, err)
		}
	}
}

func TestStateOfAnEmptyFSM(t *testing.T) {
	st := NewFSM(nil).State()
	if st.Index() != 0 || st.Meta() != nil || st.Run("x") != nil || len(st.Runs()) != 0 || len(st.PendingRuns()) != 0 {
		t.Fatal("empty state is not empty")
	}
	if _, _, ok := st.Log("x", 1, 0, 0); ok {
		t.Fatal("log of nothing")
	}
}

// TestDecodedRunsKeepSmallEnvMaps: the log's decoder makes every
// map[string]string with room for 64 entries (about 5 KB); the state keeps
// every submitted run, so DecodeCommand hands runs over with their
// environment in a map sized to it.
func TestDecodedRunsKeepSmallEnvMaps(t *testing.T) {
	data, err := EncodeCommand(MsgRunSubmit, &RunSubmitRequest{Run: &api.Run{ID: "run-1",
		RunSpec: api.RunSpec{Target: "cpu", Command: []string{"true"}, Env: map[string]string{"EPOCHS": "10", "LR": "0.1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	retained := int64(1 << 62)
	for range 3 { // the least of three: other goroutines may allocate too
		keep := make([]any, n)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := range keep {
			_, keep[i], _ = DecodeCommand(data)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		retained = min(retained, (int64(after.HeapAlloc)-int64(before.HeapAlloc))/n)
		runtime.KeepAlive(keep)
	}
	_, req, err := DecodeCommand(data)
	if err != nil {
		t.Fatal(err)
	}
	if env := req.(*RunSubmitRequest).Run.Env; len(env) != 2 || env["LR"] != "0.1" {
		t.Fatalf("env %v", env)
	}
	// A 64-entry map alone is over 4 KB; the whole request is under 2 KB.
	if retained > 3000 {
		t.Fatalf("a decoded submit with two environment variables holds %d bytes", retained)
	}
	t.Logf("a decoded submit holds %d bytes", retained)
}
