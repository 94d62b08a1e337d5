package nodes

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// fakeExecSource serves one target's scripts.
type fakeExecSource struct {
	target string
	cmds   ExecCommands
	nodes  map[string]string
}

func (f *fakeExecSource) ExecCommands(target string) (ExecCommands, error) {
	if target != f.target {
		return ExecCommands{}, errors.New("no exec target " + target)
	}
	return f.cmds, nil
}
func (f *fakeExecSource) ExecTargets() []string           { return []string{f.target} }
func (f *fakeExecSource) NodeTarget(nodeID string) string { return f.nodes[nodeID] }

func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExecProviderRunsTheScriptsWithTheTokenInAFile(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "machines")
	src := &fakeExecSource{target: "cloud", cmds: ExecCommands{
		Create: writeScript(t, dir, "create.sh", `set -eu
mkdir -p "`+state+`"
{ echo "args=$#"; env | grep '^AMLD_' | sort; echo "token_mode=$(stat -c %a "$AMLD_JOIN_TOKEN_FILE")"; echo "token=$(cat "$AMLD_JOIN_TOKEN_FILE")"; } > "`+state+`/$AMLD_NODE_NAME"
echo "making a machine"
echo "vm-$AMLD_NODE_NAME"
`),
		Delete: writeScript(t, dir, "delete.sh", `rm -f "`+state+`/$AMLD_NODE_NAME"; echo "deleted $AMLD_PROVIDER_ID" > "`+state+`.deleted"`),
		List:   writeScript(t, dir, "list.sh", `for f in "`+state+`"/*; do [ -f "$f" ] && echo "$(basename "$f") vm-$(basename "$f")"; done; true`),
	}}
	p, err := NewExec(ExecConfig{Source: src, DataDir: filepath.Join(dir, "data"), AgentBinary: "/usr/bin/amld", Env: []string{"PATH=" + os.Getenv("PATH")}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	spec := NodeSpec{NodeID: "n-1", Target: "cloud", Size: api.VMSize{Name: "gpu-1", CPUs: 6, MemoryGB: 56, GPUs: 1},
		Priority: api.VMPriorityLowPriority, HeadAddrs: []string{"http://10.0.0.1:7070", "http://10.0.0.2:7070"}, JoinToken: "join-secret-123"}
	id, err := p.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if id != "exec:cloud/vm-n-1" {
		t.Fatalf("provider ID %q", id)
	}
	b, err := os.ReadFile(filepath.Join(state, "n-1"))
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{"args=0", "AMLD_NODE_NAME=n-1", "AMLD_TARGET=cloud", "AMLD_VM_SIZE=gpu-1", "AMLD_VM_PRIORITY=lowpriority",
		"AMLD_CPUS=6", "AMLD_MEMORY_MB=57344", "AMLD_GPUS=1", "AMLD_HEAD_ADDRS=http://10.0.0.1:7070,http://10.0.0.2:7070",
		"AMLD_AGENT_BINARY=/usr/bin/amld", "token_mode=600", "token=join-secret-123"} {
		if !strings.Contains(got, want) {
			t.Errorf("the create script saw no %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "AMLD_JOIN_TOKEN=") {
		t.Error("the token itself is in the environment")
	}

	insts, err := p.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(insts) != 1 || insts[0].NodeID != "n-1" || insts[0].ProviderID != "exec:cloud/vm-n-1" || insts[0].Target != "cloud" {
		t.Fatalf("list %+v", insts)
	}
	if !p.Lists("cloud") || p.Lists("other") {
		t.Fatal("Lists")
	}

	if err := p.Delete(ctx, "n-1", id); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(state + ".deleted"); strings.TrimSpace(string(b)) != "deleted vm-n-1" {
		t.Fatalf("delete script saw %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "n-1")); !os.IsNotExist(err) {
		t.Fatalf("token dir left behind: %v", err)
	}
	// A node whose provider ID was never recorded is found through its target.
	src.nodes = map[string]string{"n-2": "cloud"}
	if err := p.Delete(ctx, "n-2", ""); err != nil {
		t.Fatal(err)
	}
	if err := p.Delete(ctx, "n-3", ""); err == nil || !strings.Contains(err.Error(), "target is unknown") {
		t.Fatalf("delete of an unknown node: %v", err)
	}
}

func TestExecProviderFailureCarriesStderrWithoutTheToken(t *testing.T) {
	dir := t.TempDir()
	src := &fakeExecSource{target: "cloud", cmds: ExecCommands{
		Create: writeScript(t, dir, "create.sh", `echo "starting $(cat "$AMLD_JOIN_TOKEN_FILE")"
echo "az: quota exceeded for token $(cat "$AMLD_JOIN_TOKEN_FILE")" >&2
echo "(Code: QuotaExceeded)" >&2
exit 3
`),
		Delete: writeScript(t, dir, "delete.sh", "exit 0"),
	}}
	p, err := NewExec(ExecConfig{Source: src, DataDir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Create(context.Background(), NodeSpec{NodeID: "n-1", Target: "cloud", HeadAddrs: []string{"h"}, JoinToken: "join-secret-123"})
	if err == nil {
		t.Fatal("a failing script succeeded")
	}
	msg := err.Error()
	if !strings.Contains(msg, "exited 3") || !strings.Contains(msg, "az: quota exceeded") || !strings.Contains(msg, "(Code: QuotaExceeded)") {
		t.Fatalf("error %q", msg)
	}
	if strings.Contains(msg, "join-secret-123") || strings.Contains(msg, "\n") {
		t.Fatalf("error shows the token or spans lines: %q", msg)
	}
	if p.Lists("cloud") {
		t.Fatal("a target without a list script is listed")
	}
}

func TestExecProviderKillsAScriptPastItsContext(t *testing.T) {
	dir := t.TempDir()
	src := &fakeExecSource{target: "cloud", cmds: ExecCommands{
		Create: writeScript(t, dir, "create.sh", "sleep 30 & sleep 30\n"),
	}}
	p, err := NewExec(ExecConfig{Source: src, DataDir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = p.Create(ctx, NodeSpec{NodeID: "n-1", Target: "cloud", HeadAddrs: []string{"h"}, JoinToken: "t"})
	if err == nil || !strings.Contains(err.Error(), "was stopped") {
		t.Fatalf("error %v", err)
	}
}
