package server

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/amld/amld/api"
	"github.com/amld/amld/raftstore"
)

// validateInstanceSpec checks the spec of an instance: one node of a
// catalogue vm_size, never scaled; an optional idle shutdown.
func validateInstanceSpec(s api.TargetSpec, sizes *Sizes, providers []string, defaultProvider string) (api.TargetSpec, error) {
	if s.VMSize == "" {
		return s, api.Invalid("vm_size", "is required; sizes: %s", sizes.NamesList())
	}
	if _, ok := sizes.Get(s.VMSize); !ok {
		return s, api.Invalid("vm_size", "unknown size %q; sizes: %s", s.VMSize, sizes.NamesList())
	}
	if s.MinNodes > 1 || s.MinNodes < 0 || s.MaxNodes > 1 || s.MaxNodes < 0 {
		return s, api.Invalid("max_nodes", "an instance has exactly one node: leave min_nodes and max_nodes out")
	}
	s.MinNodes, s.MaxNodes = 1, 1
	if s.IdleSecondsBeforeScaledown != nil {
		return s, api.Invalid("idle_seconds_before_scaledown", "applies to clusters; an instance stops after idle_seconds_before_shutdown")
	}
	if v := s.IdleSecondsBeforeShutdown; v != nil && (*v < 0 || *v > maxIdleSeconds) {
		return s, api.Invalid("idle_seconds_before_shutdown", "must be 0 (never)..%d, got %d", maxIdleSeconds, *v)
	}
	if err := checkPlacementSpec(&s, providers, defaultProvider); err != nil {
		return s, err
	}
	return s, nil
}

// checkPublicAccess checks an instance's ssh_public_access: it needs the
// ssh provider (only there is the node a machine of its own to log in to)
// and a public key.
func checkPublicAccess(s api.TargetSpec) error {
	switch {
	case !s.SSHPublicAccess && s.SSHPublicKey != "":
		return api.Invalid("ssh_public_key", "is given without ssh_public_access")
	case !s.SSHPublicAccess:
		return nil
	case s.Type != api.KindInstance:
		return api.Invalid("ssh_public_access", "applies to instances")
	case s.Provider != api.ProviderSSH:
		return api.Invalid("ssh_public_access", "needs --provider ssh: an instance of the %s provider has no machine of its own to log in to", s.Provider)
	case s.SSHPublicKey == "":
		return api.Invalid("ssh_public_key", "is required with ssh_public_access: the public key to log in with")
	}
	if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s.SSHPublicKey)); err != nil {
		return api.Invalid("ssh_public_key", "is not a public key in authorized_keys format: %v", err)
	}
	return nil
}

// checkExecCommands checks the exec provider's scripts: create and delete
// are required with --provider exec, and every script given must be an
// absolute path of an executable file on this head. Other providers take
// none.
func checkExecCommands(s *api.TargetSpec) error {
	cmds := []struct{ field, path string }{
		{"create_command", s.CreateCommand}, {"delete_command", s.DeleteCommand}, {"list_command", s.ListCommand},
	}
	if s.Provider != api.ProviderExec {
		for _, c := range cmds {
			if c.path != "" {
				return api.Invalid(c.field, "applies to --provider exec only")
			}
		}
		return nil
	}
	for i, c := range cmds {
		if c.path == "" {
			if i < 2 {
				return api.Invalid(c.field, "is required with --provider exec")
			}
			continue
		}
		if err := checkScript(c.path); err != nil {
			return api.Invalid(c.field, "%v", err)
		}
	}
	return nil
}

// checkScript checks that path names an executable file.
func checkScript(path string) error {
	if !filepath.IsAbs(path) || len(path) > 1024 || strings.ContainsRune(path, 0) {
		return fmt.Errorf("must be an absolute path of an executable on the heads, got %q", path)
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%q: %v", path, err)
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%q is not an executable file", path)
	}
	return nil
}

// checkCreate applies the rules of who may create what: exec targets run
// the head's scripts, so only admins create them; an ssh-backed instance
// holds a free host of the pool, whose name it returns.
func (s *Server) checkCreate(r *http.Request, spec api.TargetSpec) (string, error) {
	if spec.Provider == api.ProviderExec && !identityOf(r.Context()).isAdmin() {
		return "", api.Forbidden("only admins create targets of the exec provider: their scripts run on the heads")
	}
	if spec.Type != api.KindInstance || spec.Provider != api.ProviderSSH {
		return "", nil
	}
	host, err := freePoolHost(s.store.State(), "")
	if err != nil {
		return "", api.FailedPrecondition("%v", err)
	}
	return host, nil
}

// deleteSpecial deletes the targets whose deletion is not a plain
// TargetDelete: an instance only by its owner or an admin, and a remote
// target by detaching its machine. done reports whether it answered.
func (s *Server) deleteSpecial(w http.ResponseWriter, r *http.Request, t *api.Target) (done bool, err error) {
	if t.Type != api.KindInstance && t.Type != api.KindRemote {
		return false, nil
	}
	if !canManage(identityOf(r.Context()), t) {
		return true, api.Forbidden("%s belongs to %s; only they or an admin may delete it", t.Name, t.Owner)
	}
	if t.Type == api.KindInstance || t.Host == "" {
		return false, nil
	}
	idx, err := s.apply(r.Context(), raftstore.MsgHostDetach, &raftstore.HostDetachRequest{Name: t.Host, Time: now()})
	if err != nil {
		return true, err
	}
	st := s.store.State()
	writeJSON(w, http.StatusAccepted, idx, s.targetView(st, st.Target(t.Name)))
	return true, nil
}

// freePoolHost returns the first attached pool host that no node runs on
// and no target holds (except the target named self).
func freePoolHost(st *raftstore.State, self string) (string, error) {
	used := map[string]bool{}
	for _, n := range st.Nodes() {
		if n.Host != "" {
			used[n.Host] = true
		}
	}
	for _, t := range st.Targets() {
		if t.Host != "" && t.Name != self {
			used[t.Host] = true
		}
	}
	pool := 0
	for _, h := range st.Hosts() {
		if h.Kind != api.HostPool || h.State != api.HostAttached {
			continue
		}
		pool++
		if !used[h.Name] {
			return h.Name, nil
		}
	}
	return "", fmt.Errorf("no free host in the ssh pool (%d attached, all in use): add one with amlctl compute attach host", pool)
}
