package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"

	"github.com/amld/amld/api"
)

// attachFlags are the flags of `compute attach remote|host`.
type attachFlags struct {
	name, address, username               string
	keyFile, passphraseFile, passwordFile string
	fingerprint, vmSize, description      string
	port                                  int
	acceptHostKey, noWait                 bool
	timeout                               time.Duration
}

// computeAttachCmd is `amlctl compute attach remote|host`.
func (a *app) computeAttachCmd() *cobra.Command {
	c := group("attach", "Attach an existing machine over SSH")
	c.AddCommand(a.attachKindCmd(api.HostRemote), a.attachKindCmd(api.HostPool))
	return c
}

func (a *app) attachKindCmd(kind string) *cobra.Command {
	var f attachFlags
	use, short, long := "remote", "Attach a machine as a remote target of its own",
		`Attach an existing machine over SSH as a remote target: a target with one
node, that machine, shared by every user.`
	if kind == api.HostPool {
		use, short, long = "host", "Add a machine to the ssh provider's pool (admins)",
			`Add an existing machine to the ssh provider's pool: clusters and instances
created with --provider ssh take their nodes from the pool's free machines.`
	}
	cmd := &cobra.Command{
		Use:   use + " --name NAME --address HOST --username USER (--private-key-file F | --password-file F)",
		Short: short,
		Long: long + `

The head connects with golang.org/x/crypto/ssh and checks the machine's host
key before it sends any secret: give the fingerprint you expect
(--host-key-fingerprint SHA256:..., as 'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub'
prints it on the machine); without it amlctl shows the fingerprint and asks
(on a terminal) or refuses, unless --accept-host-key trusts it as offered.
It then checks the OS, CPUs, memory, Docker and GPUs (nvidia-smi) and reports
each finding, copies the head's amld binary to ~/.amld on the machine and
starts the agent there (a systemd unit where systemd runs and the user may
install one, else a supervised background process), which joins like any node.

Secrets are read from files (or asked for on the terminal), never from flag
values; the head stores them encrypted and never shows them. A machine is
attached once: attaching it again under another name is refused with the name
it has. 'amlctl compute detach NAME' stops and removes the agent and leaves
the machine as it was.`,
		Example: `  amlctl compute attach remote --name dsvm --address 10.0.0.5 --username azureuser \
      --private-key-file ~/.ssh/id_ed25519 --host-key-fingerprint SHA256:abc...
  amlctl compute attach remote --name lab --address lab.example.com --username ml \
      --password-file ~/.secrets/lab --accept-host-key`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := f.request(kind)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := a.confirmHostKey(cmd.Context(), c, &req); err != nil {
				return err
			}
			res, err := c.Attach(cmd.Context(), req)
			if err != nil {
				return fmt.Errorf("attach %s: %w", req.Name, err)
			}
			return a.reportAttach(cmd.Context(), c, req, res, f)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.name, "name", "", "name of the target (remote) or host (pool)")
	fs.StringVar(&f.address, "address", "", "the machine's host name or IP address, as the head reaches it")
	fs.IntVar(&f.port, "ssh-port", 22, "SSH port")
	fs.StringVar(&f.username, "username", "", "user to log in as (the agent runs as this user)")
	fs.StringVar(&f.keyFile, "private-key-file", "", "file holding the SSH private key")
	fs.StringVar(&f.passphraseFile, "private-key-passphrase-file", "", "file holding the private key's passphrase (asked for on a terminal when needed)")
	fs.StringVar(&f.passwordFile, "password-file", "", "file holding the user's password (instead of a key)")
	fs.StringVar(&f.fingerprint, "host-key-fingerprint", "", "expected SHA256 fingerprint of the machine's host key")
	fs.BoolVar(&f.acceptHostKey, "accept-host-key", false, "trust the host key the machine offers (check the fingerprint it prints)")
	if kind == api.HostRemote {
		fs.StringVar(&f.vmSize, "vm-size", "", "offer this catalogue size instead of the whole machine")
	}
	fs.StringVar(&f.description, "description", "", "free text")
	fs.BoolVar(&f.noWait, "no-wait", false, "do not wait for the agent to join")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Minute, "how long to wait for the agent to join")
	return cmd
}

// request builds the attach request, reading the secrets from their files
// (or the terminal).
func (f *attachFlags) request(kind string) (api.AttachRequest, error) {
	req := api.AttachRequest{Name: f.name, Kind: kind, Address: f.address, SSHPort: f.port, Username: f.username,
		HostKeyFingerprint: f.fingerprint, AcceptHostKey: f.acceptHostKey, VMSize: f.vmSize, Description: f.description}
	switch {
	case f.name == "":
		return req, usagef("--name is required")
	case f.address == "":
		return req, usagef("--address is required")
	case f.username == "":
		return req, usagef("--username is required")
	case f.port < 1 || f.port > 65535:
		return req, usagef("--ssh-port must be 1..65535, not %d", f.port)
	case f.keyFile != "" && f.passwordFile != "":
		return req, usagef("give --private-key-file or --password-file, not both")
	case f.passphraseFile != "" && f.keyFile == "":
		return req, usagef("--private-key-passphrase-file needs --private-key-file")
	case f.fingerprint != "" && f.acceptHostKey:
		return req, usagef("give --host-key-fingerprint or --accept-host-key, not both")
	}
	var err error
	switch {
	case f.keyFile != "":
		if req.PrivateKey, err = readSecretFile("--private-key-file", f.keyFile, true); err != nil {
			return req, err
		}
		if req.PrivateKeyPassphrase, err = f.passphrase(req.PrivateKey); err != nil {
			return req, err
		}
	case f.passwordFile != "":
		if req.Password, err = readSecretFile("--password-file", f.passwordFile, false); err != nil {
			return req, err
		}
	default:
		pw, err := askSecret(fmt.Sprintf("Password of %s@%s: ", f.username, f.address))
		if errors.Is(err, errNoTerminal) {
			return req, usagef("give --private-key-file or --password-file (secrets are never taken from flag values)")
		}
		if err != nil {
			return req, err
		}
		req.Password = pw
	}
	return req, nil
}

// passphrase returns the passphrase of an encrypted key (from its file, or
// asked for), checking that it opens the key; "" for a key without one.
func (f *attachFlags) passphrase(key string) (string, error) {
	_, err := ssh.ParseRawPrivateKey([]byte(key))
	var missing *ssh.PassphraseMissingError
	if err == nil {
		if f.passphraseFile != "" {
			return "", usagef("--private-key-passphrase-file: the key in %s has no passphrase", f.keyFile)
		}
		return "", nil
	}
	if !errors.As(err, &missing) {
		return "", usagef("--private-key-file: %s does not hold an SSH private key: %v", f.keyFile, err)
	}
	var pp string
	if f.passphraseFile != "" {
		if pp, err = readSecretFile("--private-key-passphrase-file", f.passphraseFile, false); err != nil {
			return "", err
		}
	} else {
		pp, err = askSecret("Passphrase of " + f.keyFile + ": ")
		if errors.Is(err, errNoTerminal) {
			return "", usagef("the key in %s is encrypted: give --private-key-passphrase-file", f.keyFile)
		}
		if err != nil {
			return "", err
		}
	}
	if _, err := ssh.ParseRawPrivateKeyWithPassphrase([]byte(key), []byte(pp)); err != nil {
		return "", usagef("the passphrase does not open the key in %s", f.keyFile)
	}
	return pp, nil
}

// confirmHostKey makes sure the request pins a host key: without a
// fingerprint or --accept-host-key it shows the machine's fingerprint and
// asks on a terminal, or refuses.
func (a *app) confirmHostKey(ctx context.Context, c *api.Client, req *api.AttachRequest) error {
	if req.HostKeyFingerprint != "" || req.AcceptHostKey {
		return nil
	}
	k, err := c.HostKey(ctx, req.Address, req.SSHPort)
	if err != nil {
		return fmt.Errorf("attach %s: %w", req.Name, err)
	}
	fmt.Fprintf(a.stderr, "The host key of %s is %s (%s).\n", k.Address, k.Fingerprint, k.Type)
	ok, err := askConfirm("Is this the machine's key (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on it)? Attach it? [y/N] ")
	if errors.Is(err, errNoTerminal) {
		return fmt.Errorf("refusing to attach %s without a confirmed host key: check the fingerprint on the machine and run again with --host-key-fingerprint %s (or --accept-host-key)", req.Name, k.Fingerprint)
	}
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("not attached: the host key was not confirmed")
	}
	req.HostKeyFingerprint = k.Fingerprint
	return nil
}

// reportAttach prints what the head found and, for a remote target, waits
// for its agent to join.
func (a *app) reportAttach(ctx context.Context, c *api.Client, req api.AttachRequest, res *api.AttachResult, f attachFlags) error {
	h := res.Host
	if a.jsonOut() && f.noWait {
		return a.printJSON(res)
	}
	out := a.stdout
	if a.jsonOut() {
		out = a.stderr
	}
	how := "as given"
	if req.AcceptHostKey {
		how = "accepted as offered"
	}
	fmt.Fprintf(out, "Host key of %s:%d: %s, %s.\n", h.Address, h.SSHPort, h.HostKeyFingerprint, how)
	fmt.Fprintf(out, "Checks of %s@%s:\n", h.Username, h.Address)
	printFindings(out, res.Findings)
	if h.Kind == api.HostPool {
		fmt.Fprintf(out, "Added %s to the ssh pool (auth %s). Clusters and instances with --provider ssh may use it.\n", h.Name, h.Auth)
		if a.jsonOut() {
			return a.printJSON(res)
		}
		return nil
	}
	t := res.Target
	size := t.VMSize
	if t.Size != nil {
		size = fmt.Sprintf("%s: %d cpu, %.1f GiB", t.Size.Name, t.Size.CPUs, t.Size.MemoryGB)
	}
	fmt.Fprintf(out, "Attached %s (remote target, %s; auth %s).\n", h.Name, size, h.Auth)
	if f.noWait {
		fmt.Fprintf(out, "Its agent is starting; amlctl compute show %s tells when it runs.\n", h.Name)
		return nil
	}
	fmt.Fprintf(out, "Waiting for its agent to join...\n")
	n, err := waitForNode(ctx, c, h.Name, f.timeout)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Node %s is %s: %s is ready (amlctl job submit --target %s -- COMMAND).\n", n.ID, n.State, h.Name, h.Name)
	if a.jsonOut() {
		st, err := c.GetTarget(ctx, h.Name)
		if err == nil {
			res.Target = st
		}
		return a.printJSON(res)
	}
	return nil
}

// printFindings writes the checks of a machine as a table.
func printFindings(out io.Writer, fs []api.Finding) {
	w := newTable(out)
	for _, f := range fs {
		row(w, "  "+f.Status, f.Check, f.Detail)
	}
	_ = w.Flush()
}

// waitForNode waits until target has a ready node, or timeout.
func waitForNode(ctx context.Context, c *api.Client, target string, timeout time.Duration) (*api.NodeView, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		ns, err := c.ListNodes(ctx, target)
		if err == nil {
			for _, n := range ns {
				if n.State == api.NodeIdle || n.State == api.NodeRunning {
					return n, nil
				}
				if n.Reason != "" {
					last = fmt.Sprintf("node %s is %s: %s", n.ID, n.State, n.Reason)
				}
			}
		}
		if t, terr := c.GetTarget(ctx, target); terr == nil && len(t.ProvisioningErrors) > 0 {
			e := t.ProvisioningErrors[len(t.ProvisioningErrors)-1]
			last = e.Code + ": " + e.Message
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				msg := fmt.Sprintf("the agent of %s has not joined after %s", target, timeout)
				if last != "" {
					msg += "; last: " + last
				}
				return nil, errors.New(msg + " (amlctl compute show " + target + ")")
			}
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// computeDetachCmd is `amlctl compute detach NAME`.
func (a *app) computeDetachCmd() *cobra.Command {
	var force, noWait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "detach NAME",
		Short: "Detach an attached machine: stop and remove its agent, leaving the machine as it was",
		Long: `Detach a machine attached with 'compute attach remote' or 'compute attach host'.
Its remote target is deleted (runs on it are canceled), the agent is stopped
(its systemd unit or process removed), ~/.amld is removed from the machine, and
the record with its secrets goes. --force drops the record without touching a
machine that is gone for good.`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			name := args[0]
			h, err := c.Detach(cmd.Context(), name, force)
			if err != nil {
				return fmt.Errorf("detach %s: %w", name, err)
			}
			if noWait {
				if a.jsonOut() {
					return a.printJSON(h)
				}
				fmt.Fprintf(a.stdout, "Detaching %s: its agent is being stopped and removed.\n", name)
				return nil
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			for {
				_, err := c.GetHost(ctx, name)
				if api.IsNotFound(err) {
					break
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("%s is still detaching after %s: see the head's log (or detach --force a machine that is gone)", name, timeout)
				case <-time.After(500 * time.Millisecond):
				}
			}
			if a.jsonOut() {
				return a.printJSON(map[string]any{"name": name, "detached": true})
			}
			if force {
				fmt.Fprintf(a.stdout, "Detached %s without touching the machine (--force).\n", name)
			} else {
				fmt.Fprintf(a.stdout, "Detached %s: its agent is stopped and ~/.amld removed; the machine is as it was.\n", name)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "drop the record without touching the machine (it is gone for good)")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "do not wait for the detachment to finish")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait")
	return cmd
}

// computeListHostsCmd is `amlctl compute list-hosts`.
func (a *app) computeListHostsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list-hosts",
		Short: "List the attached machines (remote targets and the ssh pool)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			hs, err := c.ListHosts(cmd.Context())
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(orEmpty(hs))
			}
			w := newTable(a.stdout)
			row(w, "NAME", "KIND", "ADDRESS", "USER", "AUTH", "AGENT", "STATE", "NODE", "HELD BY", "HOST KEY")
			for _, h := range hs {
				row(w, h.Name, h.Kind, fmt.Sprintf("%s:%d", h.Address, h.SSHPort), h.Username, h.Auth, h.AgentMode,
					h.State, orDash(h.Node), orDash(h.HeldBy), h.HostKeyFingerprint)
			}
			return w.Flush()
		},
	}
}

// computePowerCmd is `amlctl compute start|stop|restart NAME`.
func (a *app) computePowerCmd(action string) *cobra.Command {
	short := map[string]string{
		api.PowerStart:   "Start a stopped instance or remote target",
		api.PowerStop:    "Stop an instance or remote target: its node goes, its data dir stays",
		api.PowerRestart: "Restart an instance or remote target: a new node replaces the old one",
	}[action]
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   action + " NAME",
		Short: short,
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			before := map[string]bool{}
			if ns, err := c.ListNodes(cmd.Context(), args[0]); err == nil {
				for _, n := range ns {
					before[n.ID] = true
				}
			}
			t, err := c.PowerTarget(cmd.Context(), args[0], action)
			if err != nil {
				return fmt.Errorf("%s %s: %w", action, args[0], err)
			}
			if wait {
				if t, err = waitForPower(cmd.Context(), c, args[0], action, before, timeout); err != nil {
					return err
				}
			}
			if a.jsonOut() {
				return a.printJSON(t)
			}
			verb := map[string]string{api.PowerStart: "Starting", api.PowerStop: "Stopping", api.PowerRestart: "Restarting"}[action]
			if wait {
				verb = map[string]string{api.PowerStart: "Started", api.PowerStop: "Stopped", api.PowerRestart: "Restarted"}[action]
			}
			fmt.Fprintf(a.stdout, "%s %s (%s).\n", verb, t.Name, orDash(t.State))
			return nil
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until it runs (start, restart) or is stopped (stop)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long --wait waits")
	return cmd
}

// waitForPower waits until a start or restart has a new ready node (one
// not in before), or a stop left none.
func waitForPower(ctx context.Context, c *api.Client, target, action string, before map[string]bool, timeout time.Duration) (*api.Target, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		t, err := c.GetTarget(ctx, target)
		if err == nil && action == api.PowerStop && t.State == api.TargetStopped {
			return t, nil
		}
		if err == nil && action != api.PowerStop {
			if ns, err := c.ListNodes(ctx, target); err == nil {
				for _, n := range ns {
					if n.Ready() && (action == api.PowerStart || !before[n.ID]) {
						return t, nil
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s of %s has not finished after %s (amlctl compute show %s)", action, target, timeout, target)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
