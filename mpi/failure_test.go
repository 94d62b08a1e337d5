package mpi

import (
	"strings"
	"testing"
)

// Captured from Open MPI 4.1.4 (Debian 12), 2 hosts x 2 slots.
const (
	rankExit3 = `rank 2 failing
--------------------------------------------------------------------------
Primary job  terminated normally, but 1 process returned
a non-zero exit code. Per user-direction, the job has been aborted.
--------------------------------------------------------------------------
--------------------------------------------------------------------------
mpirun detected that one or more processes exited with non-zero status, thus causing
the job to be terminated. The first process to do so was:

  Process name: [[8779,1],2]
  Exit code:    3
--------------------------------------------------------------------------
`
	rankSignal9 = `--------------------------------------------------------------------------
mpirun noticed that process rank 3 with PID 23019 on node n-b exited on signal 9 (Killed).
--------------------------------------------------------------------------
`
	daemonLost = `amld-rsh: lost the connection to node n-b: ssh: session ended without an exit status
--------------------------------------------------------------------------
ORTE was unable to reliably start one or more daemons.
`
)

func TestParseFailure(t *testing.T) {
	l := Layout{Nodes: []string{"n-a", "n-b"}, Slots: 2}
	tests := []struct {
		name   string
		out    string
		ok     bool
		want   Failure
		reason string
	}{
		{"rank exit code", rankExit3, true, Failure{Node: "n-b", Rank: 2, Code: 3}, "MPI rank 2 on node n-b exited with code 3"},
		{"rank signal", rankSignal9, true, Failure{Node: "n-b", Rank: 3, Code: 137, Signal: 9, SignalName: "Killed"}, "MPI rank 3 on node n-b was killed by signal 9 (Killed)"},
		{"lost daemon", daemonLost, true, Failure{Lost: true, Node: "n-b", Rank: -1}, "lost the connection to node n-b"},
		{"lost beats rank", rankExit3 + daemonLost, true, Failure{Lost: true, Node: "n-b", Rank: -1}, "node n-b"},
		{"rank beyond layout", strings.Replace(rankExit3, "],2]", "],9]", 1), true, Failure{Rank: 9, Code: 3}, "MPI rank 9 on node (unknown) exited with code 3"},
		{"nothing", "some output\n", false, Failure{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ok := ParseFailure([]byte(tt.out), l)
			if ok != tt.ok || f != tt.want {
				t.Fatalf("ParseFailure = %+v, %v; want %+v, %v", f, ok, tt.want, tt.ok)
			}
			if ok && !strings.Contains(f.Reason(), tt.reason) {
				t.Errorf("Reason() = %q, want it to contain %q", f.Reason(), tt.reason)
			}
		})
	}
}

func FuzzParseFailure(f *testing.F) {
	for _, s := range []string{rankExit3, rankSignal9, daemonLost, ""} {
		f.Add(s)
	}
	l := Layout{Nodes: []string{"n-a", "n-b"}, Slots: 2}
	f.Fuzz(func(t *testing.T, out string) {
		fl, ok := ParseFailure([]byte(out), l)
		if ok && fl.Reason() == "" {
			t.Fatalf("a failure with no reason: %+v", fl)
		}
	})
}
