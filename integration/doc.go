// Package integration holds amld's end-to-end tests: the real amld and
// amlctl binaries, real Raft on bbolt over TCP, real agent processes, and
// (as the features land) the real Docker Engine, sshd and mpirun.
//
// The binaries come from $AMLD_BIN (make integration builds them into
// bin/), or are built into a temporary directory by TestMain.
package integration
