package waits

import (
	"context"
	"testing"
	"time"
)

func TestSleepWaitsOrStopsWithItsContext(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Fatal("a live context reported done")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if Sleep(ctx, time.Hour) {
		t.Fatal("a canceled context reported live")
	}
	if time.Since(start) > time.Minute {
		t.Fatal("Sleep outlived its context")
	}
}
