package server

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/amld/amld/api"
	"github.com/amld/amld/mpi"
	"github.com/amld/amld/raftstore"
)

// needsSSH reports whether a run's nodes start commands on each other over
// SSH: runs of several nodes (a user's own launcher may want it), and MPI
// runs (mpirun starts even node 0's ranks through the rsh agent).
func needsSSH(s *api.RunSpec) bool {
	return s.NodeCount > 1 || s.Distribution == api.DistributionMPI
}

// newRunKey makes the run's SSH key pair when it needs one (nil otherwise).
// The proposer makes it, so every head replays the same key; the private
// key goes into the replicated state sealed under the secrets key (sl; nil
// only in tests), since secrets are stored only hashed or encrypted.
func newRunKey(spec *api.RunSpec, runID string, sl *sealer) (*raftstore.RunKey, error) {
	if !needsSSH(spec) {
		return nil, nil
	}
	k, err := mpi.NewRunKey("amld run " + runID)
	if err != nil {
		return nil, err
	}
	rk := &raftstore.RunKey{RunID: runID, Private: k.Private, Public: k.Public}
	if sl != nil {
		sealed, err := sl.seal([]byte(k.Private), []byte("run-key\x00"+runID))
		if err != nil {
			return nil, fmt.Errorf("seal the run's key: %w", err)
		}
		rk.Private, rk.KeyID = base64.StdEncoding.EncodeToString(sealed), sl.id
	}
	return rk, nil
}

// runPrivateKey opens a run key's private half.
func runPrivateKey(k *raftstore.RunKey, sl *sealer) (string, error) {
	if k.KeyID == "" {
		return k.Private, nil
	}
	if sl == nil {
		return "", errors.New("no secrets key to open the run's key")
	}
	sealed, err := base64.StdEncoding.DecodeString(k.Private)
	if err != nil {
		return "", fmt.Errorf("run key of %s: %w", k.RunID, err)
	}
	plain, err := sl.open(k.KeyID, sealed, []byte("run-key\x00"+k.RunID))
	if err != nil {
		return "", fmt.Errorf("run key of %s: %w", k.RunID, err)
	}
	return string(plain), nil
}

// attemptSSH is what the nodes of attempt a get to reach each other: the
// run's key and every node's SSH endpoint with the host key it registered.
// nil for runs without a key.
func attemptSSH(st *raftstore.State, run *api.Run, a *api.Attempt, sl *sealer) *api.AttemptSSH {
	k := st.RunKey(run.ID)
	if k == nil {
		return nil
	}
	priv, err := runPrivateKey(k, sl)
	if err != nil {
		// A head with another cluster key than the one that sealed it (see
		// docs/remote-and-instances.md) hands out no key: mpirun cannot
		// reach the other nodes and the run fails naming them.
		return &api.AttemptSSH{User: run.ID, PublicKey: k.Public}
	}
	peers := make([]api.SSHPeer, len(a.Allocations))
	for i, al := range a.Allocations {
		p := api.SSHPeer{NodeID: al.NodeID}
		if n := st.Node(al.NodeID); n != nil {
			p.Host, p.Port, p.HostKey = addrHost(n.Address), n.SSHPort, n.HostKey
		}
		peers[i] = p
	}
	return &api.AttemptSSH{User: run.ID, PrivateKey: priv, PublicKey: k.Public, Peers: peers}
}

// peerStates lists the states of a's nodes for attempts of several nodes.
func peerStates(a *api.Attempt) []string {
	if len(a.Nodes) < 2 {
		return nil
	}
	out := make([]string, len(a.Nodes))
	for i, n := range a.Nodes {
		out[i] = n.State
	}
	return out
}

// addrHost is the host part of a node address (host, or host:port).
func addrHost(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return strings.Trim(addr, "[]")
}
