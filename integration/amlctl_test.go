package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// TestAmlctlUserJourney drives the CLI the way the README does.
func TestAmlctlUserJourney(t *testing.T) {
	h := startHead(t)
	examples, _ := filepath.Abs("../examples")

	if out, errOut, code := h.ctl("compute", "create", "-f", filepath.Join(examples, "cluster.yml")); code != 0 {
		t.Fatalf("create -f: %d %s %s", code, out, errOut)
	}
	if _, errOut, code := h.ctl("compute", "create", "cluster", "--name", "cpu-cluster", "--vm-size", "cpu-2", "--max-nodes", "2"); code == 0 || !strings.Contains(errOut, "already exists") {
		t.Errorf("duplicate create: code %d, stderr %q; want an error saying it exists", code, errOut)
	}
	out, _, code := h.ctl("compute", "show", "cpu-cluster", "-o", "json")
	var tg api.Target
	if code != 0 || json.Unmarshal([]byte(out), &tg) != nil || tg.MaxNodes != 4 || tg.ProvisioningState != api.ProvisioningSucceeded {
		t.Fatalf("show -o json: code %d, %s", code, out)
	}
	if out, _, code := h.ctl("compute", "update", "cpu-cluster", "--max-nodes", "8"); code != 0 {
		t.Errorf("update: %d %s", code, out)
	}
	out, _, _ = h.ctl("compute", "list-sizes")
	if !strings.Contains(out, "cpu-4") {
		t.Errorf("list-sizes lacks cpu-4: %s", out)
	}

	// The example job from its YAML, waited on: output streams, exit code 0.
	start := time.Now()
	out, errOut, code := h.ctl("job", "submit", "-f", filepath.Join(examples, "job.yml"), "--wait")
	if code != 0 || !strings.Contains(out, "epoch 5/5") || !strings.Contains(out, "model written") {
		t.Fatalf("submit -f --wait: code %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	t.Logf("example job took %s from submit to exit", time.Since(start))

	out, _, _ = h.ctl("job", "list", "-o", "json")
	var runs []*api.Run
	if err := json.Unmarshal([]byte(out), &runs); err != nil || len(runs) != 1 {
		t.Fatalf("job list -o json: %v %s", err, out)
	}
	id := runs[0].ID
	dir := t.TempDir()
	if out, errOut, code := h.ctl("job", "download", id, "--dir", dir); code != 0 {
		t.Fatalf("download: %d %s %s", code, out, errOut)
	}
	var model map[string]any
	b, err := os.ReadFile(filepath.Join(dir, "model.json"))
	if err != nil || json.Unmarshal(b, &model) != nil || model["epochs"] == nil {
		t.Errorf("downloaded model.json: %v %s", err, b)
	}
	if out, _, _ := h.ctl("job", "logs", id); !strings.Contains(out, "epoch 1/5") {
		t.Errorf("job logs: %s", out)
	}

	// A failing command: --wait exits with its code.
	_, errOut, code = h.ctl("job", "submit", "--target", "cpu-cluster", "--wait", "--", "python3", "-c", "import sys; print('bye'); sys.exit(3)")
	if code != 3 {
		t.Errorf("failing run: exit %d, want 3; stderr %s", code, errOut)
	}

	// max_run_duration_seconds is enforced.
	_, errOut, code = h.ctl("job", "submit", "--target", "cpu-cluster", "--max-run-duration-seconds", "1", "--wait", "--", "sleep", "30")
	if code == 0 || !strings.Contains(errOut, "max_run_duration_seconds") {
		t.Errorf("over-long run: exit %d, stderr %s; want a failure naming max_run_duration_seconds", code, errOut)
	}

	// Cancel of a running run.
	out, _, code = h.ctl("job", "submit", "--target", "cpu-cluster", "-o", "json", "--", "sleep", "60")
	var r api.Run
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil {
		t.Fatalf("submit: %d %s", code, out)
	}
	c := h.client()
	waitFor(t, 60*time.Second, "sleep to run", func() (bool, string) {
		got, _, err := c.GetRun(ctx(t), r.ID, api.Wait{})
		return err == nil && got.State == api.RunRunning, got.State
	})
	if out, errOut, code := h.ctl("job", "cancel", r.ID); code != 0 {
		t.Fatalf("cancel: %d %s %s", code, out, errOut)
	}
	waitFor(t, 30*time.Second, "cancel to finish", func() (bool, string) {
		got, _, err := c.GetRun(ctx(t), r.ID, api.Wait{})
		return err == nil && got.State == api.RunCanceled, got.State
	})

	// Errors are clear and exit non-zero.
	if _, errOut, code := h.ctl("job", "show", "run-nothere"); code == 0 || !strings.Contains(errOut, "no run") {
		t.Errorf("show of a missing run: %d %s", code, errOut)
	}
	if _, errOut, code := h.ctl("compute", "create", "cluster", "--name", "x", "--vm-size", "cpu-2", "--max-nodes", "1"); code == 0 || !strings.Contains(errOut, "name") {
		t.Errorf("bad name: %d %s", code, errOut)
	}
	if out, errOut, code := h.ctl("compute", "delete", "cpu-cluster"); code != 0 {
		t.Errorf("delete: %d %s %s", code, out, errOut)
	}
	waitFor(t, 60*time.Second, "the target to be removed", func() (bool, string) {
		_, err := c.GetTarget(ctx(t), "cpu-cluster")
		return api.IsNotFound(err), "still there"
	})
}
