package server

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealerRoundTripBindsTheRecord(t *testing.T) {
	dir := t.TempDir()
	s, err := openSealer(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, secretsKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v %v", st.Mode().Perm(), err)
	}
	secret := []byte(`{"password":"hunter2"}`)
	sealed, err := s.seal(secret, hostAAD("dsvm", "SHA256:a"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("hunter2")) {
		t.Fatal("sealed value holds the plain text")
	}
	plain, err := s.open(s.id, sealed, hostAAD("dsvm", "SHA256:a"))
	if err != nil || !bytes.Equal(plain, secret) {
		t.Fatalf("open: %q %v", plain, err)
	}
	// Another record's additional data does not open it.
	if _, err := s.open(s.id, sealed, hostAAD("other", "SHA256:a")); err == nil {
		t.Fatal("opened under another host's name")
	}
	// The same key file opens it after a restart; another head's key says so.
	again, err := openSealer(dir)
	if err != nil || again.id != s.id {
		t.Fatalf("reopen: %v", err)
	}
	if _, err := again.open(s.id, sealed, hostAAD("dsvm", "SHA256:a")); err != nil {
		t.Fatal(err)
	}
	other, err := openSealer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.open(s.id, sealed, hostAAD("dsvm", "SHA256:a")); !errors.Is(err, errSecretsKeyMismatch) || !strings.Contains(err.Error(), "copy secrets.key") {
		t.Fatalf("open with another key: %v", err)
	}
}

func TestSecretsKeyReadableByOthersIsRefused(t *testing.T) {
	dir := t.TempDir()
	if _, err := openSealer(dir); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, secretsKeyFile)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := openSealer(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("loose key accepted: %v", err)
	}
	if err := os.WriteFile(p, []byte("not hex"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openSealer(dir); err == nil || !strings.Contains(err.Error(), "64 hex digits") {
		t.Fatalf("bad key accepted: %v", err)
	}
}
