// Package mpi holds what multi-node runs need to start their processes
// over SSH without an sshd: the hostfile and rank layout, the per-run SSH
// keys, the agent's SSH server, the rsh client mpirun calls, and the
// reading of mpirun's failure messages.
//
// The model. The head makes an ed25519 key pair per run (NewRunKey) and
// sends it, with every peer's SSH address and pinned host key, only to the
// nodes of the run's live attempt. Each agent serves SSH (Server) with a
// host key made once and kept in its work dir (LoadOrCreateHostKey); the
// head learnt its public half when the agent registered. A run's key is
// accepted only while that run's attempt is live on the node (a Grant), only
// under the run's ID as SSH user name, and only for exec requests, which
// the Grant runs inside the attempt's environment (its work dir for the
// process runtime, its container for docker). Closing the channel kills
// the command; revoking the Grant (the attempt ended) kills every command
// it started and refuses later requests.
//
// The rsh client (RshMain, built as `amld rsh` and the static `amld-rsh`)
// is what mpirun runs as its plm_rsh_agent: it behaves like
// `ssh HOST WORDS...` (words joined by spaces and run by /bin/sh -c on the
// far side, stdio passed, the remote exit status returned), skips
// ssh-style options, and checks the target's host key against the pinned
// one in its config file (AML_RSH_CONFIG). It never falls back to an
// unverified host key.
//
// Node 0 of an MPI run runs mpirun (MpirunArgs) with a hostfile naming the
// run's nodes by node ID, so every daemon (orted), node 0's included, is
// started over SSH inside its node's attempt. Daemons stay attached to
// their SSH sessions (orte_leave_session_attached), so a session that ends
// takes its daemon with it and the daemon's exit status is mpirun's to see.
// When mpirun fails, ParseFailure turns its messages into a reason naming
// the failed rank's node and exit code, or the node whose connection was
// lost.
package mpi
