package waits

import "time"

// Earliest returns the earlier of two deadlines, where a zero time means
// none: the time a loop should next wake for either.
func Earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
