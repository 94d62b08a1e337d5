package api

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"os"
	"time"
)

// tlsConfig verifies heads against the CA in caPEM (nil: the system's).
func tlsConfig(caPEM []byte) (*tls.Config, error) {
	if len(caPEM) == 0 {
		return nil, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("api: the CA file holds no PEM certificate")
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, nil
}

// ReadCAFile reads a CA certificate file for Config.CACertPEM.
func ReadCAFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if _, err := tlsConfig(b); err != nil {
		return nil, errors.New("api: " + path + " holds no PEM certificate")
	}
	return b, nil
}

// tryTimeout bounds one try of a call whose context has no deadline: a
// blocking query may wait as long as it asked for, plus a margin.
func tryTimeout(req request) time.Duration {
	if req.timeout > 0 {
		return req.timeout
	}
	if req.query.Get("index") != "" {
		wait := 30 * time.Second
		if d, err := time.ParseDuration(req.query.Get("wait")); err == nil {
			wait = d
		}
		return wait + 15*time.Second
	}
	return 2 * time.Minute
}

// newIdempotencyKey returns a random key for one logical request.
func newIdempotencyKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
