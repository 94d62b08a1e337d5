// Package api holds amld's wire types and its Go HTTP client.
//
// Everything a client, an agent or a test exchanges with an amld head is
// defined here: targets (clusters and, later, instances and attached
// machines), nodes, runs and their attempts, log chunks, the agent protocol
// and the error envelope. The types double as the records of the replicated
// state: the raftstore package stores them, the scheduler and autoscale
// packages read them. This package imports nothing else of amld.
//
// Records are treated as immutable once stored: code that changes one makes a
// copy first (see the Copy methods).
package api
