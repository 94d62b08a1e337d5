package server

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/amld/amld/api"
)

const nameRule = "must be 3 to 24 characters: lower-case letters, digits and hyphens, starting with a letter"

var (
	nameRE   = regexp.MustCompile(`^[a-z][a-z0-9-]{2,23}$`)
	envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

func validName(s string) bool { return nameRE.MatchString(s) }

// Limits on run fields, documented in docs/api.md.
const (
	maxPriority         = 1000
	maxRetries          = 100
	maxPreemptions      = 1000
	maxProcessesPerNode = 1024
	maxCommandArgs      = 4096
	maxCommandBytes     = 256 << 10
	maxEnvVars          = 512
	maxIdleSeconds      = 7 * 24 * 3600
	maxRunSeconds       = 30 * 24 * 3600
)

// validateTargetSpec checks a create request and fills in defaults. It
// returns a copy; providers lists the provider names this head has.
func validateTargetSpec(in api.TargetSpec, sizes *Sizes, providers []string, defaultProvider string) (api.TargetSpec, error) {
	s := in
	if s.Name == "" {
		return s, api.Invalid("name", "is required")
	}
	if !validName(s.Name) {
		return s, api.Invalid("name", "%q %s", s.Name, nameRule)
	}
	if s.Type == "" {
		s.Type = api.KindCluster
	}
	if s.Type == api.KindInstance {
		return validateInstanceSpec(s, sizes, providers, defaultProvider)
	}
	if s.Type != api.KindCluster {
		return s, api.Invalid("type", "%q is not a kind that can be created here; allowed: cluster, instance (remote machines are attached: amlctl compute attach remote)", s.Type)
	}
	if s.IdleSecondsBeforeShutdown != nil {
		return s, api.Invalid("idle_seconds_before_shutdown", "applies to instances; clusters scale down after idle_seconds_before_scaledown")
	}
	if s.VMSize == "" {
		return s, api.Invalid("vm_size", "is required; sizes: %s", sizes.NamesList())
	}
	if _, ok := sizes.Get(s.VMSize); !ok {
		return s, api.Invalid("vm_size", "unknown size %q; sizes: %s", s.VMSize, sizes.NamesList())
	}
	if s.MaxNodes == 0 {
		return s, api.Invalid("max_nodes", "is required: at least 1")
	}
	if err := checkScale(s.MinNodes, s.MaxNodes); err != nil {
		return s, err
	}
	if s.IdleSecondsBeforeScaledown == nil {
		v := api.DefaultIdleSecondsBeforeScaledown
		s.IdleSecondsBeforeScaledown = &v
	} else if v := *s.IdleSecondsBeforeScaledown; v < 0 || v > maxIdleSeconds {
		return s, api.Invalid("idle_seconds_before_scaledown", "must be 0..%d, got %d", maxIdleSeconds, v)
	}
	if err := checkPlacementSpec(&s, providers, defaultProvider); err != nil {
		return s, err
	}
	return s, nil
}

// checkPlacementSpec checks and defaults what clusters and instances share:
// vm_priority, provider (and its exec commands), ssh public access,
// preemption and its grace, and the description.
func checkPlacementSpec(s *api.TargetSpec, providers []string, defaultProvider string) error {
	switch s.VMPriority {
	case "":
		s.VMPriority = api.VMPriorityDedicated
	case api.VMPriorityDedicated, api.VMPriorityLowPriority:
	default:
		return api.Invalid("vm_priority", "%q is not allowed; allowed: dedicated, lowpriority", s.VMPriority)
	}
	if s.Provider == "" {
		s.Provider = defaultProvider
	}
	if !contains(providers, s.Provider) {
		return api.Invalid("provider", "%q is not configured on this head; available: %s", s.Provider, strings.Join(providers, ", "))
	}
	if err := checkExecCommands(s); err != nil {
		return err
	}
	if err := checkPublicAccess(*s); err != nil {
		return err
	}
	switch s.Preemption {
	case "":
		s.Preemption = api.PreemptionNone
	case api.PreemptionNone, api.PreemptionRequeue:
	default:
		return api.Invalid("preemption", "%q is not allowed; allowed: none, requeue", s.Preemption)
	}
	if g := s.PreemptionGraceSeconds; g != nil && (*g < 0 || *g > api.MaxPreemptionGraceSeconds) {
		return api.Invalid("preemption_grace_seconds", "must be 0..%d, got %d", api.MaxPreemptionGraceSeconds, *g)
	}
	if len(s.Description) > 1024 {
		return api.Invalid("description", "is longer than 1024 characters")
	}
	return nil
}

func checkScale(minNodes, maxNodes int) error {
	if maxNodes < 1 || maxNodes > 10000 {
		return api.Invalid("max_nodes", "must be 1..10000, got %d", maxNodes)
	}
	if minNodes < 0 {
		return api.Invalid("min_nodes", "must be at least 0, got %d", minNodes)
	}
	if minNodes > maxNodes {
		return api.Invalid("min_nodes", "must not exceed max_nodes (%d), got %d", maxNodes, minNodes)
	}
	return nil
}

// validateTargetUpdate checks an update against the target it changes.
func validateTargetUpdate(t *api.Target, u api.TargetUpdate) error {
	if u == (api.TargetUpdate{}) {
		return api.Invalid("", "nothing to update: give min_nodes, max_nodes, idle_seconds_before_scaledown, preemption, preemption_grace_seconds or description")
	}
	if (t.Type == api.KindInstance || t.Type == api.KindRemote) && (u.MinNodes != nil || u.MaxNodes != nil || u.IdleSecondsBeforeScaledown != nil) {
		return api.Invalid("max_nodes", "%s is a %s, which has exactly one node and does not scale", t.Name, t.Type)
	}
	minN, maxN := t.MinNodes, t.MaxNodes
	if u.MinNodes != nil {
		minN = *u.MinNodes
	}
	if u.MaxNodes != nil {
		maxN = *u.MaxNodes
	}
	if err := checkScale(minN, maxN); err != nil {
		return err
	}
	if u.IdleSecondsBeforeScaledown != nil {
		if v := *u.IdleSecondsBeforeScaledown; v < 0 || v > maxIdleSeconds {
			return api.Invalid("idle_seconds_before_scaledown", "must be 0..%d, got %d", maxIdleSeconds, v)
		}
	}
	if u.Preemption != nil && *u.Preemption != api.PreemptionNone && *u.Preemption != api.PreemptionRequeue {
		return api.Invalid("preemption", "%q is not allowed; allowed: none, requeue", *u.Preemption)
	}
	if u.Description != nil && len(*u.Description) > 1024 {
		return api.Invalid("description", "is longer than 1024 characters")
	}
	if g := u.PreemptionGraceSeconds; g != nil && (*g < 0 || *g > api.MaxPreemptionGraceSeconds) {
		return api.Invalid("preemption_grace_seconds", "must be 0..%d, got %d", api.MaxPreemptionGraceSeconds, *g)
	}
	if t.ProvisioningState == api.ProvisioningDeleting {
		return api.FailedPrecondition("target %s is being deleted", t.Name)
	}
	return nil
}

// validateRunSpec checks a submit against its target and size and returns
// the resolved per-node request. It refuses a gang that can never fit.
func validateRunSpec(s *api.RunSpec, t *api.Target, size api.VMSize) (api.Resources, error) {
	if len(s.Command) == 0 {
		return api.Resources{}, api.Invalid("command", "is required: the program and its arguments")
	}
	if len(s.Command) > maxCommandArgs {
		return api.Resources{}, api.Invalid("command", "has %d arguments; at most %d", len(s.Command), maxCommandArgs)
	}
	total := 0
	for i, a := range s.Command {
		if strings.IndexByte(a, 0) >= 0 {
			return api.Resources{}, api.Invalid(fmt.Sprintf("command[%d]", i), "contains a NUL byte")
		}
		total += len(a)
	}
	if s.Command[0] == "" {
		return api.Resources{}, api.Invalid("command[0]", "is empty")
	}
	if total > maxCommandBytes {
		return api.Resources{}, api.Invalid("command", "is %d bytes; at most %d", total, maxCommandBytes)
	}
	if len(s.Env) > maxEnvVars {
		return api.Resources{}, api.Invalid("env", "has %d variables; at most %d", len(s.Env), maxEnvVars)
	}
	for k, v := range s.Env {
		if !envKeyRE.MatchString(k) {
			return api.Resources{}, api.Invalid("env", "%q is not a valid variable name (letters, digits, _; not starting with a digit)", k)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return api.Resources{}, api.Invalid("env."+k, "contains a NUL byte")
		}
	}
	if err := checkImageRef(s.Environment.Image); err != nil {
		return api.Resources{}, err
	}
	if s.NodeCount == 0 {
		s.NodeCount = api.DefaultNodeCount
	}
	if s.NodeCount < 0 {
		return api.Resources{}, api.Invalid("node_count", "must be at least 1, got %d", s.NodeCount)
	}
	if s.NodeCount > t.MaxNodes {
		return api.Resources{}, api.Invalid("node_count", "%d nodes can never fit: target %s has max_nodes=%d", s.NodeCount, t.Name, t.MaxNodes)
	}
	if s.ProcessCountPerNode == 0 {
		s.ProcessCountPerNode = api.DefaultProcessCountPerNode
	}
	if s.ProcessCountPerNode < 1 || s.ProcessCountPerNode > maxProcessesPerNode {
		return api.Resources{}, api.Invalid("process_count_per_node", "must be 1..%d, got %d", maxProcessesPerNode, s.ProcessCountPerNode)
	}
	switch s.Distribution {
	case "":
		if s.NodeCount > 1 || s.ProcessCountPerNode > 1 {
			s.Distribution = api.DistributionMPI
		}
	case api.DistributionMPI, api.DistributionNone:
	default:
		return api.Resources{}, api.Invalid("distribution", "%q is not allowed; allowed: mpi, none", s.Distribution)
	}
	if s.Priority < -maxPriority || s.Priority > maxPriority {
		return api.Resources{}, api.Invalid("priority", "must be %d..%d, got %d", -maxPriority, maxPriority, s.Priority)
	}
	if s.MaxRetries < 0 || s.MaxRetries > maxRetries {
		return api.Resources{}, api.Invalid("max_retries", "must be 0..%d, got %d", maxRetries, s.MaxRetries)
	}
	if s.MaxPreemptions != nil && (*s.MaxPreemptions < 0 || *s.MaxPreemptions > maxPreemptions) {
		return api.Resources{}, api.Invalid("max_preemptions", "must be 0..%d, got %d", maxPreemptions, *s.MaxPreemptions)
	}
	if s.MaxRunDurationSeconds < 0 || s.MaxRunDurationSeconds > maxRunSeconds {
		return api.Resources{}, api.Invalid("max_run_duration_seconds", "must be 0..%d, got %d", maxRunSeconds, s.MaxRunDurationSeconds)
	}
	if len(s.DisplayName) > 256 {
		return api.Resources{}, api.Invalid("display_name", "is longer than 256 characters")
	}
	whole := size.Resources()
	if s.Resources == nil {
		return whole, nil
	}
	req := *s.Resources
	if req.CPUs < 0 || req.MemoryMB < 0 || req.GPUs < 0 {
		return api.Resources{}, api.Invalid("resources", "must not be negative")
	}
	if req.CPUs == 0 {
		req.CPUs = 1
	}
	if req.MemoryMB == 0 {
		req.MemoryMB = min(1024, whole.MemoryMB)
	}
	switch {
	case req.CPUs > whole.CPUs:
		return api.Resources{}, api.Invalid("resources.cpus", "%d can never fit: vm_size %s has %d cpus", req.CPUs, size.Name, whole.CPUs)
	case req.MemoryMB > whole.MemoryMB:
		return api.Resources{}, api.Invalid("resources.memory_mb", "%d can never fit: vm_size %s has %d MiB", req.MemoryMB, size.Name, whole.MemoryMB)
	case req.GPUs > whole.GPUs:
		return api.Resources{}, api.Invalid("resources.gpus", "%d can never fit: vm_size %s has %d GPUs", req.GPUs, size.Name, whole.GPUs)
	}
	return req, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
