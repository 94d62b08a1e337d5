package raftstore

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/amld/amld/api"
	"github.com/hashicorp/go-hclog"
)

func TestRaftLogsReachSlogAtWarnAndAbove(t *testing.T) {
	var buf bytes.Buffer
	l := newHCLog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug - 4})), hclog.Warn)
	l.Debug("chatty")
	l.Info("election won")
	l.Named("transport").With("peer", "s2").Warn("slow peer", "rtt", "1s")
	l.Error("disk failed")
	l.StandardLogger(nil).Print("[ERR] raft: from the std logger")
	l.StandardLogger(nil).Print("[DEBUG] hidden")
	out := buf.String()
	for _, want := range []string{"slow peer", "logger=raft.transport", "peer=s2", "rtt=1s", "disk failed", "from the std logger", "level=ERROR"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	for _, hidden := range []string{"chatty", "election won", "hidden"} {
		if strings.Contains(out, hidden) {
			t.Errorf("%q logged below warn:\n%s", hidden, out)
		}
	}
	if !l.IsWarn() || l.IsInfo() {
		t.Fatal("level checks wrong")
	}
	l.SetLevel(hclog.Debug)
	if !l.IsDebug() || l.GetLevel() != hclog.Debug {
		t.Fatal("SetLevel did not take")
	}
}

func TestApplyCommandBuildsAStateWithoutRaft(t *testing.T) {
	f := NewFSM(nil)
	if err := f.ApplyCommand(1, MsgUserCreate, &UserCreateRequest{User: api.User{Name: "bob"}, TokenHash: "h"}); err != nil {
		t.Fatal(err)
	}
	if u := f.State().User("bob"); u == nil || u.Role != api.RoleUser || u.CreateIndex != 1 {
		t.Fatalf("user %+v", u)
	}
	if err := f.ApplyCommand(2, MsgUserCreate, &RunCancelRequest{}); err == nil {
		t.Fatal("mismatched request applied")
	}
	if f.State().Index() != 1 {
		t.Fatal("an unencodable command moved the index")
	}
}
