package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A batch entry (MsgBatch) carries several commands in one Raft log entry:
// the type byte, then each command (as EncodeCommand makes it) preceded by
// its length as a uvarint. The FSM applies them in order, each on its own
// (a refused one changes nothing), and answers with one error per command.
//
// Every command of an entry shares the entry's Raft index (CreateIndex,
// ModifyIndex); queueSeq tells them apart where order matters.

// LogVersion is the newest log format this build applies: 1 adds batch
// entries; 2 adds RunSubmitRequest.Reason; 3 changes no entry but says
// that the head, as leader, takes the submits its followers forward as
// commands (the server's peer "apply"). A head records it in the heads
// table, and the leader uses a format only once every head of the cluster
// applies it (a head of an older build would refuse a batch entry that
// the others apply, or ignore a field they read, and its state would
// drift): Store proposes batch entries only after SetBatching(true).
const LogVersion = 3

// maxBatchCommands bounds the commands of one batch entry; a command's
// place in its entry fits in batchPlaceBits.
const (
	batchPlaceBits   = 10
	maxBatchCommands = 1 << batchPlaceBits
)

// queueSeq orders the runs submitted by the command at place in the entry
// at index: entries in log order, then commands in entry order.
func queueSeq(index uint64, place int) uint64 {
	return index<<batchPlaceBits | uint64(place)
}

// encodeBatch makes a batch entry of encoded commands.
func encodeBatch(cmds [][]byte) []byte {
	n := 1
	for _, c := range cmds {
		n += binary.MaxVarintLen64 + len(c)
	}
	out := make([]byte, 1, n)
	out[0] = byte(MsgBatch)
	for _, c := range cmds {
		out = binary.AppendUvarint(out, uint64(len(c)))
		out = append(out, c...)
	}
	return out
}

// decodeBatch splits a batch entry into its commands (sub-slices of b). A
// malformed entry (bad length, no commands, too many) is an error; it
// never panics.
func decodeBatch(b []byte) ([][]byte, error) {
	if len(b) == 0 || MsgType(b[0]) != MsgBatch {
		return nil, errors.New("raftstore: decode batch: not a batch entry")
	}
	var cmds [][]byte
	for rest := b[1:]; len(rest) > 0; {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return nil, fmt.Errorf("raftstore: decode batch: bad length of command %d", len(cmds)+1)
		}
		cmds = append(cmds, rest[k:k+int(n)])
		rest = rest[k+int(n):]
		if len(cmds) > maxBatchCommands {
			return nil, fmt.Errorf("raftstore: decode batch: more than %d commands", maxBatchCommands)
		}
	}
	if len(cmds) == 0 {
		return nil, errors.New("raftstore: decode batch: no commands")
	}
	return cmds, nil
}
