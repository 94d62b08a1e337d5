// Package scheduler owns placement: it decides which queued run starts on
// which nodes. It is pure: a State snapshot goes in, a Plan comes out
// (placements, preemptions, wait reasons). It does no I/O, reads no clock,
// draws no random numbers and starts no goroutines; the same State always
// yields the same Plan, and nothing it is given is changed.
//
// What it reads: targets (max_nodes, preemption, provisioning state,
// vm_size), the vm_size catalogue, every node (state, target, capacity,
// GPUs by UUID) and every run that is Queued or holds a live attempt.
//
// The rules of one round (DESIGN §5):
//
//   - One queue per target: Queued runs by priority (higher first), then
//     QueueSeq (submit order), then ID.
//   - A node's free capacity is its capacity minus the allocations of every
//     live attempt on it; GPUs held by a live attempt are not free. Only
//     ready nodes (idle or running) of the run's own target receive work,
//     tried busy nodes first, then by ID, so that work packs tightly and
//     idle nodes can scale down.
//   - A run asks its per-node request on max(node_count, 1) distinct nodes,
//     all at once or none (gang). GPUs are handed out by UUID, lowest index
//     first.
//   - The first run of a queue that cannot be placed is the blocked head: it
//     reserves the nodes closest to fitting it, and later runs may only use
//     the other nodes (backfill), so they never delay it. A run that can
//     never fit (more nodes than max_nodes, more per node than its vm_size)
//     is told so and does not block the queue.
//   - With preemption "requeue", a blocked head on a target at max_nodes
//     requeues the fewest lowest-priority running runs that make room for
//     it; it is placed in a later round, once their nodes are free.
//   - Every queued run left waiting gets a reason in words, emitted only
//     when it differs from the reason the run already has, so a round with
//     nothing new yields an empty plan.
//   - A target being deleted receives no placements.
//
// Placement is a chain of small checks (nodeReady, sameTarget,
// fitsResources, gpusFree), each answering one question about one node.
// Pack and NeverFits are the fit checks the autoscaler and the submit path
// share with the scheduler.
package scheduler
