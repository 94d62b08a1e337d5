// Package nodes owns the machines behind targets: the Provider interface
// that makes and removes them (local processes for now; docker, ssh, exec
// and sim to come) and, in nodes/agent, the `amld agent` that runs on each
// node, registers with the heads, and runs attempts through its runtimes.
//
// Providers do I/O only; what to create or delete is decided by the
// autoscale package and committed through Raft by the leader first.
package nodes
