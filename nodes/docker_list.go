package nodes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
)

// How long a stopped node container may stay before List clears it away,
// and before the run containers of its node are removed: a node container
// being restarted (`docker restart`) is stopped for a moment only.
const (
	deadNodeGrace = time.Minute
	deadRunsGrace = 5 * time.Second
)

// List implements Provider: the running node containers this provider
// made. It also restores the forwarders of the nodes (after a restart of
// the head), removes run containers whose node container is gone or long
// stopped (so that a lost node's run never runs beside its requeued
// attempt), clears away node containers stopped for long, and removes the
// networks of clusters that have no node container left.
func (d *Docker) List(ctx context.Context) ([]Instance, error) {
	all, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", labelHead+"="+d.instance),
	)})
	if err != nil {
		return nil, fmt.Errorf("docker provider: list containers: %w", err)
	}
	var out []Instance
	nodeState := map[string]string{} // node ID → node container state
	nodeCtr := map[string]string{}   // node ID → container ID
	targets := map[string]bool{}     // clusters with a node container
	for _, c := range all {
		if c.Labels[labelRole] != "node" {
			continue
		}
		id := c.Labels[labelNode]
		nodeState[id], nodeCtr[id] = c.State, c.ID
		targets[c.Labels[labelTarget]] = true
		if c.State != "running" {
			continue
		}
		out = append(out, Instance{NodeID: id, ProviderID: c.ID, Target: c.Labels[labelTarget]})
		if fw := c.Labels[labelForward]; fw != "" {
			if listen, dst, ok := strings.Cut(fw, ">"); ok {
				if err := d.ensureForward(listen, dst); err != nil {
					d.log.Warn("could not restore a forwarder to the head", "listen", listen, "err", err)
				}
			}
		}
	}
	var errs []error
	stoppedFor := map[string]time.Duration{}
	stopped := func(nodeID string) time.Duration {
		if v, ok := stoppedFor[nodeID]; ok {
			return v
		}
		v := time.Duration(1<<63 - 1) // no container at all
		if cid, ok := nodeCtr[nodeID]; ok {
			v = d.stoppedFor(ctx, cid)
		}
		stoppedFor[nodeID] = v
		return v
	}
	for _, c := range all {
		if c.Labels[labelRole] != "run" {
			continue
		}
		nodeID := c.Labels[labelNode]
		if nodeState[nodeID] == "running" || stopped(nodeID) < deadRunsGrace {
			continue
		}
		d.log.Warn("removing a run container whose node is gone", "node", nodeID, "run", c.Labels["amld.run"])
		if err := d.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	for nodeID, st := range nodeState {
		if st == "running" || stopped(nodeID) < deadNodeGrace {
			continue
		}
		d.log.Info("clearing away a node container stopped for long", "node", nodeID)
		if err := d.Delete(ctx, nodeID, nodeCtr[nodeID]); err != nil {
			errs = append(errs, err)
		}
	}
	if err := d.removeNetworks(ctx, targets); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		d.log.Warn("docker provider: clean-up during list", "err", err)
	}
	return out, nil
}

// stoppedFor says how long container id has not been running (0 while it
// runs or restarts, or when that cannot be told).
func (d *Docker) stoppedFor(ctx context.Context, id string) time.Duration {
	ins, err := d.cli.ContainerInspect(ctx, id)
	if cerrdefs.IsNotFound(err) {
		return time.Duration(1<<63 - 1)
	}
	if err != nil || ins.State == nil || ins.State.Running || ins.State.Restarting {
		return 0
	}
	fin, err := time.Parse(time.RFC3339Nano, ins.State.FinishedAt)
	if err != nil || fin.IsZero() || fin.Year() < 2000 {
		// Never started: count from its creation.
		if fin, err = time.Parse(time.RFC3339Nano, ins.Created); err != nil {
			return 0
		}
	}
	return time.Since(fin)
}

// removeNetworks removes this provider's networks of clusters not in keep
// (nil: all) that have no create in flight, and the forwarders on their
// gateways.
func (d *Docker) removeNetworks(ctx context.Context, keep map[string]bool) error {
	nets, err := d.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", labelHead+"="+d.instance),
		filters.Arg("label", labelRole+"=network"),
	)})
	if err != nil {
		return fmt.Errorf("docker provider: list networks: %w", err)
	}
	sort.Slice(nets, func(i, j int) bool { return nets[i].Name < nets[j].Name })
	var errs []error
	for _, n := range nets {
		target := n.Labels[labelTarget]
		if keep != nil && keep[target] {
			continue
		}
		if err := d.removeNetwork(ctx, n, target, keep != nil); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeNetwork removes network n of target unless a create for target is
// in flight (when idle is set); the lock keeps new creates out meanwhile.
func (d *Docker) removeNetwork(ctx context.Context, n network.Summary, target string, idle bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if idle && d.creating[target] > 0 {
		return nil
	}
	err := d.cli.NetworkRemove(ctx, n.ID)
	if err != nil && !cerrdefs.IsNotFound(err) {
		if idle {
			return nil // in use after all: a container not seen by the list
		}
		return fmt.Errorf("docker provider: remove network %s: %w", n.Name, err)
	}
	d.log.Info("removed the cluster's network", "network", n.Name)
	if d.nets[target].id == n.ID {
		delete(d.nets, target)
	}
	for _, c := range n.IPAM.Config {
		for listen, f := range d.fwd {
			if host, _, err := net.SplitHostPort(listen); err == nil && host == c.Gateway {
				if f != nil {
					f.close()
				}
				delete(d.fwd, listen)
			}
		}
	}
	return nil
}
