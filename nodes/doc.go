// Package nodes owns the machines behind targets: the Provider interface
// that makes and removes them (local: agent processes on this machine;
// docker: agent containers on a Docker Engine, a network per cluster; ssh,
// exec and sim to come) and, in nodes/agent, the `amld agent` that runs on
// each node, registers with the heads, and runs attempts through its
// runtimes (process, docker).
//
// Providers do I/O only; what to create or delete is decided by the
// autoscale package and committed through Raft by the leader first.
package nodes
