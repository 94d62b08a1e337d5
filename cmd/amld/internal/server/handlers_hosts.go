package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/amld/amld/api"
	"github.com/amld/amld/nodes"
	"github.com/amld/amld/raftstore"
)

// sshTimeout bounds one connection and handshake to an attached machine.
const sshTimeout = 15 * time.Second

// handleAttach attaches a machine over SSH: it checks the host key (before
// any secret is sent), refuses a machine attached already, logs in,
// inspects the machine, installs amld there and records the host (its
// credentials sealed) and, for kind remote, its target. The leader then
// starts the agent through the ssh provider.
func (s *Server) handleAttach(w http.ResponseWriter, r *http.Request) error {
	var req api.AttachRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	id := identityOf(r.Context())
	if err := validateAttach(&req); err != nil {
		return err
	}
	if req.Kind == api.HostPool && !id.isAdmin() {
		return api.Forbidden("only admins add machines to the ssh pool")
	}
	st := s.store.State()
	if st.Meta() == nil {
		return api.Unavailable("the cluster is not bootstrapped yet")
	}
	if st.Target(req.Name) != nil || st.Host(req.Name) != nil {
		return api.Conflict("target %q already exists", req.Name)
	}
	size, err := s.attachSize(req)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Minute)
	defer cancel()
	addr := net.JoinHostPort(req.Address, strconv.Itoa(req.SSHPort))
	key, err := verifyHostKey(ctx, addr, req.HostKeyFingerprint, req.AcceptHostKey)
	if err != nil {
		return err
	}
	fp := nodes.Fingerprint(key)
	for _, h := range st.Hosts() {
		if h.HostKeyFingerprint == fp {
			return api.Conflict("this machine (host key %s) is already attached as %s", fp, h.Name)
		}
	}
	auth := nodes.SSHAuth{PrivateKey: []byte(req.PrivateKey), Passphrase: []byte(req.PrivateKeyPassphrase), Password: req.Password}
	if req.PrivateKey == "" {
		auth.PrivateKey = nil
	}
	if req.PrivateKeyPassphrase == "" {
		auth.Passphrase = nil
	}
	mark := marker(st)
	sh := &nodes.SSHHost{Name: req.Name, Address: req.Address, Port: req.SSHPort, User: req.Username,
		HostKey: string(ssh.MarshalAuthorizedKey(key)), Auth: auth, Marker: mark}
	c, err := nodes.DialSSH(ctx, sh, sshTimeout)
	if err != nil {
		return api.FailedPrecondition("cannot log in: %v", err)
	}
	defer c.Close()
	insp, err := nodes.InspectHost(ctx, c, mark)
	if err != nil {
		return api.FailedPrecondition("%s: %v", addr, err)
	}
	findings := insp.Findings
	if insp.Failed() {
		return api.FailedPrecondition("cannot attach %s: %s", addr, failedChecks(findings))
	}
	if size == nil {
		size = machineSize(insp.Facts)
	} else if res := size.Resources(); int64(res.CPUs) > int64(insp.Facts.CPUs) || res.MemoryMB > insp.Facts.MemoryMB {
		return api.Invalid("vm_size", "%s (%s) is larger than the machine (%d CPUs, %d MiB)", size.Name, res, insp.Facts.CPUs, insp.Facts.MemoryMB)
	}
	version, err := nodes.InstallAgent(ctx, c, s.agentBinary, mark)
	if err != nil {
		return api.FailedPrecondition("%s: %v", addr, err)
	}
	mode := nodes.AgentModeFor(insp.Facts)
	findings = append(findings, api.Finding{Check: "install", Status: api.FindingOK,
		Detail: fmt.Sprintf("%s installed in %s/.amld/bin/amld; agents run as %s", version, insp.Facts.Home, modeWords(mode))})

	sealed, err := s.sealAuth(req.Name, fp, auth)
	if err != nil {
		return fmt.Errorf("seal the credentials: %w", err)
	}
	t := now()
	host := &raftstore.Host{Host: api.Host{
		Name: req.Name, Kind: req.Kind, Address: req.Address, SSHPort: req.SSHPort, Username: req.Username,
		Auth: auth.Method(), HostKey: sh.HostKey, HostKeyFingerprint: fp, Facts: insp.Facts, AgentMode: mode,
		Owner: id.name, Description: req.Description, CreatedAt: t,
	}, Sealed: sealed, KeyID: s.sealer.id}
	var tg *api.Target
	if req.Kind == api.HostRemote {
		tg = &api.Target{
			TargetSpec: api.TargetSpec{
				Name: req.Name, Type: api.KindRemote, VMSize: size.Name, MinNodes: 1, MaxNodes: 1,
				VMPriority: api.VMPriorityDedicated, Provider: api.ProviderSSH, Preemption: api.PreemptionNone,
				Description: req.Description,
			},
			Owner: id.name, ProvisioningState: api.ProvisioningSucceeded, CreatedAt: t, UpdatedAt: t,
		}
		if _, ok := s.cfg.Sizes.Get(size.Name); !ok || req.VMSize == "" {
			tg.Size = size
		}
	}
	idx, err := s.apply(ctx, raftstore.MsgHostAttach, &raftstore.HostAttachRequest{Host: host, Target: tg, Time: t})
	if err != nil {
		if insp.ManagedBy == "" {
			// Leave the machine as it was.
			uctx, ucancel := context.WithTimeout(context.Background(), time.Minute)
			_ = nodes.UninstallAgent(uctx, c, mark, mode)
			ucancel()
		}
		return err
	}
	s.log.Info("machine attached", "host", req.Name, "kind", req.Kind, "address", addr, "host_key", fp, "auth", auth.Method())
	st = s.store.State()
	res := api.AttachResult{Host: hostView(st, st.Host(req.Name)), Findings: findings}
	if tg != nil {
		res.Target = s.targetView(st, st.Target(req.Name))
	}
	writeJSON(w, http.StatusCreated, idx, res)
	return nil
}

// validateAttach checks an attach request and fills in its defaults.
func validateAttach(req *api.AttachRequest) error {
	if !validName(req.Name) {
		return api.Invalid("name", "%q %s", req.Name, nameRule)
	}
	switch req.Kind {
	case "":
		req.Kind = api.HostRemote
	case api.HostRemote, api.HostPool:
	default:
		return api.Invalid("kind", "%q is not allowed; allowed: remote, pool", req.Kind)
	}
	req.Address = strings.TrimSpace(req.Address)
	if req.Address == "" || len(req.Address) > 253 || strings.ContainsAny(req.Address, " /@\x00") {
		return api.Invalid("address", "must be a host name or an IP address, got %q", req.Address)
	}
	if req.SSHPort == 0 {
		req.SSHPort = 22
	}
	if req.SSHPort < 1 || req.SSHPort > 65535 {
		return api.Invalid("ssh_port", "must be 1..65535, got %d", req.SSHPort)
	}
	if req.Username == "" || len(req.Username) > 64 || strings.ContainsAny(req.Username, " @:/\x00") {
		return api.Invalid("username", "must be a user name, got %q", req.Username)
	}
	switch {
	case req.PrivateKey == "" && req.Password == "":
		return api.Invalid("private_key", "a private key or a password is required")
	case req.PrivateKey != "" && req.Password != "":
		return api.Invalid("password", "give a private key or a password, not both")
	case req.PrivateKey == "" && req.PrivateKeyPassphrase != "":
		return api.Invalid("private_key_passphrase", "is given without a private key")
	case len(req.PrivateKey) > 64<<10 || len(req.Password) > 4096 || len(req.PrivateKeyPassphrase) > 4096:
		return api.Invalid("private_key", "a secret is implausibly long")
	}
	if req.PrivateKey != "" {
		var err error
		if req.PrivateKeyPassphrase != "" {
			_, err = ssh.ParsePrivateKeyWithPassphrase([]byte(req.PrivateKey), []byte(req.PrivateKeyPassphrase))
		} else {
			_, err = ssh.ParsePrivateKey([]byte(req.PrivateKey))
		}
		if _, ok := err.(*ssh.PassphraseMissingError); ok {
			return api.Invalid("private_key_passphrase", "is required: the private key is encrypted")
		}
		if err != nil {
			return api.Invalid("private_key", "does not parse: %v", err)
		}
	}
	if req.HostKeyFingerprint != "" {
		fp, err := nodes.NormalizeFingerprint(req.HostKeyFingerprint)
		if err != nil {
			return api.Invalid("host_key_fingerprint", "%v", err)
		}
		req.HostKeyFingerprint = fp
	}
	if len(req.Description) > 1024 {
		return api.Invalid("description", "is longer than 1024 characters")
	}
	if req.Kind == api.HostPool && req.VMSize != "" {
		return api.Invalid("vm_size", "applies to remote targets; a pool host serves the vm_size of the target that uses it")
	}
	return nil
}

// attachSize resolves a remote target's --vm-size (nil: the whole machine).
func (s *Server) attachSize(req api.AttachRequest) (*api.VMSize, error) {
	if req.VMSize == "" {
		return nil, nil
	}
	size, ok := s.cfg.Sizes.Get(req.VMSize)
	if !ok {
		return nil, api.Invalid("vm_size", "unknown size %q; sizes: %s", req.VMSize, s.cfg.Sizes.NamesList())
	}
	return &size, nil
}

// machineSize is the node shape of a whole machine.
func machineSize(f api.HostFacts) *api.VMSize {
	gb := f.MemoryMB / 1024
	return &api.VMSize{
		Name: fmt.Sprintf("host-%dcpu-%dgb", f.CPUs, gb), CPUs: f.CPUs,
		MemoryGB: float64(f.MemoryMB) / 1024, GPUs: len(f.GPUs), GPUModel: gpuModel(f.GPUs),
	}
}

func gpuModel(gs []api.GPU) string {
	if len(gs) == 0 {
		return ""
	}
	return gs[0].Model
}

func modeWords(mode string) string {
	if mode == api.AgentSystemd {
		return "systemd units"
	}
	return "supervised background processes"
}

// failedChecks words the failed findings.
func failedChecks(fs []api.Finding) string {
	var out []string
	for _, f := range fs {
		if f.Status == api.FindingFail {
			out = append(out, f.Check+": "+f.Detail)
		}
	}
	return strings.Join(out, "; ")
}

// verifyHostKey reads the host keys the machine offers, without logging in,
// and returns the one to pin: the one whose fingerprint is want, or with
// accept the machine's preferred one. Without either it refuses, showing the
// fingerprint to confirm.
func verifyHostKey(ctx context.Context, addr, want string, accept bool) (ssh.PublicKey, error) {
	keys, err := nodes.ProbeHostKeys(ctx, addr, sshTimeout)
	if err != nil {
		return nil, api.FailedPrecondition("cannot reach the SSH server: %v", err)
	}
	if want != "" {
		var offered []string
		for _, k := range keys {
			if nodes.Fingerprint(k) == want {
				return k, nil
			}
			offered = append(offered, nodes.Fingerprint(k)+" ("+k.Type()+")")
		}
		return nil, api.Invalid("host_key_fingerprint", "does not match: %s offered %s, not %s; refusing to log in (no credentials were sent)",
			addr, strings.Join(offered, ", "), want)
	}
	if accept {
		return keys[0], nil
	}
	k := keys[0]
	return nil, api.FailedPrecondition("the host key of %s is %s (%s); nothing was sent to it. Check it on the machine (ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub) and attach again with --host-key-fingerprint %s, or with --accept-host-key",
		addr, nodes.Fingerprint(k), k.Type(), keyFileKind(k), nodes.Fingerprint(k))
}

// keyFileKind names the host key file of k's type.
func keyFileKind(k ssh.PublicKey) string {
	switch {
	case k.Type() == ssh.KeyAlgoED25519:
		return "ed25519"
	case strings.HasPrefix(k.Type(), "ecdsa"):
		return "ecdsa"
	default:
		return "rsa"
	}
}

func (s *Server) handleListHosts(w http.ResponseWriter, r *http.Request) error {
	st := s.store.State()
	out := []*api.Host{}
	for _, h := range st.Hosts() {
		out = append(out, hostView(st, h))
	}
	writeJSON(w, http.StatusOK, st.Index(), out)
	return nil
}

func (s *Server) handleGetHost(w http.ResponseWriter, r *http.Request) error {
	st := s.store.State()
	h := st.Host(r.PathValue("name"))
	if h == nil {
		return api.NotFound("no attached machine named %q (amlctl compute list-hosts shows them)", r.PathValue("name"))
	}
	writeJSON(w, http.StatusOK, st.Index(), hostView(st, h))
	return nil
}

// handleDetach starts detaching a machine: its remote target is deleted,
// then the leader stops and removes the agent and ~/.amld, then the record.
func (s *Server) handleDetach(w http.ResponseWriter, r *http.Request) error {
	st := s.store.State()
	name := r.PathValue("name")
	h := st.Host(name)
	if h == nil {
		if t := st.Target(name); t != nil && canSee(identityOf(r.Context()), t) {
			return api.FailedPrecondition("%s is a %s, not an attached machine: amlctl compute delete %s", name, t.Type, name)
		}
		return api.NotFound("no attached machine named %q (amlctl compute list-hosts shows them)", name)
	}
	if id := identityOf(r.Context()); !id.isAdmin() && h.Owner != id.name {
		return api.Forbidden("%s was attached by %s; only they or an admin may detach it", name, h.Owner)
	}
	force := r.URL.Query().Get("force") == "true"
	idx, err := s.apply(r.Context(), raftstore.MsgHostDetach, &raftstore.HostDetachRequest{Name: name, Force: force, Time: now()})
	if err != nil {
		return err
	}
	st = s.store.State()
	if h := st.Host(name); h != nil {
		writeJSON(w, http.StatusAccepted, idx, hostView(st, h))
		return nil
	}
	writeJSON(w, http.StatusAccepted, idx, &api.Host{Name: name, State: api.HostDetaching})
	return nil
}

// handleHostKey tells which host key an SSH server offers (no login).
func (s *Server) handleHostKey(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	address := strings.TrimSpace(q.Get("address"))
	if address == "" || strings.ContainsAny(address, " /@\x00") {
		return api.Invalid("address", "must be a host name or an IP address")
	}
	port, err := intParam(r, "port", 22, 1, 65535)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(address, strconv.Itoa(int(port)))
	keys, err := nodes.ProbeHostKeys(r.Context(), addr, sshTimeout)
	if err != nil {
		return api.FailedPrecondition("cannot reach the SSH server: %v", err)
	}
	writeJSON(w, http.StatusOK, 0, api.HostKeyInfo{Address: addr, Type: keys[0].Type(), Fingerprint: nodes.Fingerprint(keys[0])})
	return nil
}
