package mpi

import (
	"net"
	"strconv"
)

// MpirunOptions says how node 0 starts an MPI run.
type MpirunOptions struct {
	// Mpirun is the launcher (default "mpirun", looked up in PATH).
	Mpirun string
	// Hostfile is the path of the layout's hostfile.
	Hostfile string
	Layout   Layout
	// RshAgent is the rsh client's path (plm_rsh_agent).
	RshAgent string
	// AsRoot adds --allow-run-as-root (mpirun refuses root without it).
	AsRoot bool
	// IfInclude restricts Open MPI's TCP traffic (daemons and ranks) to
	// these networks (CIDR list); empty lets Open MPI choose.
	IfInclude string
	// Command is the user's command: the program each rank runs.
	Command []string
}

// MpirunPWD is the PWD mpirun must run with. mpirun asks every daemon to
// start its ranks in mpirun's own directory, which it names after PWD when
// PWD is the same directory as its cwd: with /proc/self/cwd, each rank's
// chdir lands in its daemon's directory, that is its own node's work dir.
// (With the real path, ranks on other nodes would go to node 0's work dir
// when it exists there, as on nodes that share a machine, or to $HOME.)
const MpirunPWD = "/proc/self/cwd"

// MpirunArgs is the argv of mpirun for o. Every daemon, node 0's too, is
// started through the rsh agent (node IDs never resolve to this host), by
// mpirun alone (no tree spawn), and stays attached to its SSH session
// (orte_leave_session_attached: no --daemonize), so that the session's end
// is the daemon's. Slurm and Grid Engine allocations in the environment are
// ignored (the hostfile is the allocation). Ranks talk TCP (btl tcp,self):
// fake hosts on one machine would otherwise collide in shared memory.
func MpirunArgs(o MpirunOptions) []string {
	bin := o.Mpirun
	if bin == "" {
		bin = "mpirun"
	}
	n := len(o.Layout.Nodes)
	args := []string{bin}
	if o.AsRoot {
		args = append(args, "--allow-run-as-root")
	}
	mca := func(k, v string) { args = append(args, "--mca", k, v) }
	args = append(args, "--hostfile", o.Hostfile, "-np", strconv.Itoa(o.Layout.Size()))
	mca("plm", "rsh")
	mca("ras", "^slurm,gridengine,tm,lsf")
	mca("plm_rsh_agent", o.RshAgent)
	mca("plm_rsh_no_tree_spawn", "1")
	mca("plm_rsh_num_concurrent", strconv.Itoa(max(n, 1)))
	mca("orte_leave_session_attached", "1")
	mca("pml", "ob1")
	mca("btl", "tcp,self")
	if o.IfInclude != "" {
		mca("oob_tcp_if_include", o.IfInclude)
		mca("btl_tcp_if_include", o.IfInclude)
	}
	return append(args, o.Command...)
}

// IfInclude picks the network Open MPI should use for a run whose nodes
// have the addresses peers (own is this node's): 127.0.0.0/8 when they are
// all loopback (nodes on one machine), the network of own's interface
// (from nets, this machine's interface networks) when it holds every peer,
// else "" (Open MPI's own choice).
func IfInclude(own net.IP, peers []net.IP, nets []*net.IPNet) string {
	if len(peers) == 0 {
		return ""
	}
	all := func(f func(net.IP) bool) bool {
		for _, p := range peers {
			if p == nil || !f(p) {
				return false
			}
		}
		return true
	}
	if all(net.IP.IsLoopback) {
		return "127.0.0.0/8"
	}
	for _, n := range nets {
		if own == nil || !n.Contains(own) || n.IP.IsLoopback() {
			continue
		}
		if all(n.Contains) {
			return (&net.IPNet{IP: n.IP.Mask(n.Mask), Mask: n.Mask}).String()
		}
	}
	return ""
}
