// Package autoscale decides how a cluster target should grow and shrink.
//
// It owns the scaling rules of DESIGN §6 and nothing else: given one
// cluster, its vm_size, its nodes and its queued and live runs, and the
// current time, Decide says how many nodes the cluster should have, how many
// to ask the provider for now, which nodes to delete, which preparing nodes
// missed their provisioning deadline, why (in words users read), and when
// the answer could next change on its own.
//
// The package is pure: it does no I/O, reads no clock (time comes in as
// Input.Now), uses no randomness and starts no goroutines. The same input
// always gives the same Decision. The leader loop of the daemon reads a
// state snapshot, calls Decide once per cluster, commits the outcome
// through Raft and has the nodes package carry out creates and deletes.
//
// The demand (how many nodes the queue needs) comes from scheduler.Pack,
// the same first-fit the scheduler uses, fitting waiting runs (gangs whole)
// onto the free room of ready nodes, onto preparing nodes, and then onto new
// nodes shaped like the vm_size. Decide never deletes a node that holds live
// work, never asks for more nodes than max_nodes allows, and lets idle nodes
// go only after idle_seconds_before_scaledown and never below min_nodes.
// Repeated provider failures back off exponentially (Config.BackoffBase,
// doubling up to Config.BackoffMax) before the next create.
//
// A decision for a saturated cluster, one whose waiting runs need more
// nodes than max_nodes allows, says whether it still holds for a later
// input (Decision.Holds): while only the runs change it does, for up to
// HoldFor, which spares the caller packing a deep backlog again and again.
//
// DecideFixed does the same for instances and remote targets, which are not
// autoscaled: one node while the target runs, none while it is stopped,
// broken nodes replaced, the same backoff, and an instance's idle shutdown.
package autoscale
