package raftstore

import (
	"encoding/binary"
	"fmt"

	"github.com/amld/amld/api"
	memdb "github.com/hashicorp/go-memdb"
)

// Table names of the state store.
const (
	tableMeta        = "meta"
	tableCredentials = "credentials"
	tableUsers       = "users"
	tableTargets     = "targets"
	tableNodes       = "nodes"
	tableRuns        = "runs"
	tableLogStreams  = "log_streams"
	tableLogChunks   = "log_chunks"
	tableBlobs       = "blobs"
	tableHosts       = "hosts"
	tableRunKeys     = "run_keys"
)

// Index names besides "id".
const (
	indexID      = "id"
	indexTarget  = "target"  // nodes, runs: by target (then ID, or QueueSeq)
	indexSubject = "subject" // credentials: by kind and subject
	indexQueue   = "queue"   // runs: Queued without a live attempt, by target, then queue order
	indexLive    = "node"    // runs: by the nodes their live attempt holds
)

// tableOrder is the order tables are written in a snapshot.
var tableOrder = []string{
	tableMeta, tableCredentials, tableUsers, tableTargets, tableNodes,
	tableRuns, tableLogStreams, tableLogChunks, tableBlobs,
	tableHosts,
	tableRunKeys,
}

// logStream is the per-stream row of a node's output of one attempt.
type logStream struct {
	RunID   string `json:"run_id"`
	Attempt int    `json:"attempt"`
	Node    int    `json:"node"`
	// Length is the stream's size in bytes, marker included.
	Length int64 `json:"length"`
	// Truncated is set once the cap was reached; later appends are dropped.
	Truncated bool `json:"truncated,omitempty"`
}

// logChunk is one appended piece of a stream, keyed by the offset where it
// ends (so a lower-bound seek on offset+1 finds the chunk holding offset).
type logChunk struct {
	RunID   string `json:"run_id"`
	Attempt int    `json:"attempt"`
	Node    int    `json:"node"`
	Offset  int64  `json:"offset"`
	Data    []byte `json:"data"`
}

func (c *logChunk) end() int64 { return c.Offset + int64(len(c.Data)) }

// newDB returns an empty state database.
//
// It is a memdb Snapshot of a new database, not the database itself:
// memdb tracks, for watchers, every radix node a write transaction of a
// primary database replaces, and closes each node's channel on commit. No
// one here watches (blocking queries wait on FSM.publish, which is one
// channel per commit), and that tracking cost about a tenth of applying a
// submit; a snapshot's write transactions skip it and are otherwise the same.
func newDB() (*memdb.MemDB, error) {
	db, err := memdb.NewMemDB(newSchema())
	if err != nil {
		return nil, err
	}
	return db.Snapshot(), nil
}

// newSchema returns the state store's schema.
func newSchema() *memdb.DBSchema {
	single := func(f func(obj any) []any) *keyIndexer { return &keyIndexer{key: f} }
	id := func(f func(obj any) []any) map[string]*memdb.IndexSchema {
		return map[string]*memdb.IndexSchema{indexID: {Name: indexID, Unique: true, Indexer: single(f)}}
	}
	tables := map[string]*memdb.TableSchema{
		tableMeta:        {Indexes: id(func(any) []any { return []any{"meta"} })},
		tableCredentials: {Indexes: id(func(o any) []any { return []any{o.(*Credential).Hash} })},
		tableUsers:       {Indexes: id(func(o any) []any { return []any{o.(*api.User).Name} })},
		tableTargets:     {Indexes: id(func(o any) []any { return []any{o.(*api.Target).Name} })},
		tableNodes:       {Indexes: id(func(o any) []any { return []any{o.(*api.Node).ID} })},
		tableRuns:        {Indexes: id(func(o any) []any { return []any{o.(*api.Run).ID} })},
		tableLogStreams: {Indexes: id(func(o any) []any {
			s := o.(*logStream)
			return []any{s.RunID, s.Attempt, s.Node}
		})},
		tableLogChunks: {Indexes: id(func(o any) []any {
			c := o.(*logChunk)
			return []any{c.RunID, c.Attempt, c.Node, c.end()}
		})},
		tableBlobs:   {Indexes: id(func(o any) []any { return []any{o.(*Blob).ID} })},
		tableHosts:   {Indexes: id(func(o any) []any { return []any{o.(*Host).Name} })},
		tableRunKeys: {Indexes: id(func(o any) []any { return []any{o.(*RunKey).RunID} })},
	}
	tables[tableCredentials].Indexes[indexSubject] = &memdb.IndexSchema{
		Name: indexSubject,
		Indexer: single(func(o any) []any {
			c := o.(*Credential)
			return []any{c.Kind, c.Subject}
		}),
	}
	tables[tableNodes].Indexes[indexTarget] = &memdb.IndexSchema{
		Name:    indexTarget,
		Indexer: single(func(o any) []any { return []any{o.(*api.Node).Target} }),
	}
	runs := tables[tableRuns].Indexes
	runs[indexTarget] = &memdb.IndexSchema{
		Name: indexTarget,
		Indexer: single(func(o any) []any {
			r := o.(*api.Run)
			return []any{r.Target, r.QueueSeq}
		}),
	}
	runs[indexQueue] = &memdb.IndexSchema{
		Name:         indexQueue,
		AllowMissing: true,
		Indexer: single(func(o any) []any {
			r := o.(*api.Run)
			if r.State != api.RunQueued || r.LiveAttempt() != nil {
				return nil
			}
			// Higher priority first: the negated priority sorts so.
			return []any{r.Target, -int64(r.Priority), r.QueueSeq}
		}),
	}
	runs[indexLive] = &memdb.IndexSchema{
		Name:         indexLive,
		AllowMissing: true,
		Indexer: &multiKeyIndexer{keys: func(o any) [][]any {
			a := o.(*api.Run).LiveAttempt()
			if a == nil {
				return nil
			}
			keys := make([][]any, 0, len(a.Allocations))
			seen := make(map[string]bool, len(a.Allocations))
			for _, al := range a.Allocations {
				if !seen[al.NodeID] {
					seen[al.NodeID] = true
					keys = append(keys, []any{al.NodeID})
				}
			}
			return keys
		}},
	}
	addClusterTables(tables, id)
	for name, t := range tables {
		t.Name = name
	}
	return &memdb.DBSchema{Tables: tables}
}

// appendKey appends the order-preserving encoding of v: a string and a NUL,
// or eight big-endian bytes (signed integers with the sign bit flipped).
func appendKey(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		b = append(b, x...)
		return append(b, 0), nil
	case uint64:
		return binary.BigEndian.AppendUint64(b, x), nil
	case int:
		return binary.BigEndian.AppendUint64(b, uint64(x)^(1<<63)), nil
	case int64:
		return binary.BigEndian.AppendUint64(b, uint64(x)^(1<<63)), nil
	default:
		return nil, fmt.Errorf("raftstore: cannot index a %T", v)
	}
}

func encodeKey(parts ...any) ([]byte, error) {
	var b []byte
	for _, p := range parts {
		var err error
		if b, err = appendKey(b, p); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// keyIndexer indexes a record by a tuple of strings and integers; key
// returns nil for a record that is not in the index. Lookups pass the
// tuple, or a leading part of it, as arguments.
type keyIndexer struct {
	key func(obj any) []any
}

var (
	_ memdb.SingleIndexer = (*keyIndexer)(nil)
	_ memdb.PrefixIndexer = (*keyIndexer)(nil)
	_ memdb.MultiIndexer  = (*multiKeyIndexer)(nil)
)

func (x *keyIndexer) FromObject(obj any) (bool, []byte, error) {
	parts := x.key(obj)
	if parts == nil {
		return false, nil, nil
	}
	b, err := encodeKey(parts...)
	return err == nil, b, err
}

func (x *keyIndexer) FromArgs(args ...any) ([]byte, error) { return encodeKey(args...) }

func (x *keyIndexer) PrefixFromArgs(args ...any) ([]byte, error) { return encodeKey(args...) }

// multiKeyIndexer is keyIndexer for records with several keys.
type multiKeyIndexer struct {
	keys func(obj any) [][]any
}

func (x *multiKeyIndexer) FromObject(obj any) (bool, [][]byte, error) {
	keys := x.keys(obj)
	if len(keys) == 0 {
		return false, nil, nil
	}
	out := make([][]byte, len(keys))
	for i, k := range keys {
		b, err := encodeKey(k...)
		if err != nil {
			return false, nil, err
		}
		out[i] = b
	}
	return true, out, nil
}

func (x *multiKeyIndexer) FromArgs(args ...any) ([]byte, error) { return encodeKey(args...) }
