package raftstore

import (
	"time"

	"github.com/amld/amld/api"
	memdb "github.com/hashicorp/go-memdb"
)

// Tables of the cluster's own records.
const (
	tableHeads   = "heads"
	tableSecrets = "secrets"
)

// Head is one head (server) of the cluster as the replicated state knows
// it: the addresses its peers, agents and clients reach it at. The Raft
// configuration says who votes; this table says where each head's API is.
type Head struct {
	ID       string    `json:"id"`
	APIAddr  string    `json:"api_addr"`  // URL of the head's HTTP API
	RaftAddr string    `json:"raft_addr"` // host:port of its Raft transport
	Since    time.Time `json:"since"`
	// LogVersion is the newest log format the head's build applies
	// (LogVersion of its raftstore); 0 for builds from before batch
	// entries. The leader writes batch entries only when every head
	// applies them.
	LogVersion int `json:"log_version,omitempty"`
}

// Secrets are the cluster's secrets, replicated so that whichever head
// leads can use them. Only CACertPEM is plain: the CA's private key and
// the agents' join token are sealed (AES-GCM) with a key derived from the
// cluster key file every head holds; the state machine never sees them in
// clear.
type Secrets struct {
	CACertPEM       string `json:"ca_cert_pem"`
	SealedCAKey     []byte `json:"sealed_ca_key"`
	SealedJoinToken []byte `json:"sealed_join_token"`
}

// HeadUpsertRequest adds a head or changes its addresses.
type HeadUpsertRequest struct {
	Head Head `json:"head"`
}

// HeadRemoveRequest forgets a head (after it left the Raft configuration).
// Removing an unknown head is not an error.
type HeadRemoveRequest struct {
	ID string `json:"id"`
}

// SecretsPutRequest sets the cluster's secrets (at bootstrap, or when a
// restored backup lacks them).
type SecretsPutRequest struct {
	Secrets Secrets `json:"secrets"`
}

func init() {
	commandTypes[MsgHeadUpsert] = func() any { return new(HeadUpsertRequest) }
	commandTypes[MsgHeadRemove] = func() any { return new(HeadRemoveRequest) }
	commandTypes[MsgSecretsPut] = func() any { return new(SecretsPutRequest) }
	msgNames[MsgHeadUpsert] = "HeadUpsert"
	msgNames[MsgHeadRemove] = "HeadRemove"
	msgNames[MsgSecretsPut] = "SecretsPut"
	snapshotTypes[tableHeads] = func() any { return new(Head) }
	snapshotTypes[tableSecrets] = func() any { return new(Secrets) }
	tableOrder = append(tableOrder, tableHeads, tableSecrets)
}

// addClusterTables adds the cluster's tables to the schema.
func addClusterTables(tables map[string]*memdb.TableSchema, id func(f func(obj any) []any) map[string]*memdb.IndexSchema) {
	tables[tableHeads] = &memdb.TableSchema{Indexes: id(func(o any) []any { return []any{o.(*Head).ID} })}
	tables[tableSecrets] = &memdb.TableSchema{Indexes: id(func(any) []any { return []any{"secrets"} })}
}

// dispatchCluster applies the cluster's commands; ok is false for others.
func (a *applier) dispatchCluster(req any) (ok bool, err error) {
	switch r := req.(type) {
	case *HeadUpsertRequest:
		return true, a.headUpsert(r)
	case *HeadRemoveRequest:
		return true, a.headRemove(r)
	case *SecretsPutRequest:
		return true, a.secretsPut(r)
	}
	return false, nil
}

func (a *applier) headUpsert(r *HeadUpsertRequest) error {
	h := r.Head
	if err := checkKey("id", h.ID); err != nil {
		return err
	}
	if h.APIAddr == "" {
		return api.Invalid("api_addr", "is required")
	}
	if h.RaftAddr == "" {
		return api.Invalid("raft_addr", "is required")
	}
	if old := first[Head](a.txn, tableHeads, h.ID); old != nil && old.APIAddr == h.APIAddr && old.RaftAddr == h.RaftAddr && old.LogVersion == h.LogVersion {
		return nil
	}
	a.insert(tableHeads, &h)
	return nil
}

func (a *applier) headRemove(r *HeadRemoveRequest) error {
	if old := first[Head](a.txn, tableHeads, r.ID); old != nil {
		a.remove(tableHeads, old)
	}
	return nil
}

func (a *applier) secretsPut(r *SecretsPutRequest) error {
	s := r.Secrets
	if s.CACertPEM == "" {
		return api.Invalid("ca_cert_pem", "is required")
	}
	if len(s.SealedCAKey) == 0 {
		return api.Invalid("sealed_ca_key", "is required")
	}
	if len(s.SealedJoinToken) == 0 {
		return api.Invalid("sealed_join_token", "is required")
	}
	a.insert(tableSecrets, &s)
	return nil
}

// Heads returns the heads the state knows, by ID.
func (st *State) Heads() []*Head { return collect[Head](st.txn(), tableHeads, indexID) }

// Head returns the head with this ID, or nil.
func (st *State) Head(id string) *Head { return first[Head](st.txn(), tableHeads, id) }

// Secrets returns the cluster's sealed secrets, or nil before they are set.
func (st *State) Secrets() *Secrets { return first[Secrets](st.txn(), tableSecrets, "secrets") }
