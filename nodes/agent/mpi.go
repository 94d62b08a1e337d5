package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/mpi"
)

// Environment variables a multi-node attempt gets besides the usual ones.
const (
	// EnvHostfile is the Open MPI hostfile of the run's nodes (slots=P).
	EnvHostfile = "AML_HOSTFILE"
	// EnvRshAgent is the rsh client, for a launcher the user brings
	// (mpirun --mca plm_rsh_agent $AML_RSH_AGENT --hostfile $AML_HOSTFILE).
	EnvRshAgent = "AML_RSH_AGENT"
)

// tailBytes is how much of node 0's output is kept to read mpirun's
// failure messages from.
const tailBytes = 64 << 10

// mpiAttempt is one node's share of an attempt whose nodes reach each
// other over SSH: the files the rsh client and mpirun need, the node's
// grant on the agent's SSH server, and per-daemon temporary dirs.
type mpiAttempt struct {
	at     *attempt
	ssh    *api.AttemptSSH
	layout mpi.Layout
	// launcher: node 0 of distribution mpi runs mpirun; holder: the other
	// nodes of distribution mpi run no command of their own.
	launcher, holder bool
	// contained: the attempt runs in a container (the run has an image):
	// the rsh client is a static copy in the work dir, and TMPDIRs are the
	// container's own.
	contained bool

	hostfile, rshConfig, rshClient string
	// tmp is the root of the attempt's TMPDIRs, under the system temp dir
	// (short paths: Open MPI puts Unix sockets there). Each daemon started
	// over SSH gets its own: two daemons on one machine must not share one.
	tmp      string
	sessions atomic.Int64
	tail     *tailBuffer

	// handle is the attempt's command once started (set before hSet is
	// closed); exec requests wait for it. ended is closed by close.
	handle Handle
	hSet   chan struct{}
	ended  chan struct{}

	closeOnce sync.Once
	revoke    func()
}

// setupMPI writes the attempt's hostfile, rsh config and key into
// dir/.aml; nil when the assignment carries no SSH material.
func (at *attempt) setupMPI(dir string) (*mpiAttempt, error) {
	s := at.asg.SSH
	if s == nil {
		return nil, nil
	}
	if len(s.Peers) == 0 || at.key.NodeIndex >= len(s.Peers) {
		return nil, fmt.Errorf("the assignment names %d SSH peers for node index %d", len(s.Peers), at.key.NodeIndex)
	}
	ppn := max(at.asg.Run.ProcessCountPerNode, 1)
	m := &mpiAttempt{
		at:        at,
		ssh:       s,
		launcher:  at.asg.Run.Distribution == api.DistributionMPI && at.key.NodeIndex == 0,
		holder:    at.asg.Run.Distribution == api.DistributionMPI && at.key.NodeIndex > 0,
		layout:    mpi.Layout{Slots: ppn},
		contained: at.asg.Run.Environment.Image != "",
		hSet:      make(chan struct{}),
		ended:     make(chan struct{}),
	}
	rc := mpi.RshConfig{User: s.User}
	for _, p := range s.Peers {
		if p.Port <= 0 || p.HostKey == "" || p.Host == "" {
			return nil, fmt.Errorf("node %s serves no SSH (an agent without MPI support?)", p.NodeID)
		}
		m.layout.Nodes = append(m.layout.Nodes, p.NodeID)
		rc.Hosts = append(rc.Hosts, mpi.RshHost{Name: p.NodeID, Addr: net.JoinHostPort(p.Host, strconv.Itoa(p.Port)), HostKey: p.HostKey})
	}
	aml := filepath.Join(dir, ".aml")
	if err := os.MkdirAll(aml, 0o700); err != nil {
		return nil, err
	}
	rc.IdentityFile = filepath.Join(aml, "id_ed25519")
	if err := os.WriteFile(rc.IdentityFile, []byte(s.PrivateKey), 0o600); err != nil {
		return nil, fmt.Errorf("write the run's key: %w", err)
	}
	m.rshConfig = filepath.Join(aml, "rsh.json")
	if err := mpi.WriteRshConfig(m.rshConfig, rc); err != nil {
		return nil, fmt.Errorf("write the rsh config: %w", err)
	}
	m.hostfile = filepath.Join(aml, "hostfile")
	if err := os.WriteFile(m.hostfile, []byte(m.layout.Hostfile()), 0o644); err != nil {
		return nil, fmt.Errorf("write the hostfile: %w", err)
	}
	// The rsh client sits at the same place in every node's work dir:
	// mpirun passes its plm_rsh_agent to every orted, which checks that it
	// exists, so it is given relative to the work dir (rshAgentRel).
	var err error
	in := filepath.Join(aml, "amld-rsh")
	if m.contained {
		// Runs inside the container: a static copy, in the mounted work dir.
		src, err := at.a.staticRshClient()
		if err != nil {
			return nil, err
		}
		if err := linkOrCopy(src, in); err != nil {
			return nil, fmt.Errorf("the rsh client: %w", err)
		}
	} else {
		src, err := at.a.rshClient()
		if err != nil {
			return nil, err
		}
		_ = os.Remove(in)
		if err := os.Symlink(src, in); err != nil {
			return nil, fmt.Errorf("the rsh client: %w", err)
		}
	}
	m.rshClient = in
	if m.launcher {
		m.tail = &tailBuffer{max: tailBytes}
	}
	if m.contained {
		return m, nil // TMPDIRs are the container's own
	}
	if m.tmp, err = os.MkdirTemp("", at.a.tmpPrefix()); err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(m.tmp, "main"), 0o700); err != nil {
		_ = removeAll(m.tmp)
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	return m, nil
}

// rshAgentRel is the rsh client's path relative to every node's work dir
// (the cwd of mpirun and of every orted).
const rshAgentRel = ".aml/amld-rsh"

// env is what the attempt's command (and every daemon started over SSH)
// gets on top of the usual variables.
func (m *mpiAttempt) env() []string {
	env := []string{
		EnvHostfile + "=" + m.hostfile,
		mpi.EnvRshConfig + "=" + m.rshConfig,
		EnvRshAgent + "=" + m.rshClient,
		"TMPDIR=" + m.tmpDir("main"),
	}
	if m.launcher {
		env = append(env, "PWD="+mpi.MpirunPWD)
	}
	if !m.launcher && !m.holder {
		// A launcher the user brings, started in the work dir, finds the
		// rsh agent by itself (relative: the same on every node).
		env = append(env, "OMPI_MCA_plm_rsh_agent="+rshAgentRel)
	}
	return env
}

// command is what the node runs: mpirun on node 0 of an MPI run, nothing
// (a hold) on its other nodes, the user's command otherwise.
func (m *mpiAttempt) command(user []string) []string {
	switch {
	case m.launcher:
		return mpi.MpirunArgs(mpi.MpirunOptions{
			Hostfile:  m.hostfile,
			Layout:    m.layout,
			RshAgent:  rshAgentRel,
			AsRoot:    os.Geteuid() == 0,
			IfInclude: m.ifInclude(),
			Command:   user,
		})
	case m.holder:
		// No command of its own until the attempt is stopped: mpirun on
		// node 0 starts this node's daemon over SSH.
		return []string{m.rshClient, mpi.HoldFlag}
	}
	return user
}

// ifInclude picks the network the run's MPI traffic stays on.
func (m *mpiAttempt) ifInclude() string {
	ctx, cancel := context.WithTimeout(m.at.ctx, 2*time.Second)
	defer cancel()
	resolve := func(h string) net.IP {
		if ip := net.ParseIP(h); ip != nil {
			return ip
		}
		ips, err := net.DefaultResolver.LookupIP(ctx, "ip", h)
		if err != nil || len(ips) == 0 {
			return nil
		}
		return ips[0]
	}
	var peers []net.IP
	for _, p := range m.ssh.Peers {
		peers = append(peers, resolve(p.Host))
	}
	var nets []*net.IPNet
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				nets = append(nets, n)
			}
		}
	}
	return mpi.IfInclude(peers[m.at.key.NodeIndex], peers, nets)
}

// waitPeers holds node 0 of an MPI run until every other node of the
// attempt runs (its grant is in place), so that mpirun's first SSH
// requests are accepted. It returns false when the attempt was stopped or
// the agent stops first.
func (m *mpiAttempt) waitPeers() bool {
	if !m.launcher {
		return true
	}
	for {
		states, changed := m.at.peers.get()
		if peersRunning(states, len(m.layout.Nodes)) {
			return true
		}
		select {
		case <-changed:
		case <-m.at.stopCh:
			return false
		case <-m.at.ctx.Done():
			return false
		}
	}
}

// peersRunning reports whether nodes 1..n-1 have started (or ended).
func peersRunning(states []string, n int) bool {
	if n <= 1 {
		return true
	}
	if len(states) != n {
		return false
	}
	for _, s := range states[1:] {
		if s != api.AttemptRunning && s != api.AttemptFinalizing && s != api.AttemptExited {
			return false
		}
	}
	return true
}

// allow lets the run's key in on this node's SSH server, before the
// node's command starts (mpirun may call this very node at once). Exec
// requests run inside the attempt through the runtime's Execer, once
// started says the attempt's command runs.
func (m *mpiAttempt) allow(rt Runtime, dir string, env []string) error {
	key, err := mpi.ParseAuthorizedKey(m.ssh.PublicKey)
	if err != nil {
		return fmt.Errorf("the run's public key: %w", err)
	}
	ex, canExec := rt.(Execer)
	revoke, err := m.at.a.sshd.Allow(mpi.Grant{
		RunID:   m.at.key.RunID,
		Attempt: m.at.key.Attempt,
		Key:     key,
		Exec: func(ctx context.Context, req mpi.ExecRequest) (mpi.Process, error) {
			if !canExec {
				return nil, fmt.Errorf("the %s runtime cannot run commands inside an attempt", rt.Name())
			}
			select {
			case <-m.hSet:
			case <-m.ended:
				return nil, errors.New("the run's attempt ended on this node")
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			tmp := m.tmpDir("s" + strconv.FormatInt(m.sessions.Add(1), 10))
			if !m.contained {
				if err := os.MkdirAll(tmp, 0o700); err != nil {
					return nil, err
				}
			}
			return ex.Exec(ctx, m.handle, ExecSpec{
				Command: []string{"/bin/sh", "-c", req.Command},
				Dir:     dir,
				Env:     append(append([]string(nil), env...), "TMPDIR="+tmp),
				Stdin:   req.Stdin,
				Stdout:  req.Stdout,
				Stderr:  req.Stderr,
			})
		},
	})
	if err != nil {
		return err
	}
	m.revoke = revoke
	return nil
}

// tmpDir is the TMPDIR named name: under the attempt's temp root on this
// machine, or under the container's own /tmp (Open MPI makes it).
func (m *mpiAttempt) tmpDir(name string) string {
	if m.contained {
		return "/tmp/.amld/" + name
	}
	return filepath.Join(m.tmp, name)
}

// started lets the exec requests in: the attempt's command runs as h.
func (m *mpiAttempt) started(h Handle) {
	m.handle = h
	close(m.hSet)
}

// close revokes the grant (killing the daemons it started) and removes
// the temporary dirs. It may be called more than once.
func (m *mpiAttempt) close() {
	m.closeOnce.Do(func() {
		close(m.ended)
		if m.revoke != nil {
			m.revoke()
		}
		if m.tmp != "" {
			if err := removeAll(m.tmp); err != nil {
				m.at.log.Warn("could not remove the attempt's temp dir", "err", err)
			}
		}
	})
}

// failure words a failed mpirun's end for the run's reason, naming the
// failed rank's node and code; lost is true when a node's connection was
// lost (the run is requeued, not failed).
func (m *mpiAttempt) failure() (reason string, lost bool) {
	if m == nil || m.tail == nil {
		return "", false
	}
	f, ok := mpi.ParseFailure(m.tail.Bytes(), m.layout)
	if !ok {
		return "", false
	}
	return f.Reason(), f.Lost
}

// peerWatch holds the latest peer states the head sent for an attempt.
// Its zero value is ready to use.
type peerWatch struct {
	mu      sync.Mutex
	states  []string
	changed chan struct{} // closed and replaced on every update
}

// set records states and wakes the waiters.
func (w *peerWatch) set(states []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.states = append([]string(nil), states...)
	if w.changed != nil {
		close(w.changed)
	}
	w.changed = make(chan struct{})
}

// get returns the states and a channel closed at the next update.
func (w *peerWatch) get() ([]string, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.changed == nil {
		w.changed = make(chan struct{})
	}
	return w.states, w.changed
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// Bytes returns a copy of what is kept.
func (t *tailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...)
}
