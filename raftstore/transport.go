package raftstore

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// transportTimeout bounds one Raft RPC's I/O.
const transportTimeout = 10 * time.Second

// newTransport makes the Raft transport: plain TCP, or TLS when cfg.TLS
// is set.
func newTransport(cfg Config, advertise net.Addr, logger hclog.Logger) (*raft.NetworkTransport, error) {
	if cfg.TLS == nil {
		return raft.NewTCPTransportWithLogger(cfg.BindAddr, advertise, 3, transportTimeout, logger)
	}
	ln, err := net.Listen("tcp", cfg.BindAddr)
	if err != nil {
		return nil, err
	}
	if advertise == nil {
		a := ln.Addr().(*net.TCPAddr)
		if a.IP == nil || a.IP.IsUnspecified() {
			ln.Close()
			return nil, errors.New("local bind address is not advertisable")
		}
		advertise = a
	}
	stream := &tlsStreamLayer{ln: tls.NewListener(ln, cfg.TLS), advertise: advertise, cfg: cfg.TLS}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: 3,
		Timeout: transportTimeout,
		Logger:  logger,
	}), nil
}

// tlsStreamLayer is a raft.StreamLayer over TLS: every accepted and every
// dialed connection is a TLS session in which both sides present a
// certificate of the cluster's CA.
type tlsStreamLayer struct {
	ln        net.Listener
	advertise net.Addr
	cfg       *tls.Config
}

var _ raft.StreamLayer = (*tlsStreamLayer)(nil)

// Accept implements net.Listener.
func (t *tlsStreamLayer) Accept() (net.Conn, error) { return t.ln.Accept() }

// Close implements net.Listener.
func (t *tlsStreamLayer) Close() error { return t.ln.Close() }

// Addr implements net.Listener: the advertised address.
func (t *tlsStreamLayer) Addr() net.Addr { return t.advertise }

// Dial implements raft.StreamLayer; the handshake completes within timeout.
func (t *tlsStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	c, err := tls.DialWithDialer(d, "tcp", string(address), t.cfg)
	if err != nil {
		return nil, fmt.Errorf("raft tls dial %s: %w", address, err)
	}
	return c, nil
}
