package raftstore

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecodeCommand feeds arbitrary entries to the log decoder and to the
// FSM (on a state with every kind of record): neither may panic, and a
// refused entry must leave the state as it was.
func FuzzDecodeCommand(f *testing.F) {
	h := newHarness(f)
	scenario(h)
	for _, l := range h.log {
		f.Add(l.Data)
	}
	for mt := range commandTypes {
		for _, body := range []string{"{}", "null", `{"status":{"node_index":-1,"attempt":-5,"state":"exited","lost":true}}`,
			`{"log":{"run_id":"gang","attempt":1,"node_index":0,"offset":9223372036854775807,"data":"AA=="},"node_id":"n-1"}`,
			`{"placements":[{"run_id":"queued","allocations":[{"node_id":"n-2"},{"node_id":"n-2"}]}]}`} {
			f.Add(append([]byte{byte(mt)}, body...))
		}
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0x00})
	base := h.f
	baseIndex := h.index

	f.Fuzz(func(t *testing.T, data []byte) {
		mt, req, err := DecodeCommand(data)
		if err == nil {
			// What decodes re-encodes to something that decodes the same.
			b, err := EncodeCommand(mt, req)
			if err != nil {
				t.Fatalf("re-encode %v: %v", mt, err)
			}
			_, again, err := DecodeCommand(b)
			if err != nil {
				t.Fatalf("decode re-encoded %v: %v", mt, err)
			}
			j1, _ := json.Marshal(req)
			j2, _ := json.Marshal(again)
			if !reflect.DeepEqual(j1, j2) {
				t.Fatalf("%v does not round-trip:\n%s\n%s", mt, j1, j2)
			}
		}
		// Apply on a private copy of the scenario state, without the
		// recover that Apply has, so a panic fails the fuzz run.
		fsm := NewFSM(nil)
		fsm.db = base.db.Snapshot()
		before := base.State()
		txn := fsm.db.Txn(true)
		err = (&applier{txn: txn, index: baseIndex + 1, seq: queueSeq(baseIndex+1, 0), log: fsm.logger, ids: fsm.ids}).apply(data)
		txn.Commit()
		fsm.publish(baseIndex + 1)
		if err != nil {
			if stripHeader(dump(t, fsm.State())) != stripHeader(dump(t, before)) {
				t.Fatalf("a refused entry (%v) changed the state", err)
			}
		}
	})
}

// stripHeader drops a dump's first line (it holds the index).
func stripHeader(s string) string {
	_, rest, _ := strings.Cut(s, "\n")
	return rest
}
