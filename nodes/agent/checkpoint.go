package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/amld/amld/api"
)

// Checkpoints: every attempt gets AML_CHECKPOINT_DIR, filled with its run's
// latest checkpoint before the command starts. On node 0 the agent uploads
// the dir (a gzip'd tar, at most api.MaxCheckpointBytes) every
// CheckpointInterval when it changed, and once more when the command ended
// for any reason but a clean exit, before the end is reported; the head
// keeps the last one as the run's checkpoint.

// checkpointDir is k's checkpoint dir: WorkDir/checkpoints/<run>/<attempt>/<node>.
func (a *Agent) checkpointDir(k api.AttemptKey) string {
	return filepath.Join(a.cfg.WorkDir, "checkpoints", k.RunID, strconv.Itoa(k.Attempt), strconv.Itoa(k.NodeIndex))
}

// removeCheckpointDir removes k's checkpoint dir and the parents it leaves
// empty.
func (a *Agent) removeCheckpointDir(k api.AttemptKey) {
	if !safeName(k.RunID) {
		return
	}
	dir := a.checkpointDir(k)
	if err := removeAll(dir); err != nil {
		a.log.Warn("could not remove a checkpoint dir", "dir", dir, "err", err)
		return
	}
	// Fails (and stops) at the first parent that is not empty.
	_ = os.Remove(filepath.Dir(dir))
	_ = os.Remove(filepath.Dir(filepath.Dir(dir)))
}

// restoreCheckpoint makes the attempt's checkpoint dir, empty, and unpacks
// the run's latest checkpoint into it (if the run has one).
func (at *attempt) restoreCheckpoint(dir string) error {
	if err := removeAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	buf := &capBuffer{limit: 2 * api.MaxCheckpointBytes}
	err := at.a.call(at.ctx, "download checkpoint", at.a.cfg.RequestTimeout, func(ctx context.Context, c *api.Client) error {
		buf.Reset()
		err := c.DownloadCheckpoint(ctx, at.key, buf)
		if errors.Is(err, errTooLarge) {
			return api.TooLarge("the run's checkpoint is larger than %d bytes", buf.limit)
		}
		return err
	})
	if err != nil {
		if isFenced(err) {
			at.fence(err)
		}
		return fmt.Errorf("download the run's checkpoint: %w", err)
	}
	if buf.Len() == 0 {
		return nil
	}
	if err := extractSource(&buf.Buffer, dir); err != nil {
		return fmt.Errorf("restore the run's checkpoint: %w", err)
	}
	if data, err := tarOutputs(dir, api.MaxCheckpointBytes); err == nil && data != nil {
		at.restoredSum = sum(data)
	}
	at.log.Info("checkpoint restored", "bytes", buf.Len())
	return nil
}

// checkpointer uploads an attempt's checkpoint dir (node 0 only).
type checkpointer struct {
	at  *attempt
	dir string

	mu       sync.Mutex // serializes uploads; guards last and warned
	last     string     // SHA-256 of the last dir content the head has
	warned   bool       // the too-large warning was logged
	disabled bool       // not node 0: nothing is uploaded

	quit chan struct{}
	done chan struct{}
}

// startCheckpoints starts the periodic uploads of dir; stop ends them.
func (at *attempt) startCheckpoints(dir string) *checkpointer {
	c := &checkpointer{at: at, dir: dir, last: at.restoredSum, quit: make(chan struct{}), done: make(chan struct{})}
	if at.key.NodeIndex != 0 {
		c.disabled = true
		close(c.done)
		return c
	}
	go func() {
		defer close(c.done)
		t := time.NewTicker(at.a.cfg.CheckpointInterval)
		defer t.Stop()
		for {
			select {
			case <-c.quit:
				return
			case <-at.ctx.Done():
				return
			case <-t.C:
				c.upload()
			}
		}
	}()
	return c
}

// stop ends the periodic uploads and waits for one in flight.
func (c *checkpointer) stop() {
	if !c.disabled {
		close(c.quit)
	}
	<-c.done
}

// upload sends the dir to the head if it changed since the last upload. A
// refusal because the attempt is over fences the attempt off; other
// failures are logged and left to the next try.
func (c *checkpointer) upload() {
	if c.disabled {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	at := c.at
	data, err := tarOutputs(c.dir, api.MaxCheckpointBytes)
	switch {
	case errors.Is(err, errTooLarge):
		if !c.warned {
			c.warned = true
			at.log.Warn("the checkpoint dir is over the cap; not uploaded", "cap_bytes", api.MaxCheckpointBytes)
		}
		return
	case err != nil:
		// A file replaced while it was read, most likely: next time.
		at.log.Debug("could not pack the checkpoint dir", "err", err)
		return
	case data == nil:
		return
	}
	s := sum(data)
	if s == c.last {
		return
	}
	err = at.a.call(at.ctx, "upload checkpoint", at.a.cfg.RequestTimeout, func(ctx context.Context, cl *api.Client) error {
		_, err := cl.UploadCheckpoint(ctx, at.key, data)
		return err
	})
	switch {
	case err == nil:
		c.last = s
		at.log.Debug("checkpoint uploaded", "bytes", len(data))
	case at.ctx.Err() != nil:
	case isFenced(err):
		at.fence(err)
	case api.StatusOf(err) == http.StatusRequestEntityTooLarge:
		if !c.warned {
			c.warned = true
			at.log.Warn("the head refused the checkpoint as too large", "err", err)
		}
	default:
		at.log.Warn("the head refused the checkpoint", "err", err)
	}
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
