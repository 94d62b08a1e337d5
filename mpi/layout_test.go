package mpi

import (
	"net"
	"slices"
	"strings"
	"testing"
)

func TestLayout(t *testing.T) {
	l := Layout{Nodes: []string{"n-a", "n-b"}, Slots: 2}
	if got, want := l.Hostfile(), "n-a slots=2\nn-b slots=2\n"; got != want {
		t.Errorf("Hostfile() = %q, want %q", got, want)
	}
	for r, want := range []string{"n-a", "n-a", "n-b", "n-b", ""} {
		if got := l.NodeOfRank(r); got != want {
			t.Errorf("NodeOfRank(%d) = %q, want %q", r, got, want)
		}
	}
	if l.NodeOfRank(-1) != "" || (Layout{}).NodeOfRank(0) != "" {
		t.Errorf("out-of-range ranks have a node")
	}
}

func TestMpirunArgs(t *testing.T) {
	args := MpirunArgs(MpirunOptions{
		Hostfile: "/w/hostfile", Layout: Layout{Nodes: []string{"n-a", "n-b"}, Slots: 2},
		RshAgent: "/bin/amld-rsh", AsRoot: true, IfInclude: "127.0.0.0/8", Command: []string{"./allreduce", "-v"},
	})
	line := strings.Join(args, " ")
	for _, want := range []string{
		"mpirun --allow-run-as-root --hostfile /w/hostfile -np 4 ",
		"--mca plm_rsh_agent /bin/amld-rsh", "--mca plm_rsh_no_tree_spawn 1", "--mca orte_leave_session_attached 1",
		"--mca btl tcp,self", "--mca oob_tcp_if_include 127.0.0.0/8", "--mca btl_tcp_if_include 127.0.0.0/8",
		"--mca plm rsh", "--mca ras ^slurm",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("mpirun args %q lack %q", line, want)
		}
	}
	if !slices.Equal(args[len(args)-2:], []string{"./allreduce", "-v"}) {
		t.Errorf("the user's command is not last: %q", args)
	}
	if line := strings.Join(MpirunArgs(MpirunOptions{Layout: Layout{Nodes: []string{"a"}, Slots: 1}}), " "); strings.Contains(line, "allow-run-as-root") || strings.Contains(line, "if_include") {
		t.Errorf("non-root, no networks: %q", line)
	}
}

func TestIfInclude(t *testing.T) {
	_, lan, _ := net.ParseCIDR("10.1.2.3/24")
	_, lo, _ := net.ParseCIDR("127.0.0.1/8")
	nets := []*net.IPNet{lo, lan}
	ip := net.ParseIP
	tests := []struct {
		name  string
		own   net.IP
		peers []net.IP
		want  string
	}{
		{"all loopback", ip("127.0.0.1"), []net.IP{ip("127.0.0.1"), ip("127.0.0.1")}, "127.0.0.0/8"},
		{"one LAN", ip("10.1.2.3"), []net.IP{ip("10.1.2.3"), ip("10.1.2.9")}, "10.1.2.0/24"},
		{"peer elsewhere", ip("10.1.2.3"), []net.IP{ip("10.1.2.3"), ip("10.9.0.1")}, ""},
		{"unresolved peer", ip("10.1.2.3"), []net.IP{ip("10.1.2.3"), nil}, ""},
		{"no peers", ip("10.1.2.3"), nil, ""},
	}
	for _, tt := range tests {
		if got := IfInclude(tt.own, tt.peers, nets); got != tt.want {
			t.Errorf("%s: IfInclude = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestParseRshArgs(t *testing.T) {
	tests := []struct {
		args  []string
		host  string
		words []string
		bad   bool
	}{
		{[]string{"n-b", " orted", "-mca", "ess", `"env"`}, "n-b", []string{" orted", "-mca", "ess", `"env"`}, false},
		{[]string{"-x", "n-b", "orted"}, "n-b", []string{"orted"}, false},
		{[]string{"-o", "BatchMode=yes", "n-b", "true"}, "n-b", []string{"true"}, false},
		{[]string{"-oBatchMode=yes", "-p", "22", "-xT", "root@n-b", "a", "b"}, "n-b", []string{"a", "b"}, false},
		{[]string{"-xl", "me", "n-b", "a"}, "n-b", []string{"a"}, false},
		{[]string{"--", "n-b", "-a"}, "n-b", []string{"-a"}, false},
		{[]string{}, "", nil, true},
		{[]string{"n-b"}, "", nil, true},
		{[]string{"-o"}, "", nil, true},
	}
	for _, tt := range tests {
		host, words, err := ParseRshArgs(tt.args)
		if (err != nil) != tt.bad || host != tt.host || !slices.Equal(words, tt.words) {
			t.Errorf("ParseRshArgs(%q) = %q, %q, %v; want %q, %q, error %v", tt.args, host, words, err, tt.host, tt.words, tt.bad)
		}
	}
}
