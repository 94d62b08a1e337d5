package waits

import (
	"testing"
	"time"
)

func TestEarliestTreatsZeroAsNone(t *testing.T) {
	a, b := time.Unix(100, 0), time.Unix(200, 0)
	for _, c := range []struct{ x, y, want time.Time }{
		{a, b, a}, {b, a, a}, {time.Time{}, b, b}, {a, time.Time{}, a}, {time.Time{}, time.Time{}, time.Time{}},
	} {
		if got := Earliest(c.x, c.y); !got.Equal(c.want) {
			t.Errorf("Earliest(%v, %v) = %v, want %v", c.x, c.y, got, c.want)
		}
	}
}
