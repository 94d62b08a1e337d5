// Package nodes owns the machines behind targets: the Provider interface
// that makes and removes them and, in nodes/agent, the `amld agent` that
// runs on each node, registers with the heads, and runs attempts through its
// runtimes (process, docker).
//
// Providers: local (agent processes on this machine), docker (agent
// containers on a Docker Engine, a network per cluster), ssh (agents started
// over SSH on attached machines: a remote target's own, or the pool's; see
// DialSSH, InspectHost and InstallAgent, which attach uses too) and exec
// (the user's scripts, for any cloud's CLI); sim is to come. The ssh and
// exec providers read what they need from the head through HostSource and
// ExecSource. Optional abilities are separate interfaces: Evicter, Purger,
// ListScoper.
//
// SSH always verifies host keys: DialSSH accepts only the pinned key, and
// ProbeHostKeys reads a machine's keys without authenticating, so that no
// secret reaches a machine whose key was not confirmed.
//
// Providers do I/O only; what to create or delete is decided by the
// autoscale package and committed through Raft by the leader first.
package nodes
