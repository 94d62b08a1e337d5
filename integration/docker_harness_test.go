package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// baseImage is the job image `make images` builds.
const baseImage = "amld/base:cpu"

// nodeImage is the exact node image `make images` built from this tree's
// amld (BIN/node/image names it).
func nodeImage(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(binDir, "node", "image"))
	if err != nil {
		t.Fatalf("no node image: run `make images` (it writes %s/node/image): %v", binDir, err)
	}
	img := strings.TrimSpace(string(b))
	if out, err := exec.Command("docker", "image", "inspect", img, baseImage).CombinedOutput(); err != nil {
		t.Fatalf("docker image inspect %s %s: %v: %s (run `make images`)", img, baseImage, err, out)
	}
	return img
}

// startDockerHead starts a head with the docker provider. Every container
// and network made for it carries a label of its own, by which they are
// all removed when the test ends.
func startDockerHead(t *testing.T, extra ...string) *head {
	t.Helper()
	img := nodeImage(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	label := "amld.test=" + strings.ToLower(t.Name()) + "-" + hex.EncodeToString(b[:])
	t.Cleanup(func() { removeDockerLabelled(t, label) }) // after the head stops
	return startHead(t, append([]string{"--docker-node-image", img, "--docker-label", label}, extra...)...)
}

// removeDockerLabelled removes the containers and networks with label.
func removeDockerLabelled(t testing.TB, label string) {
	if ids := dockerLines(t, "ps", "-aq", "--filter", "label="+label); len(ids) > 0 {
		if out, err := exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).CombinedOutput(); err != nil {
			t.Errorf("clean up containers: %v: %s", err, out)
		}
	}
	if ids := dockerLines(t, "network", "ls", "-q", "--filter", "label="+label); len(ids) > 0 {
		if out, err := exec.Command("docker", append([]string{"network", "rm"}, ids...)...).CombinedOutput(); err != nil {
			t.Errorf("clean up networks: %v: %s", err, out)
		}
	}
}

// docker runs the docker CLI and returns its output.
func docker(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// dockerLines runs the docker CLI and returns its non-empty output lines.
func dockerLines(t testing.TB, args ...string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(docker(t, args...), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// nodeContainers lists the running node containers of node IDs of target.
func runContainersOf(t testing.TB, nodeID string) []string {
	return dockerLines(t, "ps", "-aq", "--filter", "label=amld.role=run", "--filter", "label=amld.node="+nodeID)
}

// createDockerCluster makes a cluster of the docker provider.
func createDockerCluster(t *testing.T, c *api.Client, name, size string, maxNodes, idle int) {
	t.Helper()
	_, err := c.CreateTarget(ctx(t), api.TargetSpec{
		Name: name, VMSize: size, MaxNodes: maxNodes, IdleSecondsBeforeScaledown: intp(idle), Provider: "docker",
	})
	if err != nil {
		t.Fatalf("create cluster %s: %v", name, err)
	}
}

// imageRun is a run of the shell script in the base image.
func imageRun(target, script string) api.RunSpec {
	return api.RunSpec{Target: target, Environment: api.Environment{Image: baseImage}, Command: []string{"sh", "-c", script}}
}

// waitRunState waits until run id is in state and returns it.
func waitRunState(t *testing.T, c *api.Client, d time.Duration, id, state string) *api.Run {
	t.Helper()
	var got *api.Run
	waitFor(t, d, "run "+id+" to be "+state, func() (bool, string) {
		r, _, err := c.GetRun(context.Background(), id, api.Wait{})
		if err != nil {
			return false, err.Error()
		}
		got = r
		return r.State == state, fmt.Sprintf("%s: %s", r.State, r.Reason)
	})
	return got
}

// waitLog waits until run id's log of attempt holds want.
func waitLog(t *testing.T, c *api.Client, d time.Duration, id string, attempt int, want string) {
	t.Helper()
	waitFor(t, d, fmt.Sprintf("%q in the log of %s", want, id), func() (bool, string) {
		lc, err := c.Logs(context.Background(), id, api.LogQuery{Attempt: attempt})
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(string(lc.Data), want), string(lc.Data)
	})
}

// dockerLabel is the label startDockerHead gave h's containers.
func (h *head) dockerLabel() string {
	for i, a := range h.args {
		if a == "--docker-label" && i+1 < len(h.args) {
			return h.args[i+1]
		}
	}
	return ""
}
