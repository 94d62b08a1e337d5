package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

func median(d []time.Duration) float64 {
	slices.Sort(d)
	return float64(d[len(d)/2].Microseconds()) / 1000
}

// BenchmarkAttachOverSSH measures, against a real sshd on loopback, the
// phases of attaching a machine by key: the attach call (host key probe,
// login, checks, copying the amld binary), the agent joining (the leader's
// ssh provider starts it), and detaching (agent stopped, ~/.amld removed).
func BenchmarkAttachOverSSH(b *testing.B) {
	h := startHead(b)
	d := startSSHD(b)
	c := h.client()
	key := readFile(b, d.keyFile)
	const trials = 5
	for range b.N {
		var attach, join, detach []time.Duration
		for i := range trials {
			name := fmt.Sprintf("bench-%d", i)
			t0 := time.Now()
			if _, err := c.Attach(context.Background(), api.AttachRequest{Name: name, Address: "127.0.0.1", SSHPort: d.port,
				Username: d.user, PrivateKey: key, HostKeyFingerprint: d.fingerprint}); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if _, err := waitNodeReady(c, name, time.Minute); err != nil {
				b.Fatal(err)
			}
			t2 := time.Now()
			if _, err := c.Detach(context.Background(), name, false); err != nil {
				b.Fatal(err)
			}
			waitFor(b, time.Minute, "detach", func() (bool, string) {
				_, err := c.GetHost(context.Background(), name)
				return api.IsNotFound(err), fmt.Sprint(err)
			})
			t3 := time.Now()
			attach, join, detach = append(attach, t1.Sub(t0)), append(join, t2.Sub(t1)), append(detach, t3.Sub(t2))
		}
		b.ReportMetric(median(attach), "attach-ms")
		b.ReportMetric(median(join), "join-ms")
		b.ReportMetric(median(detach), "detach-ms")
	}
}

// BenchmarkExecScaleFromZero measures, for a cluster of the exec provider
// backed by docs/exec-provider/local, the time from a submit to a cluster
// with no nodes until the run's first output line is readable.
func BenchmarkExecScaleFromZero(b *testing.B) {
	machines := b.TempDir()
	b.Setenv("AMLD_EXEC_LOCAL_DIR", machines)
	b.Cleanup(func() { killExecMachines(machines) })
	h := startHead(b)
	c := h.client()
	script := func(n string) string {
		p, _ := filepath.Abs(filepath.Join("..", "docs", "exec-provider", "local", n))
		return p
	}
	const trials = 5
	for range b.N {
		var lat []time.Duration
		for i := range trials {
			name := fmt.Sprintf("exec-%d", i)
			if _, err := c.CreateTarget(context.Background(), api.TargetSpec{Name: name, VMSize: "cpu-1", MaxNodes: 1, IdleSecondsBeforeScaledown: intp(0),
				Provider: "exec", CreateCommand: script("create.sh"), DeleteCommand: script("delete.sh"), ListCommand: script("list.sh")}); err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			r, err := c.SubmitRun(context.Background(), api.RunSpec{Target: name, Command: []string{"sh", "-c", "echo first"}})
			if err != nil {
				b.Fatal(err)
			}
			waitFor(b, time.Minute, "first output", func() (bool, string) {
				lc, err := c.Logs(context.Background(), r.ID, api.LogQuery{Attempt: 1})
				return err == nil && len(lc.Data) > 0, fmt.Sprint(err)
			})
			lat = append(lat, time.Since(t0))
		}
		b.ReportMetric(median(lat), "median-ms")
	}
}

// waitNodeReady waits until target has a ready node.
func waitNodeReady(c *api.Client, target string, d time.Duration) (*api.NodeView, error) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		ns, err := c.ListNodes(context.Background(), target)
		if err == nil {
			for _, n := range ns {
				if n.Ready() {
					return n, nil
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, fmt.Errorf("no ready node of %s after %s", target, d)
}
