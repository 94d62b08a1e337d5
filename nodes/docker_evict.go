package nodes

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
)

var _ Evicter = (*Docker)(nil)

// Evict implements Evicter: the node container and its run containers are
// killed and removed at once (no stop timeout), as a cloud takes a spot VM
// at the end of its notice.
func (d *Docker) Evict(ctx context.Context, nodeID string) error {
	if !safeNodeID(nodeID) {
		return fmt.Errorf("docker provider: node ID %q is not a safe name", nodeID)
	}
	name := nodeContainerName(nodeID)
	if err := d.cli.ContainerRemove(ctx, name, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("docker provider: evict node container %s: %w", name, err)
	}
	if err := d.removeRuns(ctx, nodeID); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(d.cfg.DataDir, nodeID)); err != nil {
		return fmt.Errorf("docker provider: remove node dir: %w", err)
	}
	d.log.Info("evicted node: container removed", "node", nodeID)
	return nil
}
