package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/amld/amld/api"
)

// publicKey sets the spec's ssh_public_access and reads its public key from
// --ssh-public-key-file, or the first of the usual ~/.ssh/id_*.pub.
func (f *targetFlags) publicKey(fs *pflag.FlagSet, spec *api.TargetSpec) error {
	if fs.Changed("ssh-public-access") {
		spec.SSHPublicAccess = f.sshPublicAccess
	}
	if !spec.SSHPublicAccess || spec.SSHPublicKey != "" {
		if fs.Changed("ssh-public-key-file") && !spec.SSHPublicAccess {
			return usagef("--ssh-public-key-file needs --ssh-public-access")
		}
		return nil
	}
	path := f.sshPublicKeyFile
	if path == "" {
		home, _ := os.UserHomeDir()
		for _, n := range []string{"id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"} {
			if p := filepath.Join(home, ".ssh", n); fileExists(p) {
				path = p
				break
			}
		}
		if path == "" {
			return usagef("--ssh-public-access: no ~/.ssh/id_*.pub found; give --ssh-public-key-file")
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return usagef("--ssh-public-key-file: %v", err)
	}
	if strings.Contains(string(b), "PRIVATE KEY") {
		return usagef("--ssh-public-key-file: %s holds a private key; give its .pub", path)
	}
	spec.SSHPublicKey = strings.TrimSpace(string(b))
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

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
	if t.SSHPublicAccess {
		kv("ssh_public_access", "while it runs, log in to its machine (amlctl compute list-hosts: "+orDash(t.Host)+") with your key")
	}
	if t.CreateCommand != "" {
		kv("create_command", t.CreateCommand)
		kv("delete_command", t.DeleteCommand)
		kv("list_command", orDash(t.ListCommand))
	}
}
