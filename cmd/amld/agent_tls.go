package main

import (
	"net"
	"net/http"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/cmd/amld/internal/pki"
)

// agentHTTPClient is the agent's client to the heads, verifying their
// certificates against the cluster CA in caFile.
func agentHTTPClient(caFile, serverName string) (*http.Client, error) {
	caPEM, err := api.ReadCAFile(caFile)
	if err != nil {
		return nil, err
	}
	tc, err := pki.ClientTLS(caPEM)
	if err != nil {
		return nil, err
	}
	if serverName != "" {
		tc.ServerName = serverName
	}
	return &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}}, nil
}
