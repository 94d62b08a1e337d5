package pki

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// KeySize is the cluster key's length in bytes.
const KeySize = 32

// Key is the cluster key: a secret shared by every head (a file), from
// which the sealing keys are derived.
type Key struct{ b [KeySize]byte }

// Purposes a sealing key is derived for; a text sealed for one cannot be
// opened for another.
const (
	PurposeCAKey     = "amld ca key v1"
	PurposeJoinToken = "amld join token v1"
	PurposePeer      = "amld peer message v1"
)

// ErrOpen is returned when a sealed text does not open: the wrong key,
// the wrong purpose, or a changed text.
var ErrOpen = errors.New("pki: sealed data does not open with this cluster key")

// GenerateKey makes a random cluster key.
func GenerateKey() Key {
	var k Key
	if _, err := rand.Read(k.b[:]); err != nil {
		panic(err) // crypto/rand does not fail
	}
	return k
}

// String encodes the key as it is kept in a file (base64). It is a
// secret: never log it.
func (k Key) String() string { return base64.StdEncoding.EncodeToString(k.b[:]) }

// ParseKeyText decodes a key file's text.
func ParseKeyText(s []byte) (Key, error) {
	var k Key
	b, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(s)))
	if err != nil || len(b) != KeySize {
		return k, fmt.Errorf("pki: a cluster key is %d random bytes in base64 (amld keygen makes one)", KeySize)
	}
	copy(k.b[:], b)
	return k, nil
}

// ReadKeyFile reads a cluster key file. It refuses a file others can read.
func ReadKeyFile(path string) (Key, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Key{}, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return Key{}, fmt.Errorf("cluster key file %s is readable by others (mode %v); chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Key{}, err
	}
	k, err := ParseKeyText(b)
	if err != nil {
		return Key{}, fmt.Errorf("cluster key file %s: %w", path, err)
	}
	return k, nil
}

// WriteKeyFile writes k to path, mode 0600, atomically.
func WriteKeyFile(path string, k Key) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(k.String()+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Derive returns a 32-byte key for purpose, derived from k (HKDF-SHA256):
// every holder of the cluster key derives the same one.
func (k Key) Derive(purpose string) []byte {
	sub, err := hkdf.Key(sha256.New, k.b[:], nil, purpose, 32)
	if err != nil {
		panic(err) // only for lengths out of range
	}
	return sub
}

// aead derives the AES-256-GCM of a purpose.
func (k Key) aead(purpose string) cipher.AEAD {
	sub, err := hkdf.Key(sha256.New, k.b[:], nil, purpose, 32)
	if err != nil {
		panic(err) // only for lengths out of range
	}
	block, _ := aes.NewCipher(sub)
	g, _ := cipher.NewGCM(block)
	return g
}

// Seal encrypts and authenticates plaintext for purpose (a random nonce
// first, then the ciphertext).
func (k Key) Seal(purpose string, plaintext []byte) []byte {
	g := k.aead(purpose)
	nonce := make([]byte, g.NonceSize(), g.NonceSize()+len(plaintext)+g.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err)
	}
	return g.Seal(nonce, nonce, plaintext, []byte(purpose))
}

// Open reverses Seal; ErrOpen when it does not open.
func (k Key) Open(purpose string, sealed []byte) ([]byte, error) {
	g := k.aead(purpose)
	if len(sealed) < g.NonceSize()+g.Overhead() {
		return nil, ErrOpen
	}
	out, err := g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], []byte(purpose))
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}
