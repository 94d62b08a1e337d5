package mpi

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Failure is what mpirun's output says about why a run failed.
type Failure struct {
	// Lost is true when a node could not be reached or its connection
	// dropped: the node or its agent is gone, not the command at fault.
	Lost bool
	// Node is the node that failed (a node ID, as in the hostfile).
	Node string
	// Rank is the failed rank (-1 when unknown).
	Rank int
	// Code is the rank's exit code, Signal the signal that killed it (0
	// when not known).
	Code, Signal int
	// SignalName is the signal's name as mpirun gave it ("Killed").
	SignalName string
}

// Reason words f for a run's reason.
func (f Failure) Reason() string {
	if f.Node == "" {
		f.Node = "(unknown)"
	}
	switch {
	case f.Lost:
		return fmt.Sprintf("lost the connection to node %s (its agent or the node is gone)", f.Node)
	case f.Signal > 0 && f.SignalName != "":
		return fmt.Sprintf("MPI rank %d on node %s was killed by signal %d (%s)", f.Rank, f.Node, f.Signal, f.SignalName)
	case f.Signal > 0:
		return fmt.Sprintf("MPI rank %d on node %s was killed by signal %d", f.Rank, f.Node, f.Signal)
	}
	return fmt.Sprintf("MPI rank %d on node %s exited with code %d", f.Rank, f.Node, f.Code)
}

var (
	lostRE = regexp.MustCompile(regexp.QuoteMeta(LostMarker) + `([^\s:]+):`)
	// "mpirun noticed that process rank 3 with PID 23019 on node hostB
	// exited on signal 9 (Killed)."
	signalRE = regexp.MustCompile(`process rank (\d+) with PID \d+ on node (\S+) exited on signal (\d+)(?: \(([^)]*)\))?`)
	// "The first process to do so was:\n\n  Process name: [[8779,1],2]\n  Exit code:    3"
	exitRE = regexp.MustCompile(`Process name:\s*\[\[\d+,\d+\],(\d+)\]\s*\n\s*Exit code:\s*(\d+)`)
)

// ParseFailure reads mpirun's output (its tail is enough) for the first
// failure it reports: a lost node (the rsh client's LostMarker) first,
// then a rank killed by a signal or exiting non-zero. The rank's node
// comes from mpirun's words when it names one, else from l. ok is false
// when the output says none of these.
func ParseFailure(out []byte, l Layout) (f Failure, ok bool) {
	s := string(out)
	if m := lostRE.FindStringSubmatch(s); m != nil {
		return Failure{Lost: true, Node: m[1], Rank: -1}, true
	}
	if m := signalRE.FindStringSubmatch(s); m != nil {
		rank, _ := strconv.Atoi(m[1])
		sig, _ := strconv.Atoi(m[3])
		node := strings.TrimSuffix(m[2], ".")
		return Failure{Node: node, Rank: rank, Signal: sig, Code: 128 + sig, SignalName: m[4]}, true
	}
	if m := exitRE.FindStringSubmatch(s); m != nil {
		rank, _ := strconv.Atoi(m[1])
		code, _ := strconv.Atoi(m[2])
		return Failure{Node: l.NodeOfRank(rank), Rank: rank, Code: code}, true
	}
	return Failure{}, false
}
