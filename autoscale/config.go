package autoscale

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrInvalidConfig is wrapped by every error Config.Validate returns.
	ErrInvalidConfig = errors.New("autoscale: invalid config")
)

// Allowed ranges of Config fields, checked by Validate.
const (
	// MinProvisioningTimeout is the least Config.ProvisioningTimeout.
	MinProvisioningTimeout = time.Second
	// MaxProvisioningTimeout is the most Config.ProvisioningTimeout.
	MaxProvisioningTimeout = 24 * time.Hour
	// MinBackoff is the least Config.BackoffBase and Config.BackoffMax.
	MinBackoff = time.Millisecond
	// MaxBackoff is the most Config.BackoffMax.
	MaxBackoff = time.Hour
)

// Config holds the autoscaler's tunables. The zero value of a field means
// its default when passed to Decide.
type Config struct {
	// ProvisioningTimeout is how long a node may stay preparing (asked of
	// the provider, agent not registered) before it is marked unusable,
	// deleted and replaced. Default 5m; allowed 1s to 24h.
	ProvisioningTimeout time.Duration
	// BackoffBase is the wait before creating nodes again after the first
	// consecutive provider failure; each further failure doubles it.
	// Default 5s; allowed 1ms to BackoffMax.
	BackoffBase time.Duration
	// BackoffMax caps the backoff wait. Default 5m; allowed BackoffBase
	// to 1h.
	BackoffMax time.Duration
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		ProvisioningTimeout: 5 * time.Minute,
		BackoffBase:         5 * time.Second,
		BackoffMax:          5 * time.Minute,
	}
}

// Validate reports the first field outside its allowed range, naming the
// field and the range. Zero fields are invalid here: call Validate on a
// Config built from DefaultConfig.
func (c Config) Validate() error {
	if c.ProvisioningTimeout < MinProvisioningTimeout || c.ProvisioningTimeout > MaxProvisioningTimeout {
		return fmt.Errorf("%w: ProvisioningTimeout is %v, want %v to %v",
			ErrInvalidConfig, c.ProvisioningTimeout, MinProvisioningTimeout, MaxProvisioningTimeout)
	}
	if c.BackoffMax < MinBackoff || c.BackoffMax > MaxBackoff {
		return fmt.Errorf("%w: BackoffMax is %v, want %v to %v",
			ErrInvalidConfig, c.BackoffMax, MinBackoff, MaxBackoff)
	}
	if c.BackoffBase < MinBackoff || c.BackoffBase > c.BackoffMax {
		return fmt.Errorf("%w: BackoffBase is %v, want %v to BackoffMax (%v)",
			ErrInvalidConfig, c.BackoffBase, MinBackoff, c.BackoffMax)
	}
	return nil
}

// withDefaults fills zero fields with their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.ProvisioningTimeout <= 0 {
		c.ProvisioningTimeout = d.ProvisioningTimeout
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = d.BackoffBase
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = d.BackoffMax
	}
	return c
}

// BackoffDelay is the wait after failures consecutive provider failures:
// 0 for none, then BackoffBase doubled per further failure, capped at
// BackoffMax (5s, 10s, 20s, ... 5m with the defaults).
func (c Config) BackoffDelay(failures int) time.Duration {
	if failures <= 0 {
		return 0
	}
	c = c.withDefaults()
	d := c.BackoffBase
	for i := 1; i < failures && d < c.BackoffMax; i++ {
		d *= 2
	}
	return min(d, c.BackoffMax)
}
