package server

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"strings"
)

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns prefix-xxxxxxxxxx with 50 random bits: IDs are chosen by the
// proposer, never inside Apply.
func newID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + idEncoding.EncodeToString(b[:])[:10]
}

// newToken returns a secret bearer token with 256 random bits.
func newToken(prefix string) string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + strings.ToLower(idEncoding.EncodeToString(b[:]))
}

// hashToken is how tokens are stored: the hex SHA-256. Tokens have 256 bits
// of entropy, so no salt or slow hash is needed.
func hashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}
