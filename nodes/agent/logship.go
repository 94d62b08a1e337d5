package agent

import (
	"bytes"
	"context"
	"io"
	"sync"
	"time"

	"github.com/amld/amld/api"
)

const (
	// flushBytes ships output at once when this much waits, whatever the
	// flush interval (well under api.MaxLogChunkBytes, the cap of one append).
	flushBytes = 64 << 10
	// maxPendingBytes is how much unshipped output the agent holds before
	// it stops reading the command's output (the command then blocks on
	// writes until the head takes some).
	maxPendingBytes = 4 << 20
	// maxStreamBytes is how much of one stream the agent ships: the head
	// keeps api.MaxLogBytesPerStream, and the byte past it tells the head
	// the stream was cut.
	maxStreamBytes = api.MaxLogBytesPerStream + 1
)

// shipper ships one attempt's output to the head: the first bytes at once,
// then at most every LogFlushInterval (or as soon as flushBytes wait), each
// append at the stream offset where its data starts. A failed append is
// sent again from the same offset; a 409 fences the attempt off.
type shipper struct {
	at       *attempt
	interval time.Duration

	mu      sync.Mutex
	buf     []byte // unshipped output
	off     int64  // stream offset of buf[0]
	eof     bool   // the output ended
	stopped bool   // shipping ended: further output is dropped

	data  chan struct{} // buf grew or eof was set
	space chan struct{} // buf shrank or shipping ended
	wg    sync.WaitGroup
}

// ship starts shipping out; wait returns once all of it is shipped or
// shipping ended.
func (at *attempt) ship(out io.ReadCloser) *shipper {
	s := &shipper{
		at:       at,
		interval: at.a.cfg.LogFlushInterval,
		data:     make(chan struct{}, 1),
		space:    make(chan struct{}, 1),
	}
	s.wg.Add(2)
	go s.read(out)
	go s.flush(at.ctx)
	return s
}

func (s *shipper) wait() { s.wg.Wait() }

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// read copies the output into buf until it ends.
func (s *shipper) read(out io.ReadCloser) {
	defer s.wg.Done()
	defer out.Close()
	p := make([]byte, 32<<10)
	for {
		n, err := out.Read(p)
		if n > 0 {
			if m := s.at.mpi; m != nil && m.tail != nil {
				_, _ = m.tail.Write(p[:n])
			}
			s.push(p[:n])
		}
		if err != nil {
			s.mu.Lock()
			s.eof = true
			s.mu.Unlock()
			notify(s.data)
			return
		}
	}
}

// push adds p to buf, waiting while too much is unshipped.
func (s *shipper) push(p []byte) {
	for {
		s.mu.Lock()
		end := s.off + int64(len(s.buf))
		if s.stopped || end >= maxStreamBytes {
			s.mu.Unlock()
			return
		}
		if room := maxStreamBytes - end; int64(len(p)) > room {
			p = p[:room]
		}
		if len(s.buf) < maxPendingBytes {
			s.buf = append(s.buf, p...)
			s.mu.Unlock()
			notify(s.data)
			return
		}
		s.mu.Unlock()
		<-s.space
	}
}

// flush ships buf until the output ended and all of it went, or shipping
// must stop (ctx ended, fenced, or the head refused the stream).
func (s *shipper) flush(ctx context.Context) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		s.stopped, s.buf = true, nil
		s.mu.Unlock()
		notify(s.space)
	}()
	var last time.Time // of the last append; zero ships the first output at once
	for {
		s.mu.Lock()
		n, eof := len(s.buf), s.eof
		s.mu.Unlock()
		if n == 0 {
			if eof {
				return
			}
			select {
			case <-s.data:
				continue
			case <-ctx.Done():
				return
			}
		}
		if wait := s.interval - time.Since(last); n < flushBytes && !eof && wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-s.data:
				t.Stop()
				continue // look again: more may have come, or the end
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
		s.mu.Lock()
		m := min(len(s.buf), flushBytes)
		chunk := bytes.Clone(s.buf[:m])
		off := s.off
		s.mu.Unlock()
		last = time.Now()
		if !s.send(ctx, off, chunk) {
			return
		}
		s.mu.Lock()
		s.buf = s.buf[m:]
		if len(s.buf) == 0 {
			s.buf = nil // let the array go
		}
		s.off += int64(m)
		s.mu.Unlock()
		notify(s.space)
	}
}

// send appends one chunk, retrying until the head takes it; false means
// shipping must stop.
func (s *shipper) send(ctx context.Context, off int64, data []byte) bool {
	at := s.at
	la := api.LogAppend{AttemptKey: at.key, Offset: off, Data: data}
	err := at.a.call(ctx, "ship output", at.a.cfg.RequestTimeout, func(ctx context.Context, c *api.Client) error {
		return c.AppendLog(ctx, la)
	})
	switch {
	case err == nil:
		return true
	case ctx.Err() != nil:
	case isFenced(err):
		at.fence(err)
	default:
		at.log.Warn("the head refused the attempt's output; no more of it is shipped", "offset", off, "err", err)
	}
	return false
}
