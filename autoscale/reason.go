package autoscale

import (
	"fmt"
	"strings"
	"time"

	"github.com/amld/amld/api"
)

// reasons collects the parts of a Decision.Reason.
type reasons []string

func (r *reasons) add(format string, args ...any) {
	*r = append(*r, fmt.Sprintf(format, args...))
}

// join returns head, the collected parts and tail, the empty ones left
// out, separated by "; ".
func (r reasons) join(head string, tail ...string) string {
	var parts []string
	for _, s := range append(append([]string{head}, r...), tail...) {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "; ")
}

// growReason explains a Create of want nodes.
func growReason(dem demand, target, have, want int, t *api.Target, size string) string {
	if target > dem.needed {
		return fmt.Sprintf("min_nodes=%d: creating %s of %s", t.MinNodes, plural(want, "more node"), size)
	}
	s := waitingNeed(dem, have, size)
	if dem.needed > target {
		s += fmt.Sprintf(": creating %d (capped at max_nodes=%d)", want, t.MaxNodes)
	}
	return s
}

// backoffReason explains why want nodes are not created now.
func backoffReason(failures int, until time.Time, want int, size string) string {
	return fmt.Sprintf("backing off after %s until %s (want %s of %s)",
		plural(failures, "provider error"), clock(until), plural(want, "more node"), size)
}

// steadyReason explains a decision that creates and scales down nothing.
func steadyReason(dem demand, target, have, preparing int, t *api.Target, size string) string {
	if dem.needed > have {
		return fmt.Sprintf("at max_nodes=%d: %s", t.MaxNodes, waitingNeed(dem, have, size))
	}
	s := fmt.Sprintf("steady: %s (%d preparing), %d busy, %s waiting (target %d; min_nodes=%d, max_nodes=%d)",
		plural(have, "node"), preparing, dem.busy, plural(dem.waiting, "run"), target, t.MinNodes, t.MaxNodes)
	if have > max(target, t.MinNodes) {
		s += fmt.Sprintf("; idle nodes above it go after idle_seconds_before_scaledown=%d", t.IdleSeconds())
	}
	return s
}

// waitingNeed says how many more nodes the waiting runs need.
func waitingNeed(dem demand, have int, size string) string {
	verb := "need"
	if dem.waiting == 1 {
		verb = "needs"
	}
	return fmt.Sprintf("%s waiting %s %s of %s", plural(dem.waiting, "run"), verb, plural(dem.needed-have, "more node"), size)
}

// plural formats n and word, adding an s unless n is 1.
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// nodesPhrase names a few nodes, or counts many.
func nodesPhrase(ids []string) string {
	switch {
	case len(ids) == 1:
		return "node " + ids[0]
	case len(ids) <= 3:
		return "nodes " + strings.Join(ids, ", ")
	default:
		return fmt.Sprintf("%d nodes (%s, ...)", len(ids), strings.Join(ids[:3], ", "))
	}
}

// clock formats t as a time of day in UTC.
func clock(t time.Time) string {
	return t.UTC().Format(time.TimeOnly) + " UTC"
}
