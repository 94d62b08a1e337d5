// Package server is the head node of amld: the HTTP API (users' calls and
// the agent protocol), authentication, request validation, and the leader's
// duties (scheduling rounds, autoscaling, node liveness, provider calls).
//
// It owns no decisions of its own: it reads a state snapshot from raftstore,
// asks the scheduler and autoscale packages what to do, commits their plans
// through Raft, and has the node providers carry them out. Handlers validate
// input before anything is proposed, so bad input changes nothing.
package server
