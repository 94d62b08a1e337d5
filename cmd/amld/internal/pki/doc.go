// Package pki holds the cluster's cryptography: the cluster CA (ECDSA
// P-256, crypto/x509) made at bootstrap and the head certificates it
// issues; the TLS configurations of the API, of the Raft transport and of
// head-to-head calls; and the cluster key, a 32-byte secret every head
// reads from a file, from which AES-256-GCM keys are derived (HKDF-SHA256,
// one per purpose) to seal the secrets kept in Raft and the messages heads
// exchange before they hold certificates.
//
// Head certificates carry the head's ID as CommonName and "amld-head" as
// OrganizationalUnit; heads accept a peer (Raft transport, forwarded
// calls) whose certificate chains to the cluster CA and carries that unit,
// whatever address it was dialed at. Clients (amlctl, agents) verify a
// head's certificate the ordinary way: chain to the CA file and host name
// in the certificate's SANs.
package pki
