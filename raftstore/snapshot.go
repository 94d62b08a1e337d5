package raftstore

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/amld/amld/api"
	memdb "github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
)

// The snapshot stream: a header line, one line per record tagged with its
// table, and a trailer line with the record count (a stream without it was
// cut short).
const (
	snapshotFormat  = "amld-raftstore"
	snapshotVersion = 1
	snapshotEnd     = "end"
)

type snapshotHeader struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	Index   uint64 `json:"index"`
}

type snapshotRecord struct {
	Table string `json:"t"`
	Value any    `json:"v,omitempty"`
	Count *int   `json:"count,omitempty"`
}

type snapshotRecordIn struct {
	Table string          `json:"t"`
	Value json.RawMessage `json:"v"`
	Count *int            `json:"count"`
}

// snapshotTypes makes an empty record of each table, to decode into.
var snapshotTypes = map[string]func() any{
	tableMeta:        func() any { return new(Meta) },
	tableCredentials: func() any { return new(Credential) },
	tableUsers:       func() any { return new(api.User) },
	tableTargets:     func() any { return new(api.Target) },
	tableNodes:       func() any { return new(api.Node) },
	tableRuns:        func() any { return new(api.Run) },
	tableLogStreams:  func() any { return new(logStream) },
	tableLogChunks:   func() any { return new(logChunk) },
	tableBlobs:       func() any { return new(Blob) },
	tableHosts:       func() any { return new(Host) },
	tableRunKeys:     func() any { return new(RunKey) },
}

// fsmSnapshot is a captured read view; Persist writes it.
type fsmSnapshot struct {
	state *State
}

var _ raft.FSMSnapshot = (*fsmSnapshot)(nil)

// Persist writes the snapshot to sink, cancelling the sink on any error.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := writeSnapshot(sink, s.state); err != nil {
		if cerr := sink.Cancel(); cerr != nil {
			return errors.Join(err, fmt.Errorf("raftstore: cancel snapshot: %w", cerr))
		}
		return err
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("raftstore: close snapshot: %w", err)
	}
	return nil
}

// Release does nothing: the view holds no resources.
func (s *fsmSnapshot) Release() {}

// writeSnapshot writes every table of st to w.
func writeSnapshot(w io.Writer, st *State) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(snapshotHeader{Format: snapshotFormat, Version: snapshotVersion, Index: st.index}); err != nil {
		return fmt.Errorf("raftstore: write snapshot: %w", err)
	}
	txn := st.txn()
	n := 0
	for _, table := range tableOrder {
		it, err := txn.Get(table, indexID)
		if err != nil {
			return fmt.Errorf("raftstore: write snapshot: %s: %w", table, err)
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			if err := enc.Encode(snapshotRecord{Table: table, Value: raw}); err != nil {
				return fmt.Errorf("raftstore: write snapshot: %s: %w", table, err)
			}
			n++
		}
	}
	if err := enc.Encode(snapshotRecord{Table: snapshotEnd, Count: &n}); err != nil {
		return fmt.Errorf("raftstore: write snapshot: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("raftstore: write snapshot: %w", err)
	}
	return nil
}

// readSnapshot builds a fresh database from a snapshot stream and returns
// it with the index it reflects.
func readSnapshot(r io.Reader) (*memdb.MemDB, uint64, error) {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 256<<10))
	var h snapshotHeader
	if err := dec.Decode(&h); err != nil {
		return nil, 0, fmt.Errorf("raftstore: read snapshot header: %w", err)
	}
	if h.Format != snapshotFormat || h.Version != snapshotVersion {
		return nil, 0, fmt.Errorf("raftstore: read snapshot: format %q version %d, want %q version %d",
			h.Format, h.Version, snapshotFormat, snapshotVersion)
	}
	db, err := newDB()
	if err != nil {
		return nil, 0, fmt.Errorf("raftstore: schema: %w", err)
	}
	txn := db.Txn(true)
	defer txn.Abort()
	n := 0
	for {
		var rec snapshotRecordIn
		if err := dec.Decode(&rec); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, 0, fmt.Errorf("raftstore: read snapshot record %d: %w", n+1, err)
		}
		if rec.Table == snapshotEnd {
			if rec.Count == nil {
				return nil, 0, fmt.Errorf("raftstore: read snapshot: trailer has no count")
			}
			if *rec.Count != n {
				return nil, 0, fmt.Errorf("raftstore: read snapshot: trailer counts %d records, read %d", *rec.Count, n)
			}
			break
		}
		newRecord, ok := snapshotTypes[rec.Table]
		if !ok {
			return nil, 0, fmt.Errorf("raftstore: read snapshot record %d: unknown table %q", n+1, rec.Table)
		}
		obj := newRecord()
		if err := json.Unmarshal(rec.Value, obj); err != nil {
			return nil, 0, fmt.Errorf("raftstore: read snapshot record %d (%s): %w", n+1, rec.Table, err)
		}
		if err := txn.Insert(rec.Table, obj); err != nil {
			return nil, 0, fmt.Errorf("raftstore: read snapshot record %d (%s): %w", n+1, rec.Table, err)
		}
		n++
	}
	txn.Commit()
	return db, h.Index, nil
}
