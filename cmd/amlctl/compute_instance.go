package main

import (
	"fmt"

	"github.com/amld/amld/api"
)

// validateInstanceSpec checks an instance's spec before asking the head.
func validateInstanceSpec(s *api.TargetSpec) error {
	switch {
	case s.Name == "":
		return usagef("--name (name) is required")
	case s.VMSize == "":
		return usagef("--vm-size (vm_size) is required")
	case s.MaxNodes > 1 || s.MinNodes > 1:
		return usagef("an instance has exactly one node: leave --min-nodes and --max-nodes out")
	case s.IdleSecondsBeforeShutdown != nil && *s.IdleSecondsBeforeShutdown < 0:
		return usagef("--idle-seconds-before-shutdown must be 0 (never) or more, not %d", *s.IdleSecondsBeforeShutdown)
	}
	return oneOf("--vm-priority (vm_priority)", s.VMPriority, api.VMPriorityDedicated, api.VMPriorityLowPriority)
}

// printFixedTarget adds what `compute show` says of instances, remote
// targets and exec clusters.
func printFixedTarget(kv func(string, any), t *api.Target) {
	if t.State != "" {
		kv("state", t.State)
	}
	if t.Stopped {
		kv("stop_reason", orDash(t.StopReason))
	}
	if t.Host != "" {
		kv("host", t.Host)
	}
	if t.Size != nil {
		kv("size", fmt.Sprintf("%d cpu, %.1f GiB, %d gpu (the machine's own)", t.Size.CPUs, t.Size.MemoryGB, t.Size.GPUs))
	}
	if v := t.IdleSecondsBeforeShutdown; v != nil && *v > 0 {
		kv("idle_seconds_before_shutdown", *v)
	}
	if t.CreateCommand != "" {
		kv("create_command", t.CreateCommand)
		kv("delete_command", t.DeleteCommand)
		kv("list_command", orDash(t.ListCommand))
	}
}
