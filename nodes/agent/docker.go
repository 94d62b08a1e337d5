package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/amld/amld/api"
	"github.com/amld/amld/gpu"
)

// Labels the docker runtime puts on every run container, so that a
// restarted agent finds its containers again and nothing else.
const (
	LabelRole      = "amld.role" // "run" for run containers, "node" for the docker provider's nodes
	LabelNode      = "amld.node" // the node ID
	LabelRun       = "amld.run"
	LabelAttempt   = "amld.attempt"
	LabelNodeIndex = "amld.node_index"
)

// DockerConfig configures the docker runtime.
type DockerConfig struct {
	// NetworkMode is the run containers' network: "host" (the default: a
	// run sees the node's addresses, as the process runtime does), or
	// "container:NAME" to share a node container's network (the docker
	// provider's nodes), or a network name.
	NetworkMode string
	// Labels are put on every run container besides amld's own (a test
	// marks what it must clean up).
	Labels map[string]string
	// PullTimeout bounds pulling an image the engine does not have
	// (default 5m).
	PullTimeout time.Duration
	// Logger receives the runtime's logs; nil discards them.
	Logger *slog.Logger
}

// DockerRuntime runs each attempt's command in a container on the Docker
// Engine the agent reaches (client.FromEnv: DOCKER_HOST, else the local
// socket). The attempt's work dir, holding its source snapshot, is
// bind-mounted at the same path and is the working dir, so outputs/ is
// written where the agent collects it; the checkpoint dir is mounted the
// same way. The engine enforces the attempt's CPUs and memory. Containers
// carry labels that name node, run, attempt and rank; they outlive the
// agent, so a restarted agent adopts them (Adopt) instead of reporting
// their attempts lost.
//
// Paths are the agent's: the engine must see the work dir at the same
// path (true for an agent on the engine's host, and for the docker
// provider's node containers, which mount it at the same path).
type DockerRuntime struct {
	cli  *client.Client
	cfg  DockerConfig
	log  *slog.Logger
	uid  int
	gid  int
	ncpu int // the engine's CPUs: a container may not be given more
}

var (
	_ Runtime = (*DockerRuntime)(nil)
	_ Adopter = (*DockerRuntime)(nil)
)

// NewDockerRuntime connects to the engine and checks that it answers
// (ctx bounds the check). With no engine the error satisfies
// client.IsErrConnectionFailed.
func NewDockerRuntime(ctx context.Context, cfg DockerConfig) (*DockerRuntime, error) {
	if cfg.NetworkMode == "" {
		cfg.NetworkMode = "host"
	}
	if cfg.PullTimeout <= 0 {
		cfg.PullTimeout = 5 * time.Minute
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker runtime: %w", err)
	}
	if _, err := cli.Ping(ctx); err != nil {
		cli.Close()
		return nil, fmt.Errorf("docker runtime: no engine answers: %w", err)
	}
	info, err := cli.Info(ctx)
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("docker runtime: engine info: %w", err)
	}
	return &DockerRuntime{cli: cli, cfg: cfg, log: log, uid: os.Geteuid(), gid: os.Getegid(), ncpu: info.NCPU}, nil
}

// Name implements Runtime.
func (d *DockerRuntime) Name() string { return "docker" }

// Close releases the engine connection; containers keep running.
func (d *DockerRuntime) Close() error { return d.cli.Close() }

// containerName is the attempt's container name on this node: one name per
// attempt share, so the engine itself refuses a second copy.
func containerName(nodeID string, k api.AttemptKey) string {
	return fmt.Sprintf("amld-%s-%s-%d-%d", nodeID, k.RunID, k.Attempt, k.NodeIndex)
}

// Start implements Runtime: it makes sure the image is there (pulling it
// if the engine can), creates the container and starts it.
func (d *DockerRuntime) Start(ctx context.Context, spec Spec) (Handle, error) {
	if len(spec.Command) == 0 || spec.Command[0] == "" {
		return nil, &StartError{Code: ExitNotFound, Reason: "the run has no command"}
	}
	if spec.Image == "" {
		return nil, &StartError{Code: ExitPrepareFailed, Reason: "the docker runtime needs an image"}
	}
	nodeID := spec.Allocation.NodeID
	if nodeID == "" {
		return nil, &StartError{Code: ExitPrepareFailed, Reason: "the assignment names no node"}
	}
	if err := d.ensureImage(ctx, spec.Image); err != nil {
		return nil, err
	}
	name := containerName(nodeID, spec.Key)
	// A container of this name can only be left by a crash between its
	// creation and the attempt's record: it never ran for anyone.
	if err := d.cli.ContainerRemove(ctx, name, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return nil, fmt.Errorf("remove a stale container %s: %w", name, err)
	}
	labels := map[string]string{}
	for k, v := range d.cfg.Labels {
		labels[k] = v
	}
	labels[LabelRole] = "run"
	labels[LabelNode] = nodeID
	labels[LabelRun] = spec.Key.RunID
	labels[LabelAttempt] = strconv.Itoa(spec.Key.Attempt)
	labels[LabelNodeIndex] = strconv.Itoa(spec.Key.NodeIndex)
	cfg := &container.Config{
		Image:      spec.Image,
		Cmd:        spec.Command,
		Env:        spec.Env,
		WorkingDir: spec.Dir,
		Labels:     labels,
	}
	if d.uid != 0 {
		// Files the command writes must stay the agent's to collect and remove.
		cfg.User = fmt.Sprintf("%d:%d", d.uid, d.gid)
	}
	hc := d.hostConfig(spec)
	created, err := d.cli.ContainerCreate(ctx, cfg, hc, nil, nil, name)
	if err != nil {
		return nil, &StartError{Code: ExitPrepareFailed, Reason: fmt.Sprintf("create the run's container from image %q", spec.Image), Err: err}
	}
	if err := d.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		_ = d.cli.ContainerRemove(rctx, created.ID, container.RemoveOptions{Force: true})
		cancel()
		return nil, containerStartError(spec.Command[0], err)
	}
	d.log.Debug("started container", "container", name, "image", spec.Image)
	return d.watch(created.ID, name), nil
}

// ensureImage makes sure the engine has ref, pulling it when it does not.
func (d *DockerRuntime) ensureImage(ctx context.Context, ref string) error {
	_, err := d.cli.ImageInspect(ctx, ref)
	if err == nil {
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return &StartError{Code: ExitPrepareFailed, Reason: fmt.Sprintf("look up image %q", ref), Err: err}
	}
	pctx, cancel := context.WithTimeout(ctx, d.cfg.PullTimeout)
	defer cancel()
	rc, err := d.cli.ImagePull(pctx, ref, image.PullOptions{})
	if err == nil {
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err == nil {
			_, err = d.cli.ImageInspect(ctx, ref)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &StartError{Code: ExitPrepareFailed, Reason: fmt.Sprintf("image %q is not on this node and could not be pulled", ref), Err: err}
	}
	return nil
}

// containerStartError classifies a failed container start the way a shell
// classifies a failed exec.
func containerStartError(name string, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return &StartError{Code: ExitNotFound, Reason: fmt.Sprintf("command %q not found in the image", name), Err: err}
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "is a directory"):
		return &StartError{Code: ExitNotExecutable, Reason: fmt.Sprintf("command %q cannot be executed", name), Err: err}
	}
	return &StartError{Code: ExitPrepareFailed, Reason: "start the run's container", Err: err}
}

// Adopt implements Adopter: it finds the container of k on nodeID, running
// or exited, and watches it again.
func (d *DockerRuntime) Adopt(ctx context.Context, nodeID string, k api.AttemptKey) (Handle, error) {
	list, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", LabelRole+"=run"),
		filters.Arg("label", LabelNode+"="+nodeID),
		filters.Arg("label", LabelRun+"="+k.RunID),
		filters.Arg("label", LabelAttempt+"="+strconv.Itoa(k.Attempt)),
		filters.Arg("label", LabelNodeIndex+"="+strconv.Itoa(k.NodeIndex)),
	)})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	for _, c := range list {
		if c.State == "created" || c.State == "removing" || c.State == "dead" {
			continue // never started, or on its way out
		}
		return d.watch(c.ID, containerName(nodeID, k)), nil
	}
	return nil, nil
}

// Sweep implements Adopter: it removes the run containers of nodeID whose
// attempts keep does not claim.
func (d *DockerRuntime) Sweep(ctx context.Context, nodeID string, keep func(api.AttemptKey) bool) error {
	list, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", LabelRole+"=run"),
		filters.Arg("label", LabelNode+"="+nodeID),
	)})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	var errs []error
	for _, c := range list {
		k, ok := keyOfLabels(c.Labels)
		if ok && keep(k) {
			continue
		}
		d.log.Info("removing a run container no attempt claims", "container", strings.TrimPrefix(firstName(c.Names), "/"))
		if err := d.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// keyOfLabels reads an attempt key off a run container's labels.
func keyOfLabels(l map[string]string) (api.AttemptKey, bool) {
	att, err1 := strconv.Atoi(l[LabelAttempt])
	idx, err2 := strconv.Atoi(l[LabelNodeIndex])
	if l[LabelRun] == "" || err1 != nil || err2 != nil {
		return api.AttemptKey{}, false
	}
	return api.AttemptKey{RunID: l[LabelRun], Attempt: att, NodeIndex: idx}, true
}

func firstName(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

// hostConfig is the engine-side settings of an attempt's container: its
// work and checkpoint dirs, the node's network, an init, the CPU and memory
// limits of its allocation, and its GPUs as an nvidia device request.
func (d *DockerRuntime) hostConfig(spec Spec) *container.HostConfig {
	binds := []string{spec.Dir + ":" + spec.Dir}
	if spec.CheckpointDir != "" {
		binds = append(binds, spec.CheckpointDir+":"+spec.CheckpointDir)
	}
	initProc := true
	res := spec.Allocation.Resources
	hc := &container.HostConfig{
		Binds:       binds,
		NetworkMode: container.NetworkMode(d.cfg.NetworkMode),
		// An init as PID 1 passes SIGTERM to the command (a command that is
		// PID 1 itself would ignore it) and reaps its children.
		Init:      &initProc,
		LogConfig: container.LogConfig{Type: "json-file"},
	}
	if cpus := res.CPUs; cpus > 0 {
		if d.ncpu > 0 && cpus > d.ncpu {
			// The engine refuses a limit above its CPUs; a node that
			// offers more than the machine has gets all of it.
			cpus = d.ncpu
		}
		hc.NanoCPUs = int64(cpus) * 1e9
	}
	if res.MemoryMB > 0 {
		hc.Memory = res.MemoryMB << 20
		hc.MemorySwap = hc.Memory // no swap beyond the limit
	}
	hc.DeviceRequests = gpu.DeviceRequests(spec.Allocation.GPUUUIDs)
	return hc
}
