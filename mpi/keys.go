package mpi

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// RunKey is a run's SSH key pair. Private is a secret: it is sent only to
// the nodes of the run's live attempt and never shown or logged.
type RunKey struct {
	// Private is the private key, PEM-encoded in OpenSSH format.
	Private string
	// Public is the public key in authorized_keys format (one line, no
	// newline).
	Public string
}

// NewRunKey makes a fresh ed25519 key pair for a run.
func NewRunKey(comment string) (RunKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return RunKey{}, fmt.Errorf("mpi: generate run key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return RunKey{}, fmt.Errorf("mpi: encode run key: %w", err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return RunKey{}, fmt.Errorf("mpi: encode run key: %w", err)
	}
	return RunKey{Private: string(pem.EncodeToMemory(block)), Public: AuthorizedKey(sp)}, nil
}

// AuthorizedKey renders k in authorized_keys format, without the newline.
func AuthorizedKey(k ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

// ParseAuthorizedKey parses one public key in authorized_keys format.
func ParseAuthorizedKey(s string) (ssh.PublicKey, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("mpi: empty public key")
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("mpi: parse public key: %w", err)
	}
	return k, nil
}

// LoadOrCreateHostKey returns the host key kept at path, making an ed25519
// key there (0600, in a 0700 directory) the first time. A key file that
// others may read is refused: it would let them pose as this node.
func LoadOrCreateHostKey(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		fi, serr := os.Stat(path)
		if serr != nil {
			return nil, fmt.Errorf("mpi: host key: %w", serr)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("mpi: host key %s has mode %v; want 0600", path, fi.Mode().Perm())
		}
		s, err := ssh.ParsePrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("mpi: host key %s: %w", path, err)
		}
		return s, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("mpi: host key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("mpi: generate host key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "amld agent host key")
	if err != nil {
		return nil, fmt.Errorf("mpi: encode host key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("mpi: host key: %w", err)
	}
	if err := writeFileAtomic(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, fmt.Errorf("mpi: save host key: %w", err)
	}
	return ssh.NewSignerFromKey(priv)
}

// writeFileAtomic writes data to path through a temporary file and a rename.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
