package server

import "crypto/sha256"

// idempotencyHeader carries a client's key for one logical request: a
// retried submit (the first try's answer was lost to a failover) carries
// the same key, gets the same run ID, and finds the run it already made
// instead of making a second one.
const idempotencyHeader = "Idempotency-Key"

// idempotentID derives a record ID from who asked and their key.
func idempotentID(prefix, owner, key string) string {
	h := sha256.Sum256([]byte(owner + "\x00" + key))
	return prefix + "-" + idEncoding.EncodeToString(h[:])[:16]
}
