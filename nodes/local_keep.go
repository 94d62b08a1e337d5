package nodes

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

var _ Purger = (*Local)(nil)

// workDirs returns the agent's work dir and AML_DATA_DIR for spec: under
// DataDir/<node>/ (removed with the node), or under DataDir/keep/<name>/
// for an instance, kept across stop and start until Purge.
func (l *Local) workDirs(spec NodeSpec) (work, data string, err error) {
	if spec.KeepName == "" {
		dir := filepath.Join(l.cfg.DataDir, spec.NodeID)
		return filepath.Join(dir, "work"), filepath.Join(dir, "data"), nil
	}
	if !safeNodeID(spec.KeepName) {
		return "", "", fmt.Errorf("local provider: keep name %q is not a safe file name", spec.KeepName)
	}
	keep := filepath.Join(l.cfg.DataDir, "keep", spec.KeepName)
	return filepath.Join(keep, "work"), filepath.Join(keep, "data"), nil
}

// Purge implements Purger: it removes an instance's kept work dir.
func (l *Local) Purge(_ context.Context, keepName, _ string) error {
	if !safeNodeID(keepName) {
		return fmt.Errorf("local provider: keep name %q is not a safe file name", keepName)
	}
	if err := os.RemoveAll(filepath.Join(l.cfg.DataDir, "keep", keepName)); err != nil {
		return fmt.Errorf("local provider: %w", err)
	}
	return nil
}
