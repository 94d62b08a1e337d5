package nodes

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestLocalEvictKillsTheAgentAtOnceEvenIfItIgnoresSIGTERM(t *testing.T) {
	t.Setenv("FAKE_AGENT_IGNORE_TERM", "1")
	l := newTestLocal(t, nil) // StopTimeout 5s: Evict must not wait for it
	if _, err := l.Create(context.Background(), spec("n-e")); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(l.cfg.DataDir, "n-e")
	waitForLog(t, filepath.Join(dir, "agent.log"), "fake agent up")
	pid := readPidFile(filepath.Join(dir, "pid"))
	if err := l.Evict(context.Background(), "n-e"); err != nil {
		t.Fatal(err)
	}
	if isAgent(pid, "n-e") {
		t.Fatalf("agent %d still runs after Evict", pid)
	}
	if insts, _ := l.List(context.Background()); len(insts) != 0 {
		t.Fatalf("List after Evict = %+v, want nothing", insts)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("node dir still there: %v", err)
	}
	if err := l.Evict(context.Background(), "n-e"); err != nil {
		t.Fatalf("Evict of a gone node = %v, want nil", err)
	}
	if err := l.Evict(context.Background(), "../x"); err == nil {
		t.Fatal("Evict accepted an unsafe node ID")
	}
}
