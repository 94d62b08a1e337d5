package integration

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/raftstore"
)

// TestHeadsFourthJoinsBySnapshotAndOneIsRemoved: three heads bootstrap
// with --bootstrap-expect 3; after enough writes that the log has been
// compacted, a fourth head started with --bootstrap-expect 0 is taken in
// with `amlctl server join`, catches up by installing a snapshot, and
// answers reads of what was written before it came; then `amlctl server
// remove` takes it out again and the cluster goes on writing.
func TestHeadsFourthJoinsBySnapshotAndOneIsRemoved(t *testing.T) {
	c := startCluster(t, 3, "--raft-snapshot-threshold", "32", "--raft-trailing-logs", "8", "--raft-snapshot-interval", "200ms")
	cl := c.client()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const targets = 60
	for i := range targets {
		if _, err := cl.CreateTarget(ctx, api.TargetSpec{Name: fmt.Sprintf("t-%03d", i), VMSize: "cpu-2", MaxNodes: 1}); err != nil {
			t.Fatalf("create target %d: %v", i, err)
		}
	}
	// Wait until the leader has compacted its log past what a new head
	// could replicate entry by entry.
	leader := c.leader()
	waitFor(t, 30*time.Second, "a snapshot on the leader", func() (bool, string) {
		snaps, _ := filepath.Glob(filepath.Join(leader.dataDir, "raft", "snapshots", "*", "meta.json"))
		return len(snaps) > 0, "no snapshot yet"
	})

	// A fourth head, waiting to be joined.
	ns, ip := c.lab.addHost(4)
	h4 := &nhead{t: t, id: "h4", ns: ns, ip: ip, dataDir: filepath.Join(t.TempDir(), "h4")}
	h4.args = c.headArgs(h4, "--bootstrap-expect", "0")
	c.heads = append(c.heads, h4)
	h4.start()
	// Until it joins, h4 serves a throwaway certificate: nothing to verify.
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	waitFor(t, 20*time.Second, "h4 to listen", func() (bool, string) {
		hc, _ := api.NewClient(api.Config{Addresses: []string{h4.url()}, HTTPClient: insecure})
		st, err := hc.Status(ctx)
		return err == nil && st.State == "Joining", fmt.Sprint(st, err)
	})
	if out, errOut, code := c.ctl("server", "join", ip+":7070"); code != 0 {
		t.Fatalf("amlctl server join: exit %d\n%s%s\n%s", code, out, errOut, h4.out.String())
	}
	c.waitVoters(4)
	st, err := c.status(h4)
	if err != nil {
		t.Fatal(err)
	}
	if st.SnapshotRestores < 1 {
		t.Errorf("h4 installed %d snapshots; it should have caught up by one", st.SnapshotRestores)
	}
	// h4 answers from its own state, which has every target.
	waitFor(t, 20*time.Second, "h4 to have every target", func() (bool, string) {
		ts, err := c.client(h4).ListTargets(ctx)
		return err == nil && len(ts) == targets, fmt.Sprintf("%d targets, %v", len(ts), err)
	})
	out, _, code := c.ctl("server", "members")
	if code != 0 || !strings.Contains(out, "h4") || !strings.Contains(out, "APPLIED INDEX") {
		t.Errorf("members:\n%s", out)
	}
	// Every head records the log format it applies (batch entries need all
	// four to).
	waitFor(t, 20*time.Second, "every head to record its log format", func() (bool, string) {
		ms, err := cl.Members(ctx)
		if err != nil || len(ms) != 4 {
			return false, fmt.Sprint(ms, err)
		}
		for _, m := range ms {
			if m.LogVersion != raftstore.LogVersion {
				return false, fmt.Sprintf("%s records log format %d", m.ID, m.LogVersion)
			}
		}
		return true, ""
	})

	// Remove h4; the other three go on.
	if out, errOut, code := c.ctl("server", "remove", "h4"); code != 0 {
		t.Fatalf("amlctl server remove: exit %d\n%s%s", code, out, errOut)
	}
	waitFor(t, 20*time.Second, "three members", func() (bool, string) {
		ms, err := cl.Members(ctx)
		return err == nil && len(ms) == 3, fmt.Sprint(ms, err)
	})
	h4.stop()
	if _, err := cl.CreateTarget(ctx, api.TargetSpec{Name: "after-remove", VMSize: "cpu-2", MaxNodes: 1}); err != nil {
		t.Fatalf("write after the removal: %v", err)
	}
	if _, _, code := c.ctl("server", "remove", "h9"); code != 1 {
		t.Errorf("removing an unknown head: exit %d, want 1", code)
	}

	// A snapshot saved through amlctl restores the state it had.
	snap := filepath.Join(t.TempDir(), "backup.snap")
	if out, errOut, code := c.ctl("operator", "snapshot", "save", snap); code != 0 {
		t.Fatalf("snapshot save: %s%s", out, errOut)
	}
	if _, err := cl.CreateTarget(ctx, api.TargetSpec{Name: "after-backup", VMSize: "cpu-2", MaxNodes: 1}); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := c.ctl("operator", "snapshot", "restore", snap); code != 0 {
		t.Fatalf("snapshot restore: %s%s", out, errOut)
	}
	for _, h := range c.heads[:3] {
		waitFor(t, 20*time.Second, "the restored state on "+h.id, func() (bool, string) {
			_, err1 := c.client(h).GetTarget(ctx, "after-backup")
			_, err2 := c.client(h).GetTarget(ctx, "after-remove")
			return api.IsNotFound(err1) && err2 == nil, fmt.Sprint(err1, err2)
		})
	}
	if b, _ := os.ReadFile(snap); len(b) == 0 {
		t.Error("empty snapshot file")
	}
}
