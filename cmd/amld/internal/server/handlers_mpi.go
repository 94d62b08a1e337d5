package server

import (
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
// The proposer makes it, so every head replays the same key.
func newRunKey(spec *api.RunSpec, runID string) (*raftstore.RunKey, error) {
	if !needsSSH(spec) {
		return nil, nil
	}
	k, err := mpi.NewRunKey("amld run " + runID)
	if err != nil {
		return nil, err
	}
	return &raftstore.RunKey{RunID: runID, Private: k.Private, Public: k.Public}, nil
}

// attemptSSH is what the nodes of attempt a get to reach each other: the
// run's key and every node's SSH endpoint with the host key it registered.
// nil for runs without a key.
func attemptSSH(st *raftstore.State, run *api.Run, a *api.Attempt) *api.AttemptSSH {
	k := st.RunKey(run.ID)
	if k == nil {
		return nil
	}
	peers := make([]api.SSHPeer, len(a.Allocations))
	for i, al := range a.Allocations {
		p := api.SSHPeer{NodeID: al.NodeID}
		if n := st.Node(al.NodeID); n != nil {
			p.Host, p.Port, p.HostKey = addrHost(n.Address), n.SSHPort, n.HostKey
		}
		peers[i] = p
	}
	return &api.AttemptSSH{User: run.ID, PrivateKey: k.Private, PublicKey: k.Public, Peers: peers}
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
