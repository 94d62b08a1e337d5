package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"

	"github.com/amld/amld/api"
	"github.com/amld/amld/nodes"
	"github.com/amld/amld/raftstore"
)

// addStateProviders adds the providers that read the replicated state, the
// ssh provider (attached machines) and the exec provider (the targets'
// scripts), unless the configuration brings its own.
func (s *Server) addStateProviders() error {
	s.cfg.Providers = maps.Clone(s.cfg.Providers)
	src := stateSource{s}
	if _, ok := s.cfg.Providers[api.ProviderSSH]; !ok {
		p, err := nodes.NewSSH(nodes.SSHConfig{Hosts: src, Binary: s.agentBinary, Logger: s.log.With("provider", "ssh")})
		if err != nil {
			return err
		}
		s.cfg.Providers[p.Name()] = p
	}
	if _, ok := s.cfg.Providers[api.ProviderExec]; !ok {
		p, err := nodes.NewExec(nodes.ExecConfig{
			Source: src, DataDir: filepath.Join(s.cfg.DataDir, "exec"), AgentBinary: s.agentBinary,
			Logger: s.log.With("provider", "exec"),
		})
		if err != nil {
			return err
		}
		s.cfg.Providers[p.Name()] = p
	}
	return nil
}

// agentBinaryPath is the amld binary installed on attached machines.
func agentBinaryPath(cfg Config) (string, error) {
	if cfg.AgentBinary != "" {
		return filepath.Abs(cfg.AgentBinary)
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the amld binary for attached machines: %w", err)
	}
	return exe, nil
}

// stateSource answers the ssh and exec providers from the replicated state.
type stateSource struct{ s *Server }

var (
	_ nodes.HostSource = stateSource{}
	_ nodes.ExecSource = stateSource{}
)

// SSHHost implements nodes.HostSource.
func (src stateSource) SSHHost(_ context.Context, name string) (*nodes.SSHHost, error) {
	st := src.s.store.State()
	h := st.Host(name)
	if h == nil || (h.State == api.HostDetaching && h.Force) {
		return nil, fmt.Errorf("host %s: %w", name, nodes.ErrHostGone)
	}
	return src.s.sshHost(st, h)
}

// SSHHosts implements nodes.HostSource: every host but those detached with
// force.
func (src stateSource) SSHHosts(context.Context) ([]*nodes.SSHHost, error) {
	st := src.s.store.State()
	var out []*nodes.SSHHost
	for _, h := range st.Hosts() {
		if h.State == api.HostDetaching && h.Force {
			continue
		}
		sh, err := src.s.sshHost(st, h)
		if err != nil {
			return nil, err
		}
		out = append(out, sh)
	}
	return out, nil
}

// ExecCommands implements nodes.ExecSource.
func (src stateSource) ExecCommands(target string) (nodes.ExecCommands, error) {
	t := src.s.store.State().Target(target)
	if t == nil {
		return nodes.ExecCommands{}, fmt.Errorf("target %s is gone", target)
	}
	if t.Provider != api.ProviderExec {
		return nodes.ExecCommands{}, fmt.Errorf("target %s uses the %s provider, not exec", target, t.Provider)
	}
	return nodes.ExecCommands{Create: t.CreateCommand, Delete: t.DeleteCommand, List: t.ListCommand}, nil
}

// ExecTargets implements nodes.ExecSource.
func (src stateSource) ExecTargets() []string {
	var out []string
	for _, t := range src.s.store.State().Targets() {
		if t.Provider == api.ProviderExec {
			out = append(out, t.Name)
		}
	}
	return out
}

// NodeTarget implements nodes.ExecSource.
func (src stateSource) NodeTarget(nodeID string) string {
	if n := src.s.store.State().Node(nodeID); n != nil {
		return n.Target
	}
	return ""
}

// marker is what ~/.amld/MANAGED-BY says on this cluster's machines.
func marker(st *raftstore.State) string {
	if m := st.Meta(); m != nil {
		return "amld cluster " + m.ClusterID
	}
	return "amld cluster (not bootstrapped)"
}

// hostAAD binds a host's sealed credentials to the host.
func hostAAD(name, fingerprint string) []byte {
	return []byte("amld host credentials\x00" + name + "\x00" + fingerprint)
}

// sealAuth seals a host's credentials.
func (s *Server) sealAuth(name, fingerprint string, auth nodes.SSHAuth) ([]byte, error) {
	b, err := json.Marshal(auth)
	if err != nil {
		return nil, err
	}
	return s.sealer.seal(b, hostAAD(name, fingerprint))
}

// sshHost opens a host's credentials: what the ssh provider needs to reach it.
func (s *Server) sshHost(st *raftstore.State, h *raftstore.Host) (*nodes.SSHHost, error) {
	plain, err := s.sealer.open(h.KeyID, h.Sealed, hostAAD(h.Name, h.HostKeyFingerprint))
	if err != nil {
		return nil, fmt.Errorf("credentials of host %s: %w", h.Name, err)
	}
	var auth nodes.SSHAuth
	if err := json.Unmarshal(plain, &auth); err != nil {
		return nil, errors.New("credentials of host " + h.Name + " do not decode")
	}
	return &nodes.SSHHost{
		Name: h.Name, Address: h.Address, Port: h.SSHPort, User: h.Username, HostKey: h.HostKey,
		Auth: auth, AgentMode: h.AgentMode, Marker: marker(st),
	}, nil
}

// hostView fills in a host's derived fields (the node on it, the instance
// holding it); the sealed credentials are not part of it.
func hostView(st *raftstore.State, h *raftstore.Host) *api.Host {
	v := h.Host.Copy()
	for _, n := range st.Nodes() {
		if n.Host == h.Name {
			v.Node = n.ID
		}
	}
	for _, t := range st.Targets() {
		if t.Host == h.Name && t.Type == api.KindInstance {
			v.HeldBy = t.Name
		}
	}
	return v
}

// targetSize is the node shape of a target: its own (remote targets) or
// its catalogue vm_size.
func (s *Server) targetSize(t *api.Target) (api.VMSize, bool) {
	if t.Size != nil {
		return *t.Size, true
	}
	return s.cfg.Sizes.Get(t.VMSize)
}
