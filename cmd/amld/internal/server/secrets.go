package server

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// sealerPurpose names the key the sealer derives from the cluster key
// (DATA_DIR/cluster.key, or --cluster-key-file): every head holds the same
// cluster key, so every head opens what another sealed.
const sealerPurpose = "amld state secrets v1"

// errSecretsKeyMismatch means a record was sealed under another key than
// this head's (another cluster key).
var errSecretsKeyMismatch = errors.New("sealed under another cluster key")

// sealer seals and opens secrets with AES-256-GCM under the head's key.
// A sealed value is a random 12-byte nonce followed by the ciphertext and
// tag; the additional data binds it to the record it belongs to.
type sealer struct {
	aead cipher.AEAD
	// id names the key (a hash of it, not the key), stored beside every
	// sealed value so that a head with another key says so plainly.
	id string
}

// newSealer returns a sealer under key (32 bytes).
func newSealer(key []byte) (*sealer, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append([]byte("amld secrets key id\x00"), key...))
	return &sealer{aead: aead, id: hex.EncodeToString(sum[:8])}, nil
}

// seal encrypts plain, bound to aad.
func (s *sealer) seal(plain, aad []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(nonce, nonce, plain, aad), nil
}

// open decrypts a value sealed under the key keyID names, bound to aad.
func (s *sealer) open(keyID string, sealed, aad []byte) ([]byte, error) {
	if keyID != s.id {
		return nil, fmt.Errorf("%w (key %s, this head's is %s): every head must hold the same cluster key (cluster.key)", errSecretsKeyMismatch, keyID, s.id)
	}
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, errors.New("sealed value is too short")
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], aad)
	if err != nil {
		return nil, errors.New("sealed value does not open: it was changed, or belongs to another record")
	}
	return plain, nil
}
