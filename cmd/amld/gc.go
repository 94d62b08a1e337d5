package main

import (
	"bufio"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// headGCPercent is the head's garbage-collection target (GOGC) when the
// environment sets none. A head keeps its whole state in memory, most of
// it long-lived, and allocates a little for every request. Under a burst
// of submits each collection of the leader is a bunch of slow submits
// (its marking takes the cores the other heads and the clients need), and
// how often it collects is what GOGC sets: at Go's default of 100 the
// collector cost 9 % of the leader's CPU and a quarter of a follower's;
// 400 ran the three-head submit benchmark 8 % faster, and 800 lowered its
// p99 by another 1 ms on average over seven pairs, where 1600 did no
// better than 800 (BENCHMARKS.md). The price is memory: between
// collections the heap grows to nine times what survived the last one.
// memoryShare of the machine's (or cgroup's) memory bounds that: near the
// limit the collector works harder rather than let the head grow past it.
const (
	headGCPercent = 800
	memoryShare   = 0.7
)

// tuneGC sets the head's GC target and memory limit unless GOGC or
// GOMEMLIMIT say otherwise, and logs what it chose.
func tuneGC(log *slog.Logger) {
	if os.Getenv("GOGC") != "" {
		return
	}
	debug.SetGCPercent(headGCPercent)
	limit := "none"
	if os.Getenv("GOMEMLIMIT") == "" {
		if total := memoryTotal("/proc/meminfo", "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"); total > 0 {
			n := int64(float64(total) * memoryShare)
			debug.SetMemoryLimit(n)
			limit = strconv.FormatInt(n>>20, 10) + " MiB"
		}
	} else {
		limit = os.Getenv("GOMEMLIMIT")
	}
	log.Debug("garbage collection tuned (GOGC and GOMEMLIMIT override)", "gogc", headGCPercent, "memory_limit", limit)
}

// memoryTotal is the memory this process may use, in bytes: the smaller of
// MemTotal in meminfo and a cgroup limit (v2 memory.max, v1
// limit_in_bytes) where one is set; 0 when none can be read.
func memoryTotal(meminfo string, cgroupLimits ...string) int64 {
	total := memTotal(meminfo)
	for _, p := range cgroupLimits {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n <= 0 { // "max": no limit
			continue
		}
		if total == 0 || n < total {
			total = n
		}
	}
	return total
}

// memTotal reads MemTotal from a meminfo file, in bytes; 0 if it cannot.
func memTotal(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
