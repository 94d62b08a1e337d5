package server

import (
	"context"
	"net/http"
	"strings"

	"github.com/amld/amld/api"
	"github.com/amld/amld/raftstore"
)

// identity is who made a request.
type identity struct {
	kind string // raftstore.CredUser, CredNode or CredJoin
	name string // user name or node ID
	role string // for users
}

func (id identity) isAdmin() bool { return id.kind == raftstore.CredUser && id.role == api.RoleAdmin }

type ctxKey struct{}

func identityOf(ctx context.Context) identity {
	id, _ := ctx.Value(ctxKey{}).(identity)
	return id
}

// authenticate resolves the bearer token. Tokens are compared by their
// SHA-256 only, and never logged.
func (s *Server) authenticate(r *http.Request) (identity, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return identity{}, api.Unauthorized("missing token: send Authorization: Bearer <token> (amlctl: --token, AMLCTL_TOKEN or its config file)")
	}
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || strings.TrimSpace(tok) == "" {
		return identity{}, api.Unauthorized("malformed Authorization header: expected Bearer <token>")
	}
	st := s.store.State()
	cred := st.Credential(hashToken(strings.TrimSpace(tok)))
	if cred == nil {
		if st.Index() < s.catchUp || st.Meta() == nil {
			// After a restart the log is replayed once a leader is known;
			// until then a valid token may not be known yet.
			return identity{}, api.Unavailable("this head is still loading its state; retry shortly")
		}
		return identity{}, api.Unauthorized("invalid token")
	}
	id := identity{kind: cred.Kind, name: cred.Subject}
	if cred.Kind == raftstore.CredUser {
		u := st.User(cred.Subject)
		if u == nil {
			return identity{}, api.Unauthorized("invalid token")
		}
		id.role = u.Role
	}
	return id, nil
}

// kinds of callers an endpoint accepts.
const (
	allowUser = 1 << iota
	allowAdmin
	allowNode
	allowJoin
)

// guard wraps h so that it runs only for callers of the allowed kinds.
func (s *Server) guard(allow int, h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := s.authenticate(r)
		if err == nil {
			ok := false
			switch id.kind {
			case raftstore.CredUser:
				ok = allow&allowUser != 0 || (allow&allowAdmin != 0 && id.isAdmin())
			case raftstore.CredNode:
				ok = allow&allowNode != 0
			case raftstore.CredJoin:
				ok = allow&allowJoin != 0
			}
			if !ok {
				err = api.Forbidden("this token may not call %s %s", r.Method, r.URL.Path)
			}
		}
		if err == nil {
			err = h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, id)))
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	}
}
