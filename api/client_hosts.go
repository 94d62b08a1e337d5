package api

import (
	"context"
	"net/url"
	"strconv"
)

// Attach attaches an existing machine over SSH (a remote target, or a host
// of the ssh provider's pool). The head checks the machine and installs the
// agent before it answers.
func (c *Client) Attach(ctx context.Context, req AttachRequest) (*AttachResult, error) {
	var res AttachResult
	_, err := c.do(ctx, request{method: "POST", path: "/v1/hosts", body: req, out: &res})
	return &res, err
}

// ListHosts lists the attached machines.
func (c *Client) ListHosts(ctx context.Context) ([]*Host, error) {
	var hs []*Host
	_, err := c.do(ctx, request{method: "GET", path: "/v1/hosts", out: &hs})
	return hs, err
}

// GetHost returns one attached machine.
func (c *Client) GetHost(ctx context.Context, name string) (*Host, error) {
	var h Host
	_, err := c.do(ctx, request{method: "GET", path: "/v1/hosts/" + url.PathEscape(name), out: &h})
	return &h, err
}

// Detach detaches a machine: its agent is stopped and removed and the
// machine left as it was; then the record goes. With force the record goes
// without touching the machine (for one that is gone for good).
func (c *Client) Detach(ctx context.Context, name string, force bool) (*Host, error) {
	q := url.Values{}
	if force {
		q.Set("force", strconv.FormatBool(force))
	}
	var h Host
	_, err := c.do(ctx, request{method: "DELETE", path: "/v1/hosts/" + url.PathEscape(name), query: q, out: &h})
	return &h, err
}

// HostKey asks the head which host key the SSH server at address:port
// offers (no authentication is attempted).
func (c *Client) HostKey(ctx context.Context, address string, port int) (*HostKeyInfo, error) {
	q := url.Values{"address": {address}, "port": {strconv.Itoa(port)}}
	var k HostKeyInfo
	_, err := c.do(ctx, request{method: "GET", path: "/v1/ssh-host-key", query: q, out: &k})
	return &k, err
}

// Power actions of StartTarget and friends.
const (
	PowerStart   = "start"
	PowerStop    = "stop"
	PowerRestart = "restart"
)

// PowerTarget starts, stops or restarts an instance or a remote target.
func (c *Client) PowerTarget(ctx context.Context, name, action string) (*Target, error) {
	var t Target
	_, err := c.do(ctx, request{method: "POST", path: "/v1/targets/" + url.PathEscape(name) + "/" + url.PathEscape(action), out: &t})
	return &t, err
}
