package autoscale

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigIsValid(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.ProvisioningTimeout != 5*time.Minute || c.BackoffBase != 5*time.Second || c.BackoffMax != 5*time.Minute {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestValidateNamesFieldAndRange(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"zero provisioning timeout", func(c *Config) { c.ProvisioningTimeout = 0 }, "ProvisioningTimeout"},
		{"huge provisioning timeout", func(c *Config) { c.ProvisioningTimeout = 48 * time.Hour }, "ProvisioningTimeout"},
		{"negative backoff base", func(c *Config) { c.BackoffBase = -time.Second }, "BackoffBase"},
		{"base above max", func(c *Config) { c.BackoffBase = 10 * time.Minute }, "BackoffBase"},
		{"zero backoff max", func(c *Config) { c.BackoffMax = 0 }, "BackoffMax"},
		{"backoff max above an hour", func(c *Config) { c.BackoffMax = 2 * time.Hour }, "BackoffMax"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			err := c.Validate()
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.field) || !strings.Contains(err.Error(), "want") {
				t.Fatalf("error %q does not name %s and its range", err, tt.field)
			}
		})
	}
}

func TestBackoffDoublesFromBaseUpToMax(t *testing.T) {
	c := DefaultConfig()
	want := map[int]time.Duration{
		0: 0, 1: 5 * time.Second, 2: 10 * time.Second, 3: 20 * time.Second, 4: 40 * time.Second,
		5: 80 * time.Second, 6: 160 * time.Second, 7: 5 * time.Minute, 8: 5 * time.Minute, 1000: 5 * time.Minute,
	}
	for failures, w := range want {
		if got := c.BackoffDelay(failures); got != w {
			t.Errorf("BackoffDelay(%d) = %v, want %v", failures, got, w)
		}
	}
}
