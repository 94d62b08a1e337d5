package raftstore

import (
	"bytes"
	"strings"
	"testing"

	"github.com/amld/amld/api"
)

// logHarness has run r-1 placed on n-1 and n-2 (ranks 0 and 1).
func logHarness(t *testing.T) *harness {
	h := newHarness(t)
	h.cluster("cpu", 4)
	h.readyNode("n-1", "cpu", size4)
	h.readyNode("n-2", "cpu", size4)
	h.submit("r-1", "cpu", func(r *api.Run) { r.NodeCount = 2 })
	h.place("r-1", "n-1", "n-2")
	return h
}

func (h *harness) appendLog(node string, rank int, offset int64, data string) error {
	h.t.Helper()
	return h.apply(MsgLogAppend, &LogAppendRequest{NodeID: node, Log: api.LogAppend{
		AttemptKey: api.AttemptKey{RunID: "r-1", Attempt: len(h.run("r-1").Attempts), NodeIndex: rank},
		Offset:     offset, Data: []byte(data)}})
}

func TestLogAppendDedupesByOffset(t *testing.T) {
	h := logHarness(t)
	if _, _, ok := h.st().Log("r-1", 1, 0, 0); ok {
		t.Fatal("a stream exists before any append")
	}
	steps := []struct {
		offset int64
		data   string
	}{
		{0, "hello "},
		{0, "hello "},        // resent whole: ignored
		{3, "lo world\n"},    // overlaps: only "world\n" is new
		{6, "world\nagain"},  // overlaps again
		{17, "!"},            // exactly at the end
		{18, ""},             // nothing
		{2, "llo world\nag"}, // entirely old
	}
	for _, s := range steps {
		if err := h.appendLog("n-1", 0, s.offset, s.data); err != nil {
			t.Fatalf("append at %d: %v", s.offset, err)
		}
	}
	const want = "hello world\nagain!"
	data, length, ok := h.st().Log("r-1", 1, 0, 0)
	if !ok || string(data) != want || length != int64(len(want)) {
		t.Fatalf("log %q (%d, %v), want %q", data, length, ok, want)
	}
	for off := int64(0); off <= int64(len(want))+2; off++ {
		data, _, _ := h.st().Log("r-1", 1, 0, off)
		if exp := want[min(off, int64(len(want))):]; string(data) != exp {
			t.Fatalf("from %d: %q, want %q", off, data, exp)
		}
	}
	// A gap past the end is refused, and the other rank's stream is its own.
	wantAPIError(t, h.appendLog("n-1", 0, 100, "x"), api.CodeFailedPre)
	if err := h.appendLog("n-2", 1, 0, "rank one\n"); err != nil {
		t.Fatal(err)
	}
	if data, _, _ := h.st().Log("r-1", 1, 1, 0); string(data) != "rank one\n" {
		t.Fatalf("rank 1 log %q", data)
	}
	if data, _, _ := h.st().Log("r-1", 1, 0, 0); string(data) != want {
		t.Fatalf("rank 0 log changed: %q", data)
	}
	wantAPIError(t, h.appendLog("n-1", 0, -1, "x"), api.CodeInvalid)
	wantAPIError(t, h.appendLog("n-1", 0, 18, strings.Repeat("x", api.MaxLogChunkBytes+1)), api.CodeTooLarge)
}

func TestLogAppendCapsTheStream(t *testing.T) {
	h := logHarness(t)
	chunk := bytes.Repeat([]byte("0123456789abcdef"), api.MaxLogChunkBytes/16)
	var off int64
	for off+int64(len(chunk)) <= api.MaxLogBytesPerStream-100 {
		if err := h.appendLog("n-1", 0, off, string(chunk)); err != nil {
			t.Fatal(err)
		}
		off += int64(len(chunk))
	}
	// This one crosses the cap: its first part is kept, then the marker.
	if err := h.appendLog("n-1", 0, off, string(chunk)); err != nil {
		t.Fatal(err)
	}
	off += int64(len(chunk))
	// The agent keeps sending at its own offsets: dropped, not refused.
	if err := h.appendLog("n-1", 0, off, "more"); err != nil {
		t.Fatalf("append after truncation: %v", err)
	}
	data, length, _ := h.st().Log("r-1", 1, 0, 0)
	wantLen := int64(api.MaxLogBytesPerStream + len(logTruncatedMarker))
	if length != wantLen || int64(len(data)) != wantLen {
		t.Fatalf("length %d (%d bytes), want %d", length, len(data), wantLen)
	}
	if !bytes.HasSuffix(data, []byte("\n[amld: log truncated at 8 MiB]\n")) {
		t.Fatalf("no marker at the end: %q", data[len(data)-40:])
	}
	if !bytes.Equal(data[:len(chunk)], chunk) {
		t.Fatal("stream start corrupted")
	}
	tail, _, _ := h.st().Log("r-1", 1, 0, wantLen-int64(len(logTruncatedMarker))-3)
	if string(tail) != "def"+logTruncatedMarker {
		t.Fatalf("tail %q", tail)
	}
}

func TestLogAppendAfterAttemptEndedIsRefused(t *testing.T) {
	h := logHarness(t)
	if err := h.appendLog("n-1", 0, 0, "a"); err != nil {
		t.Fatal(err)
	}
	h.mustReport("r-1", "n-1", 0, exited(0))
	wantAPIError(t, h.appendLog("n-1", 0, 1, "b"), api.CodeFailedPre)
	if data, _, ok := h.st().Log("r-1", 1, 0, 0); !ok || string(data) != "a" {
		t.Fatalf("log of the ended attempt %q %v", data, ok)
	}
}

func TestBlobPutIsIdempotent(t *testing.T) {
	h := newHarness(t)
	h.must(MsgBlobPut, &BlobPutRequest{Blob: &Blob{ID: "sha-1", SHA256: "sha-1", Data: []byte("tar"), CreatedAt: h.tick()}})
	first := h.st().Blob("sha-1")
	h.must(MsgBlobPut, &BlobPutRequest{Blob: &Blob{ID: "sha-1", SHA256: "sha-1", Data: []byte("other"), CreatedAt: h.tick()}})
	b := h.st().Blob("sha-1")
	if b != first || string(b.Data) != "tar" || b.Size != 3 {
		t.Fatalf("blob %+v", b)
	}
	wantAPIError(t, h.apply(MsgBlobPut, &BlobPutRequest{Blob: &Blob{ID: "big", Data: make([]byte, maxBlobBytes+1)}}), api.CodeTooLarge)
	wantAPIError(t, h.apply(MsgBlobPut, &BlobPutRequest{}), api.CodeInvalid)
}
