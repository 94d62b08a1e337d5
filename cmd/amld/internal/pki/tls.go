package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
)

// Pool returns a certificate pool holding the CA's certificate.
func Pool(caPEM []byte) (*x509.CertPool, error) {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("pki: no CA certificate in PEM")
	}
	return p, nil
}

// PeerTLS is the TLS configuration between heads (the Raft transport and
// forwarded API calls): both sides present their head certificate and
// accept a peer whose certificate chains to the CA and carries HeadUnit,
// whatever address it was reached at. The same configuration serves and
// dials.
func PeerTLS(caPEM []byte, cert tls.Certificate) (*tls.Config, error) {
	pool, err := Pool(caPEM)
	if err != nil {
		return nil, err
	}
	verify := func(raw [][]byte, _ [][]*x509.Certificate) error { return verifyHead(pool, raw) }
	return &tls.Config{
		MinVersion:            tls.VersionTLS13,
		Certificates:          []tls.Certificate{cert},
		ClientAuth:            tls.RequireAnyClientCert,
		InsecureSkipVerify:    true, // replaced by VerifyPeerCertificate: chain to the CA, head unit
		VerifyPeerCertificate: verify,
	}, nil
}

// verifyHead checks that raw (leaf first) chains to the pool and that the
// leaf is a head certificate.
func verifyHead(pool *x509.CertPool, raw [][]byte) error {
	if len(raw) == 0 {
		return errors.New("pki: peer sent no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, b := range raw {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return fmt.Errorf("pki: peer certificate: %w", err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{
		Roots: pool, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return fmt.Errorf("pki: peer certificate: %w", err)
	}
	if !slices.Contains(certs[0].Subject.OrganizationalUnit, HeadUnit) {
		return errors.New("pki: peer certificate is not a head's")
	}
	return nil
}

// ClientTLS is what amlctl and agents use: the heads' certificates must
// chain to the CA and name the host dialed.
func ClientTLS(caPEM []byte) (*tls.Config, error) {
	pool, err := Pool(caPEM)
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, nil
}
