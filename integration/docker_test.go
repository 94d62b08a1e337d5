package integration

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

func TestDockerClusterScalesFromZeroToThreeAndBack(t *testing.T) {
	h := startDockerHead(t)
	c := h.client()
	createDockerCluster(t, c, "dk-burst", "cpu-1", 3, 2)

	var specs []api.RunSpec
	for i := range 6 {
		specs = append(specs, imageRun("dk-burst", fmt.Sprintf("echo run %d on $(hostname); sleep 2", i)))
	}
	ids := submitAll(t, c, specs...)

	maxNodes, maxContainers := 0, 0
	stop := sampleEvery(200*time.Millisecond, func() {
		ns, err := c.ListNodes(context.Background(), "dk-burst")
		if err != nil {
			return
		}
		ctrs := dockerLines(t, "ps", "-q", "--filter", "label=amld.role=node", "--filter", "label=amld.target=dk-burst", "--filter", "label="+h.dockerLabel())
		maxNodes = max(maxNodes, len(ns))
		maxContainers = max(maxContainers, len(ctrs))
	})
	runs := waitTerminal(t, c, 3*time.Minute, ids)
	stop()
	for _, r := range runs {
		completedOnce(t, r)
		if r.Environment.Image != baseImage {
			t.Errorf("run %s image %q, want %q", r.ID, r.Environment.Image, baseImage)
		}
	}
	if maxNodes != 3 || maxContainers != 3 {
		t.Errorf("cluster grew to %d nodes, %d node containers; want max_nodes=3 of each", maxNodes, maxContainers)
	}
	if got := fullLog(t, c, ids[0], 0); !strings.Contains(got, "run 0 on n-") {
		t.Errorf("log of %s = %q, want its line, with the node's host name", ids[0], got)
	}
	waitFor(t, 90*time.Second, "scale down to 0 nodes and 0 containers", func() (bool, string) {
		tg, err := c.GetTarget(context.Background(), "dk-burst")
		if err != nil {
			return false, err.Error()
		}
		n := tg.NodeStateCounts
		total := n.Idle + n.Running + n.Preparing + n.Leaving + n.Unusable + n.Preempted
		ctrs := dockerLines(t, "ps", "-aq", "--filter", "label="+h.dockerLabel())
		return total == 0 && len(ctrs) == 0, fmt.Sprintf("nodes %+v, containers %d", n, len(ctrs))
	})
}

func TestDockerRunSeesItsVMSizeLimits(t *testing.T) {
	h := startDockerHead(t)
	c := h.client()
	createDockerCluster(t, c, "dk-limits", "cpu-1", 1, 60)
	// cgroup v2 (cpu.max, memory.max) or v1 (cfs quota/period, limit_in_bytes).
	code := `
import os
def read(p):
    try:
        return open(p).read().split()
    except OSError:
        return None
cpu = read("/sys/fs/cgroup/cpu.max")
if cpu:
    quota, period = cpu
else:
    quota, period = read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")[0], read("/sys/fs/cgroup/cpu/cpu.cfs_period_us")[0]
mem = read("/sys/fs/cgroup/memory.max") or read("/sys/fs/cgroup/memory/memory.limit_in_bytes")
print("cpus=%g" % (int(quota) / int(period)) if quota != "max" else "cpus=unlimited")
print("memory_mib=%d" % (int(mem[0]) // (1 << 20)) if mem[0] != "max" else "memory_mib=unlimited")
print("cwd=" + os.getcwd())
`
	ids := submitAll(t, c, api.RunSpec{Target: "dk-limits", Environment: api.Environment{Image: baseImage}, Command: []string{"python3", "-c", code}})
	r := waitTerminal(t, c, 2*time.Minute, ids)[ids[0]]
	completedOnce(t, r)
	log := fullLog(t, c, ids[0], 0)
	// cpu-1: 1 CPU, 2 GiB.
	for _, want := range []string{"cpus=1\n", "memory_mib=2048\n", "cwd=" + h.dataDir + "/"} {
		if !strings.Contains(log, want) {
			t.Errorf("the run's output lacks %q:\n%s", want, log)
		}
	}
}

func TestDockerCancelKillsTheContainer(t *testing.T) {
	h := startDockerHead(t)
	c := h.client()
	createDockerCluster(t, c, "dk-cancel", "cpu-1", 1, 60)
	ids := submitAll(t, c, imageRun("dk-cancel", "echo started; exec sleep 600"))
	r := waitRunState(t, c, 2*time.Minute, ids[0], api.RunRunning)
	waitLog(t, c, 30*time.Second, ids[0], 0, "started")
	nodeID := r.Attempts[0].Allocations[0].NodeID
	if got := runContainersOf(t, nodeID); len(got) != 1 {
		t.Fatalf("run containers of %s: %v, want one", nodeID, got)
	}
	if _, err := c.CancelRun(ctx(t), ids[0]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the run's container to be gone and the run Canceled", func() (bool, string) {
		r, _, err := c.GetRun(context.Background(), ids[0], api.Wait{})
		if err != nil {
			return false, err.Error()
		}
		left := runContainersOf(t, nodeID)
		return r.State == api.RunCanceled && len(left) == 0, fmt.Sprintf("%s, containers %v", r.State, left)
	})
}

func TestDockerMaxRunDurationKillsAndFails(t *testing.T) {
	h := startDockerHead(t)
	c := h.client()
	createDockerCluster(t, c, "dk-slow", "cpu-1", 1, 60)
	spec := imageRun("dk-slow", "echo started; exec sleep 600")
	spec.MaxRunDurationSeconds = 2
	spec.MaxRetries = 2 // a timeout is not retried
	ids := submitAll(t, c, spec)
	r := waitTerminal(t, c, 2*time.Minute, ids)[ids[0]]
	if r.State != api.RunFailed || !strings.Contains(r.Reason, "max_run_duration_seconds=2") {
		t.Fatalf("run %s: %s (%s), want Failed for exceeding max_run_duration_seconds=2", r.ID, r.State, r.Reason)
	}
	if len(r.Attempts) != 1 {
		t.Errorf("run %s has %d attempts, want 1 (no retry after a timeout)", r.ID, len(r.Attempts))
	}
	nodeID := r.Attempts[0].Allocations[0].NodeID
	waitFor(t, 30*time.Second, "the run's container to be removed", func() (bool, string) {
		left := runContainersOf(t, nodeID)
		return len(left) == 0, fmt.Sprint(left)
	})
}

func TestDockerAgentRestartAdoptsItsRunningContainer(t *testing.T) {
	h := startDockerHead(t)
	c := h.client()
	createDockerCluster(t, c, "dk-adopt", "cpu-1", 1, 60)
	ids := submitAll(t, c, imageRun("dk-adopt", "for i in 0 1 2 3 4 5 6 7; do echo line $i; sleep 0.5; done"))
	r := waitRunState(t, c, 2*time.Minute, ids[0], api.RunRunning)
	waitLog(t, c, 30*time.Second, ids[0], 0, "line 1")
	nodeID := r.Attempts[0].Allocations[0].NodeID
	before := runContainersOf(t, nodeID)
	docker(t, "restart", "-t", "10", "amld-node-"+nodeID) // SIGTERM: the agent leaves its run container

	r = waitTerminal(t, c, 2*time.Minute, ids)[ids[0]]
	completedOnce(t, r)
	if len(r.Attempts) != 1 {
		t.Fatalf("run %s has %d attempts, want the first one adopted, not a second copy", r.ID, len(r.Attempts))
	}
	log := fullLog(t, c, ids[0], 0)
	for i := range 8 {
		if n := strings.Count(log, "line "+strconv.Itoa(i)+"\n"); n != 1 {
			t.Errorf("%q appears %d times in the log, want once; log:\n%s", "line "+strconv.Itoa(i), n, log)
		}
	}
	if len(before) != 1 {
		t.Errorf("run containers before the restart: %v, want one", before)
	}
	waitFor(t, 30*time.Second, "the run's container to be removed", func() (bool, string) {
		left := runContainersOf(t, nodeID)
		return len(left) == 0, fmt.Sprint(left)
	})
	ns, err := c.ListNodes(ctx(t), "dk-adopt")
	if err != nil || len(ns) != 1 || ns[0].ID != nodeID || !ns[0].Ready() {
		t.Errorf("nodes after the restart: %+v (%v), want %s ready", ns, err, nodeID)
	}
}

func TestDockerKilledNodeContainerRequeuesItsRun(t *testing.T) {
	h := startDockerHead(t)
	c := h.client()
	createDockerCluster(t, c, "dk-kill", "cpu-1", 2, 60)
	ids := submitAll(t, c, imageRun("dk-kill", "echo attempt $AML_ATTEMPT; sleep 4; echo done"))
	r := waitRunState(t, c, 2*time.Minute, ids[0], api.RunRunning)
	waitLog(t, c, 30*time.Second, ids[0], 0, "attempt 1")
	lost := r.Attempts[0].Allocations[0].NodeID
	docker(t, "kill", "amld-node-"+lost)

	_, last := requeuedAfterLoss(t, c, ids[0], lost)
	if !strings.Contains(fullLog(t, c, ids[0], last.Number), "done") {
		t.Errorf("the last attempt's log lacks its end")
	}
	waitFor(t, 60*time.Second, "the lost node's containers to be removed", func() (bool, string) {
		left := append(runContainersOf(t, lost), dockerLines(t, "ps", "-aq", "--filter", "name=amld-node-"+lost)...)
		return len(left) == 0, fmt.Sprint(left)
	})
}

func TestDockerMissingImageFailsRunNodeStaysHealthy(t *testing.T) {
	h := startDockerHead(t)
	c := h.client()
	createDockerCluster(t, c, "dk-noimg", "cpu-1", 1, 60)
	bad := imageRun("dk-noimg", "true")
	bad.Environment.Image = "amld/does-not-exist:1"
	ids := submitAll(t, c, bad)
	r := waitTerminal(t, c, 2*time.Minute, ids)[ids[0]]
	if r.State != api.RunFailed || !strings.Contains(r.Reason, `image "amld/does-not-exist:1" is not on this node and could not be pulled`) {
		t.Fatalf("run %s: %s (%s), want Failed saying the image is missing", r.ID, r.State, r.Reason)
	}
	nodeID := r.Attempts[0].Allocations[0].NodeID
	good := submitAll(t, c, imageRun("dk-noimg", "echo fine"))
	r2 := waitTerminal(t, c, 2*time.Minute, good)[good[0]]
	completedOnce(t, r2)
	if got := r2.Attempts[0].Allocations[0].NodeID; got != nodeID {
		t.Errorf("the next run ran on %s, want the same healthy node %s", got, nodeID)
	}
}

func TestLocalNodeRunsImageInContainer(t *testing.T) {
	h := startDockerHead(t)
	c := h.client()
	createCluster(t, c, "local-img", 1, 60)
	ids := submitAll(t, c, imageRun("local-img", "echo in $(cat /etc/debian_version); mkdir -p outputs; echo 1 > outputs/x"))
	r := waitTerminal(t, c, 2*time.Minute, ids)[ids[0]]
	completedOnce(t, r)
	if log := fullLog(t, c, ids[0], 0); !strings.Contains(log, "in 12.") {
		t.Errorf("log %q, want the image's Debian 12", log)
	}
	if r.Attempts[0].OutputsID == "" {
		t.Errorf("no outputs collected from the container's ./outputs")
	}
}
