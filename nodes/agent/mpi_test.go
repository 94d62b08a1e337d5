package agent

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/mpi"
)

// holdClient is a stand-in rsh client for the holder's command (the
// real one is built into amld and amld-rsh).
func holdClient(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "amld-rsh")
	script := "#!/bin/sh\n[ \"$1\" = --hold ] || exit 99\nexec sleep 1000\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAgentRegistersItsSSHEndpointAndKeepsItsHostKey(t *testing.T) {
	h := newFakeHead(t)
	work := t.TempDir()
	ta := startAgent(t, h, work, nil)
	h.waitFor("registration", 10*time.Second, func() bool { return len(h.registrations) > 0 })
	reg := h.registrations[0]
	if reg.SSHPort <= 0 || !strings.HasPrefix(reg.HostKey, "ssh-ed25519 ") {
		t.Fatalf("registration SSHPort %d, HostKey %q; want the SSH server's port and ed25519 host key", reg.SSHPort, reg.HostKey)
	}
	fi, err := os.Stat(filepath.Join(work, hostKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("host key file: %v; want it 0600 in the work dir", err)
	}
	if err := ta.stop(t); err != nil {
		t.Fatal(err)
	}
	// A restarted agent keeps its key, and its port when it is free.
	h.revokeTokens()
	startAgent(t, h, work, nil)
	h.waitFor("second registration", 10*time.Second, func() bool { return len(h.registrations) > 1 })
	if again := h.registrations[1]; again.HostKey != reg.HostKey {
		t.Errorf("host key changed across restarts: %q then %q", reg.HostKey, again.HostKey)
	}
}

func TestOtherNodesOfAnMPIRunServeTheRunsDaemonsInTheirWorkDir(t *testing.T) {
	h := newFakeHead(t)
	ta := startAgent(t, h, "", func(c *Config) { c.RshClient = holdClient(t) })
	h.waitFor("registration", 10*time.Second, func() bool { return len(h.registrations) > 0 })
	reg := h.registrations[0]
	key, err := mpi.NewRunKey("test")
	if err != nil {
		t.Fatal(err)
	}
	peer := api.SSHPeer{NodeID: "n-1", Host: "127.0.0.1", Port: reg.SSHPort, HostKey: reg.HostKey}
	zero := api.SSHPeer{NodeID: "n-0", Host: "127.0.0.1", Port: reg.SSHPort, HostKey: reg.HostKey}
	a := api.Assignment{
		RunID: "r-mpi", Attempt: 1, NodeIndex: 1,
		Run:   api.RunSpec{Command: []string{"./never-run-here"}, NodeCount: 2, ProcessCountPerNode: 2, Distribution: api.DistributionMPI},
		Peers: []string{"127.0.0.1", "127.0.0.1"},
		SSH:   &api.AttemptSSH{User: "r-mpi", PrivateKey: key.Private, PublicKey: key.Public, Peers: []api.SSHPeer{zero, peer}},
	}
	h.assign(a)
	h.waitFor("running", 10*time.Second, func() bool {
		for _, s := range h.statuses {
			if s.AttemptKey == a.Key() && s.State == api.AttemptRunning {
				return true
			}
		}
		return false
	})
	dir := ta.attemptDir(a.Key())
	cfg, err := mpi.LoadRshConfig(filepath.Join(dir, ".aml", "rsh.json"))
	if err != nil {
		t.Fatal(err)
	}
	hostfile, _ := os.ReadFile(filepath.Join(dir, ".aml", "hostfile"))
	if string(hostfile) != "n-0 slots=2\nn-1 slots=2\n" {
		t.Errorf("hostfile %q, want both nodes with slots=2", hostfile)
	}
	// What mpirun on node 0 would do: run a daemon here over SSH.
	client, err := cfg.Dial(context.Background(), "n-1")
	if err != nil {
		t.Fatalf("dial this node as the run: %v", err)
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.Output(`pwd; echo "$AML_RUN_ID $NODE_RANK $WORLD_SIZE"; echo "$TMPDIR"`)
	if err != nil {
		t.Fatalf("exec: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 || lines[0] != dir || lines[1] != "r-mpi 1 4" || !strings.Contains(lines[2], "/aml-") {
		t.Fatalf("exec printed %q; want the attempt's work dir %s, its environment and a TMPDIR of its own", out, dir)
	}
	// The attempt ends: the run's key is refused from then on.
	a.Stop, a.StopReason = true, "attempt over"
	h.assign(a)
	h.final(a.Key(), 10*time.Second)
	if _, err := cfg.Dial(context.Background(), "n-1"); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("dial after the attempt ended: %v; want the key refused", err)
	}
	if _, err := os.Stat(lines[2]); !os.IsNotExist(err) {
		t.Errorf("the daemon's TMPDIR %s outlived the attempt: %v", lines[2], err)
	}
	if logs := ta.logs.String(); strings.Contains(logs, "PRIVATE KEY") {
		t.Errorf("the run's private key was logged:\n%s", logs)
	}
}

func TestPeersRunning(t *testing.T) {
	tests := []struct {
		states []string
		n      int
		want   bool
	}{
		{nil, 1, true},
		{nil, 2, false},
		{[]string{"preparing", "preparing"}, 2, false},
		{[]string{"preparing", "running"}, 2, true},
		{[]string{"preparing", "running", "preparing"}, 3, false},
		{[]string{"preparing", "finalizing", "exited"}, 3, true},
		{[]string{"preparing", "running"}, 3, false},
	}
	for _, tt := range tests {
		if got := peersRunning(tt.states, tt.n); got != tt.want {
			t.Errorf("peersRunning(%v, %d) = %v, want %v", tt.states, tt.n, got, tt.want)
		}
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	tb := &tailBuffer{max: 8}
	for i := range 20 {
		tb.Write([]byte(strconv.Itoa(i % 10)))
	}
	if got := string(tb.Bytes()); got != "23456789" {
		t.Errorf("tail %q, want the last 8 bytes", got)
	}
}
