package raftstore

import (
	"fmt"

	"github.com/amld/amld/api"
)

// logTruncatedMarker ends a stream that reached api.MaxLogBytesPerStream.
var logTruncatedMarker = fmt.Sprintf("\n[amld: log truncated at %d MiB]\n", api.MaxLogBytesPerStream>>20)

// maxBlobBytes caps a stored blob: the larger of the documented caps.
const maxBlobBytes = max(api.MaxSourceBytes, api.MaxOutputsBytes)

// logAppend appends to a node's output of a live attempt. Bytes before the
// stream's end are ignored (an agent may resend); a gap past the end is
// refused; past the cap one marker is written and the rest dropped.
func (a *applier) logAppend(r *LogAppendRequest) error {
	l := r.Log
	run := a.run(l.RunID)
	if run == nil {
		return api.NotFound("run %q not found", l.RunID)
	}
	if _, err := fence(run, l.Attempt, l.NodeIndex, r.NodeID); err != nil {
		return err
	}
	if l.Offset < 0 {
		return api.Invalid("offset", "must be at least 0")
	}
	if len(l.Data) > api.MaxLogChunkBytes {
		return api.TooLarge("a log chunk of %d bytes is over the cap of %d", len(l.Data), api.MaxLogChunkBytes)
	}
	s := first[logStream](a.txn, tableLogStreams, l.RunID, l.Attempt, l.NodeIndex)
	if s == nil {
		s = &logStream{RunID: l.RunID, Attempt: l.Attempt, Node: l.NodeIndex}
	}
	if s.Truncated {
		return nil
	}
	if l.Offset > s.Length {
		return api.FailedPrecondition("log offset %d is past the end of the stream (%d bytes)", l.Offset, s.Length)
	}
	if l.Offset+int64(len(l.Data)) <= s.Length {
		return nil // already stored
	}
	data := l.Data[s.Length-l.Offset:]
	ns := *s
	if room := api.MaxLogBytesPerStream - s.Length; int64(len(data)) > room {
		data = append(data[:room:room], logTruncatedMarker...)
		ns.Truncated = true
	}
	a.insert(tableLogChunks, &logChunk{RunID: s.RunID, Attempt: s.Attempt, Node: s.Node, Offset: s.Length, Data: data})
	ns.Length += int64(len(data))
	a.insert(tableLogStreams, &ns)
	return nil
}

// blobPut stores a blob once; a second put of the same ID changes nothing.
func (a *applier) blobPut(r *BlobPutRequest) error {
	b := r.Blob
	if b == nil {
		return api.Invalid("blob", "is required")
	}
	if err := checkKey("id", b.ID); err != nil {
		return err
	}
	if first[Blob](a.txn, tableBlobs, b.ID) != nil {
		return nil
	}
	if len(b.Data) > maxBlobBytes {
		return api.TooLarge("a blob of %d bytes is over the cap of %d", len(b.Data), maxBlobBytes)
	}
	b.Size = int64(len(b.Data))
	a.insert(tableBlobs, b)
	return nil
}
