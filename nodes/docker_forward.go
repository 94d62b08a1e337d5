package nodes

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
)

// forwarder accepts TCP connections on one address (a Docker network's
// gateway) and joins each to the head's address, so that node containers
// reach a head that listens on loopback only. Its goroutines are owned by
// the forwarder; close stops them all.
type forwarder struct {
	ln  net.Listener
	dst string
	log *slog.Logger

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// listenForward starts forwarding listen to dst. When listen is in use
// already (the head itself listens on every address) it returns nil and
// no error: nodes reach the head there without help.
func listenForward(listen, dst string, log *slog.Logger) (*forwarder, error) {
	ln, err := net.Listen("tcp", listen)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	f := &forwarder{ln: ln, dst: dst, log: log, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.serve()
	return f, nil
}

func (f *forwarder) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		if !f.track(c) {
			c.Close()
			return
		}
		f.wg.Add(1)
		go f.pipe(c)
	}
}

// track registers c, unless the forwarder is closed.
func (f *forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *forwarder) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
	c.Close()
}

// pipe joins c to a new connection to dst until either side ends.
func (f *forwarder) pipe(c net.Conn) {
	defer f.wg.Done()
	defer f.untrack(c)
	d, err := net.Dial("tcp", f.dst)
	if err != nil {
		f.log.Warn("forward to the head failed", "dst", f.dst, "err", err)
		return
	}
	if !f.track(d) {
		d.Close()
		return
	}
	defer f.untrack(d)
	done := make(chan struct{}, 2)
	cp := func(w, r net.Conn) {
		_, _ = io.Copy(w, r)
		if tc, ok := w.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(d, c)
	go cp(c, d)
	<-done
	<-done
}

// close stops accepting, closes every connection and waits for the
// goroutines.
func (f *forwarder) close() {
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.ln.Close()
	f.wg.Wait()
}
