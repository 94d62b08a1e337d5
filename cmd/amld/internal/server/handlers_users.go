package server

import (
	"net/http"

	"github.com/amld/amld/api"
	"github.com/amld/amld/raftstore"
)

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, 0, s.statusView())
}

func (s *Server) handleWhoami(w http.ResponseWriter, r *http.Request) error {
	id := identityOf(r.Context())
	role := id.role
	if id.kind == raftstore.CredNode {
		role = "node"
	}
	writeJSON(w, http.StatusOK, 0, api.Whoami{Name: id.name, Role: role})
	return nil
}

func (s *Server) handleCreateUser(w http.ResponseWriter, r *http.Request) error {
	var u api.User
	if err := decodeBody(r, &u); err != nil {
		return err
	}
	if !validName(u.Name) {
		return api.Invalid("name", "%q %s", u.Name, nameRule)
	}
	if u.Role == "" {
		u.Role = api.RoleUser
	}
	if u.Role != api.RoleUser && u.Role != api.RoleAdmin {
		return api.Invalid("role", "%q is not allowed; allowed: user, admin", u.Role)
	}
	if s.store.State().User(u.Name) != nil {
		return api.Conflict("user %q already exists", u.Name)
	}
	u.CreatedAt = now()
	u.CreateIndex = 0
	tok := newToken("amld")
	if _, err := s.apply(r.Context(), raftstore.MsgUserCreate, &raftstore.UserCreateRequest{User: u, TokenHash: hashToken(tok)}); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, 0, api.UserCreated{User: *s.store.State().User(u.Name), Token: tok})
	return nil
}

func (s *Server) handleListUsers(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, 0, s.store.State().Users())
	return nil
}
