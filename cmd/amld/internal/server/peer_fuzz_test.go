package server

import (
	"errors"
	"testing"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/cmd/amld/internal/pki"
)

// FuzzOpenPeerMessage feeds the peer protocol's decoder whatever a holder
// of the cluster key could seal: it must answer with an *api.Error (or
// decode), never panic; a message that does not open is a 401.
func FuzzOpenPeerMessage(f *testing.F) {
	c := &clusterState{key: pki.GenerateKey()}
	good, _ := c.seal(joinRequest{Head: headInfo{ID: "h2", APIAddr: "https://10.0.0.12:7070", RaftAddr: "10.0.0.12:7071"}})
	plain, _ := c.key.Open(pki.PurposePeer, good)
	f.Add(plain)
	f.Add([]byte(`{"time":"2000-01-01T00:00:00Z","body":{}}`))
	f.Add([]byte(`{"time":"` + time.Now().UTC().Format(time.RFC3339) + `","body":{"head":5}}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var req joinRequest
		if err := c.unseal(c.key.Seal(pki.PurposePeer, data), &req); err != nil {
			var ae *api.Error
			if !errors.As(err, &ae) {
				t.Fatalf("not an api error: %v", err)
			}
		}
		var ae *api.Error
		if err := c.unseal(data, &req); !errors.As(err, &ae) || ae.Status != 401 {
			t.Fatalf("an unsealed message: %v", err)
		}
	})
}
