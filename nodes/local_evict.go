package nodes

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

var _ Evicter = (*Local)(nil)

// Evict implements Evicter: SIGKILL to the agent's process group at once
// (the commands it runs get SIGKILL with it: they die with their parent),
// then DataDir/<nodeID> is removed.
func (l *Local) Evict(ctx context.Context, nodeID string) error {
	if !safeNodeID(nodeID) {
		return fmt.Errorf("local provider: node ID %q is not a safe file name", nodeID)
	}
	if pid := l.pidOf(nodeID, ""); pid > 0 && isAgent(pid, nodeID) {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		if !waitGone(ctx, nodeID, pid, 5*time.Second) {
			return fmt.Errorf("local provider: agent %d of node %s outlived SIGKILL", pid, nodeID)
		}
		l.log.Info("evicted node: agent killed", "node", nodeID, "pid", pid)
	}
	if err := os.RemoveAll(filepath.Join(l.cfg.DataDir, nodeID)); err != nil {
		return fmt.Errorf("local provider: remove node dir: %w", err)
	}
	return nil
}
