package agent

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/amld/amld/api"
)

// Config says how an agent joins the heads and runs attempts.
type Config struct {
	// HeadAddrs are the heads' API addresses (URLs or host:port). Required.
	HeadAddrs []string
	// JoinToken authenticates registration. Required. It is a secret: the
	// agent never logs it.
	JoinToken string
	// NodeID is the ID a provider gave the node; empty when an operator
	// starts the agent by hand (then Target is required and the head picks
	// the ID, which the agent keeps in WorkDir/node.json).
	NodeID string
	// Target is the target to join when NodeID is empty.
	Target string
	// WorkDir holds the node token, attempt records, work dirs and
	// checkpoints. Required; made if missing.
	WorkDir string
	// Capacity is what the node offers; zero means what DetectCapacity finds.
	Capacity api.Resources
	// GPUs are the node's devices, reported at registration (see
	// DiscoverGPUs). Runs on a node with GPUs that hold none are shown none.
	GPUs []api.GPU
	// GPUError says why GPUs is empty or short (from DiscoverGPUs); it is
	// reported at registration so that the head can say why a GPU node is
	// unusable.
	GPUError string
	// Hostname defaults to os.Hostname().
	Hostname string
	// Address is the node's address as peers reach it (host, or host:port);
	// empty means the local address of the route to the first head.
	Address string
	// Version is reported at registration.
	Version string
	// Logger receives the agent's logs; nil discards them.
	Logger *slog.Logger
	// KillGrace is how long a stopped attempt has between SIGTERM and
	// SIGKILL (0 means the default, 10s; at most 10m).
	KillGrace time.Duration
	// LogFlushInterval is how long output may wait before it is shipped
	// (default 50ms; the first output of an attempt is shipped at once).
	LogFlushInterval time.Duration
	// AssignmentsWait is how long one blocking assignments query may wait
	// at the head (default 30s).
	AssignmentsWait time.Duration
	// RequestTimeout bounds one call to a head, beyond AssignmentsWait for
	// the blocking query (default 30s).
	RequestTimeout time.Duration
	// CheckpointInterval is how often node 0 of an attempt uploads its
	// AML_CHECKPOINT_DIR when it changed (default 5s; 100ms..1h).
	CheckpointInterval time.Duration
	// RetryMin and RetryMax bound the exponential backoff between retries
	// of failed head calls (defaults 100ms and 10s).
	RetryMin, RetryMax time.Duration
	// HTTPClient is used to reach the heads when set (TLS settings, tests).
	HTTPClient *http.Client
	// Runtimes run attempts; nil means the process runtime alone. An
	// attempt with an image needs a runtime named "docker".
	Runtimes []Runtime
	// KeepContainers leaves the attempts of runtimes whose commands outlive
	// the agent (docker) running when Run's context ends, so that the
	// restarted agent adopts them; by default the agent kills them. Either
	// way a removed node, or an attempt the head fences off, is killed.
	KeepContainers bool
}

// DefaultConfig returns a Config with every optional field at its default.
func DefaultConfig() Config {
	return Config{
		Version:          "dev",
		KillGrace:        10 * time.Second,
		LogFlushInterval: 50 * time.Millisecond,
		AssignmentsWait:  30 * time.Second,
		RequestTimeout:   30 * time.Second,
		RetryMin:         100 * time.Millisecond,
		RetryMax:         10 * time.Second,

		CheckpointInterval: api.DefaultCheckpointIntervalSeconds * time.Second,
	}
}

// Validate reports the first field of c that is missing or out of range.
func (c Config) Validate() error {
	nonEmpty := 0
	for _, a := range c.HeadAddrs {
		if strings.TrimSpace(a) != "" {
			nonEmpty++
		}
	}
	switch {
	case nonEmpty == 0:
		return errors.New("agent config: HeadAddrs: at least one head address is required")
	case c.JoinToken == "":
		return errors.New("agent config: JoinToken is required")
	case c.NodeID == "" && c.Target == "":
		return errors.New("agent config: NodeID or Target is required")
	case c.NodeID != "" && !safeName(c.NodeID):
		return fmt.Errorf("agent config: NodeID %q: want letters, digits, '.', '_' or '-'", c.NodeID)
	case c.WorkDir == "":
		return errors.New("agent config: WorkDir is required")
	case c.Capacity.CPUs < 0 || c.Capacity.MemoryMB < 0 || c.Capacity.GPUs < 0:
		return fmt.Errorf("agent config: Capacity %s: must not be negative", c.Capacity)
	case c.KillGrace < 0 || c.KillGrace > 10*time.Minute:
		return fmt.Errorf("agent config: KillGrace %s: want 0..10m", c.KillGrace)
	case c.LogFlushInterval <= 0 || c.LogFlushInterval > 10*time.Second:
		return fmt.Errorf("agent config: LogFlushInterval %s: want (0, 10s]", c.LogFlushInterval)
	case c.AssignmentsWait < 100*time.Millisecond || c.AssignmentsWait > 10*time.Minute:
		return fmt.Errorf("agent config: AssignmentsWait %s: want 100ms..10m", c.AssignmentsWait)
	case c.RequestTimeout < 100*time.Millisecond:
		return fmt.Errorf("agent config: RequestTimeout %s: want at least 100ms", c.RequestTimeout)
	case c.CheckpointInterval < 100*time.Millisecond || c.CheckpointInterval > time.Hour:
		return fmt.Errorf("agent config: CheckpointInterval %s: want 100ms..1h", c.CheckpointInterval)
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin:
		return fmt.Errorf("agent config: RetryMin %s, RetryMax %s: want 0 < RetryMin <= RetryMax", c.RetryMin, c.RetryMax)
	}
	seen := map[string]bool{}
	for _, rt := range c.Runtimes {
		if rt == nil || rt.Name() == "" || seen[rt.Name()] {
			return errors.New("agent config: Runtimes: each runtime must be set and have its own name")
		}
		seen[rt.Name()] = true
	}
	return nil
}

// ReadTokenFile reads a token (the join token) from path, without
// surrounding white space. The CLI uses it for --join-token-file, so the
// token never appears on a command line.
func ReadTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("read token file %s: file is empty", path)
	}
	return tok, nil
}

// DetectCapacity returns this machine's CPUs and memory (GPUs are left to
// the gpu package).
func DetectCapacity() api.Resources {
	r := api.Resources{CPUs: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					r.MemoryMB = kb / 1024
				}
			}
		}
	}
	return r
}

// safeName reports whether s can be used as one path component: what IDs
// from the head must look like before the agent makes files named after them.
func safeName(s string) bool {
	if s == "" || len(s) > 200 || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return false
		}
	}
	return true
}
