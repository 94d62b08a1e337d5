package server

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/amld/amld/cmd/amld/internal/pki"
)

func TestSealerRoundTripBindsTheRecord(t *testing.T) {
	key := pki.GenerateKey()
	s, err := newSealer(key.Derive(sealerPurpose))
	if err != nil {
		t.Fatal(err)
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
	// Another head with the same cluster key opens it; a head with another
	// cluster key says so.
	again, err := newSealer(key.Derive(sealerPurpose))
	if err != nil || again.id != s.id {
		t.Fatalf("same cluster key: %v", err)
	}
	if _, err := again.open(s.id, sealed, hostAAD("dsvm", "SHA256:a")); err != nil {
		t.Fatal(err)
	}
	other, err := newSealer(pki.GenerateKey().Derive(sealerPurpose))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.open(s.id, sealed, hostAAD("dsvm", "SHA256:a")); !errors.Is(err, errSecretsKeyMismatch) || !strings.Contains(err.Error(), "cluster key") {
		t.Fatalf("open with another key: %v", err)
	}
}
