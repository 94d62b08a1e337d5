package raftstore

// RunKey is a run's SSH key pair, kept in its own table so that nothing
// that reads runs sees it. Private is a secret (PEM, OpenSSH format); the
// head hands it only to the nodes of the run's live attempt. The record is
// dropped when the run ends.
type RunKey struct {
	RunID string `json:"run_id"`
	// Private is the private key, sealed (base64 of AES-256-GCM, bound to
	// the run ID) under the heads' secrets key that KeyID names; with an
	// empty KeyID it is the plain key (tests only).
	Private string `json:"private"`
	KeyID   string `json:"key_id,omitempty"`
	Public  string `json:"public"`
}

// RunKey returns the SSH key pair of a run that has one and has not ended.
func (st *State) RunKey(runID string) *RunKey {
	return first[RunKey](st.txn(), tableRunKeys, runID)
}

// putRunKey stores k (if any) as the key of run id.
func (a *applier) putRunKey(id string, k *RunKey) {
	if k == nil || k.Private == "" {
		return
	}
	c := *k
	c.RunID = id
	a.insert(tableRunKeys, &c)
}

// dropRunKey forgets the key of run id.
func (a *applier) dropRunKey(id string) {
	if k := first[RunKey](a.txn, tableRunKeys, id); k != nil {
		a.remove(tableRunKeys, k)
	}
}
