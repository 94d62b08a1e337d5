package server

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// secretsKeyFile holds the AES-256 key that seals the credentials kept in
// the replicated state (attached machines' SSH keys, passphrases and
// passwords): DATA_DIR/secrets.key, 64 hex digits, mode 0600. A head makes
// it at first start. Every head of a cluster must hold the same file: copy
// it to a new head's data dir before it joins (docs/remote-and-instances.md).
const secretsKeyFile = "secrets.key"

// errSecretsKeyMismatch means a record was sealed under another key than
// this head's secrets.key.
var errSecretsKeyMismatch = errors.New("sealed under another secrets key")

// sealer seals and opens secrets with AES-256-GCM under the head's key.
// A sealed value is a random 12-byte nonce followed by the ciphertext and
// tag; the additional data binds it to the record it belongs to.
type sealer struct {
	aead cipher.AEAD
	// id names the key (a hash of it, not the key), stored beside every
	// sealed value so that a head with another key says so plainly.
	id string
}

// openSealer reads DATA_DIR/secrets.key, making it when it is missing. A
// key readable by group or others is refused.
func openSealer(dataDir string) (*sealer, error) {
	path := filepath.Join(dataDir, secretsKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("make %s: %w", secretsKeyFile, err)
		}
		if err := writeSecret(path, hex.EncodeToString(key)); err != nil {
			return nil, err
		}
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", secretsKeyFile, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", secretsKeyFile, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is mode %04o: it must be readable by its owner only (chmod 600 %s)", path, st.Mode().Perm(), path)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("%s must hold 64 hex digits (a 256-bit key)", path)
	}
	return newSealer(key)
}

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
		return nil, fmt.Errorf("%w (key %s, this head's is %s): copy secrets.key from the head that attached it into this head's data dir", errSecretsKeyMismatch, keyID, s.id)
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
