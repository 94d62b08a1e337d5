package integration

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// TestHeadsTLSRefusesClientsWithoutTheCAOrWithAWrongToken: the API speaks
// TLS with a certificate of the cluster's CA; a client that does not trust
// that CA cannot talk to it, a client that speaks plain HTTP is refused,
// and a client with the CA but a wrong token is refused with 401.
func TestHeadsTLSRefusesClientsWithoutTheCAOrWithAWrongToken(t *testing.T) {
	c := startCluster(t, 1)
	h := c.heads[0]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if _, err := c.client().ListTargets(ctx); err != nil {
		t.Fatalf("a client with the CA and the admin token: %v", err)
	}
	// No CA: the system's roots do not know the cluster's CA.
	noCA, err := api.NewClient(api.Config{Addresses: []string{h.url()}, Token: c.token})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noCA.ListTargets(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client without the CA: got %v, want a certificate error", err)
	}
	// Plain HTTP to the TLS port.
	plain, _ := api.NewClient(api.Config{Addresses: []string{"http://" + h.ip + ":7070"}, Token: c.token})
	if _, err := plain.ListTargets(ctx); api.StatusOf(err) != http.StatusBadRequest {
		t.Errorf("plain HTTP: got %v, want 400", err)
	}
	// A wrong token.
	bad, _ := api.NewClient(api.Config{Addresses: []string{h.url()}, Token: "amld_wrong", CACertPEM: c.caPEM})
	if _, err := bad.ListTargets(ctx); api.StatusOf(err) != http.StatusUnauthorized {
		t.Errorf("a wrong token: got %v, want 401", err)
	}
	// amlctl: with the CA file it works; without it, it is refused.
	if out, errOut, code := c.ctl("server", "members"); code != 0 || !strings.Contains(out, "h1") {
		t.Errorf("amlctl server members: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code := c.ctl("--ca-file", "/dev/null", "compute", "list"); code == 0 {
		t.Errorf("amlctl with an empty CA file worked; want a refusal (%s)", errOut)
	}
	if _, errOut, code := c.ctl("--token", "amld_wrong", "compute", "list"); code != 1 || !strings.Contains(errOut, "invalid token") {
		t.Errorf("amlctl with a wrong token: exit %d, %s", code, errOut)
	}
}
