package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMemoryTotalTakesTheSmallerOfMachineAndCgroup(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	meminfo := write("meminfo", "MemTotal:       24684124 kB\nMemFree:        23000000 kB\n")
	machine := int64(24684124) << 10
	for _, c := range []struct {
		name   string
		limits []string
		want   int64
	}{
		{"no cgroup files", []string{filepath.Join(dir, "absent")}, machine},
		{"cgroup v2 without a limit", []string{write("v2max", "max\n")}, machine},
		{"cgroup v2 limit", []string{write("v2", "2147483648\n")}, 2 << 30},
		{"cgroup v1 limit above the machine", []string{write("v1", "9223372036854771712\n")}, machine},
		{"garbage", []string{write("bad", "lots\n")}, machine},
	} {
		if got := memoryTotal(meminfo, c.limits...); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	if got := memoryTotal(filepath.Join(dir, "absent"), write("only", "1048576\n")); got != 1<<20 {
		t.Errorf("no meminfo, a cgroup limit: %d", got)
	}
	if got := memoryTotal(write("empty", "")); got != 0 {
		t.Errorf("nothing readable: %d, want 0", got)
	}
}
