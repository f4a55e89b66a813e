// Package fastpath is the sidecar's own HTTP/1.1 server for the common
// case: keep-alive requests API clients send, judged, forwarded and
// answered on one goroutine per connection.
//
// net/http's server spends more CPU on a small proxied request than the
// proxying itself: a goroutine woken to watch every connection for a close
// while the handler runs, a Request, a header map and a response writer per
// request, and a chunking writer in between. On a two-core pod that made the
// sidecar cost three to four times NGINX's CPU per request. So the public
// listener is served here: one goroutine per connection reads a request
// head, asks the engine, writes the forwarded head and streams the body to
// a pooled upstream connection on the same goroutine, and streams the
// response back — the shape of NGINX's loop, with Go's blocking I/O.
//
// It takes only what package h1 accepts (keep-alive HTTP/1.1 in origin
// form with at most a Content-Length body: what API clients send); it
// starts the same spans as the net/http path. At the first request it does
// not take, it hands the connection, with that request still unread, to
// the net/http server (Handoff), which serves the connection from then on.
// Both paths ask the same engine the same question (the same edge.Request),
// so they decide alike; the conformance suite runs through both.
//
// It knows the sidecar only through Sidecar (the policy in force, the
// in-process paths) and reaches the upstream only through the upstream
// package's Pool. A request's path, top to bottom: Serve accepts →
// conn.serve reads a head → serveRequest parses it, asks Check, and either
// rejects or forwards (forward.go: write upstream, read the answer,
// Observe, relay) → Finish records it.
package fastpath

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/contentguard/contentguard/sidecar/exchange"
	"github.com/contentguard/contentguard/sidecar/upstream"
)

// Sidecar is what the fast server needs of the server it runs in.
type Sidecar interface {
	// Plane returns the policy in force; a request reads it once.
	Plane() *exchange.Plane
	// Local reports whether a request for path (as sent) is for an
	// in-process handler: such requests go to net/http.
	Local(path string) bool
}

// Config configures a Server.
type Config struct {
	Sidecar  Sidecar
	Pool     *upstream.Pool
	Recorder *exchange.Recorder
	Logger   *slog.Logger
	// The public server's timeouts, as http.Server's.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
}

var (
	// errHandoff: the request is for net/http.
	errHandoff = errors.New("sidecar: handoff to net/http")
	// errClosing: the server is shutting down and the connection is idle.
	errClosing = errors.New("sidecar: shutting down")
)

// Server serves the public listener. See the package comment.
type Server struct {
	sc      Sidecar
	pool    *upstream.Pool
	rec     *exchange.Recorder
	log     *slog.Logger
	handoff *handoffListener

	readHeaderTimeout, readTimeout, writeTimeout, idleTimeout time.Duration

	mu       sync.Mutex
	conns    map[*conn]struct{}
	draining atomic.Bool
	lastCall atomic.Bool // the drain delay: every answer says Connection: close (see sidecar/drain.go)
	wg       sync.WaitGroup

	date atomic.Pointer[dateLine]
}

// New returns a fast server for c.
func New(c Config) *Server {
	return &Server{
		sc:                c.Sidecar,
		pool:              c.Pool,
		rec:               c.Recorder,
		log:               c.Logger,
		handoff:           newHandoffListener(),
		readHeaderTimeout: c.ReadHeaderTimeout,
		readTimeout:       c.ReadTimeout,
		writeTimeout:      c.WriteTimeout,
		idleTimeout:       c.IdleTimeout,
		conns:             map[*conn]struct{}{},
	}
}

// Handoff is the listener through which the net/http server receives the
// connections the fast server gives up, with what it read ahead.
func (f *Server) Handoff() net.Listener { return f.handoff }

// Serve accepts connections on ln until it fails or is closed (then it
// returns nil if the server is shutting down).
func (f *Server) Serve(ln net.Listener) error {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if f.draining.Load() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: back off as net/http
			// does, instead of spinning.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			f.log.Warn("accept failed; retrying", "err", err.Error(), "delay", delay.String())
			time.Sleep(delay)
			continue
		}
		delay = 0
		fc := f.track(c)
		if fc == nil {
			_ = c.Close()
			continue
		}
		go fc.serve()
	}
}

func (f *Server) track(c net.Conn) *conn {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.draining.Load() {
		return nil
	}
	fc := newConn(f, c)
	f.conns[fc] = struct{}{}
	f.wg.Add(1)
	return fc
}

func (f *Server) forget(fc *conn) {
	f.mu.Lock()
	delete(f.conns, fc)
	f.mu.Unlock()
	f.wg.Done()
}

// StopAccepting marks the server as shutting down, so that Serve returns
// nil once its listener is closed.
func (f *Server) StopAccepting() { f.draining.Store(true) }

// LastCall starts the drain delay: from now on every answer says
// Connection: close.
func (f *Server) LastCall() { f.lastCall.Store(true) }

// CloseIdle closes the connections that have been waiting for a request
// since before cutoff (the drain delay).
func (f *Server) CloseIdle(cutoff time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for fc := range f.conns {
		if fc.idle.Load() && fc.since.Load() < cutoff.UnixNano() {
			_ = fc.c.Close()
		}
	}
}

// Shutdown stops taking requests: idle connections close now, busy ones
// after their current response (which says Connection: close). It waits
// for them until ctx ends, then closes what is left.
func (f *Server) Shutdown(ctx context.Context) error {
	f.draining.Store(true)
	f.mu.Lock()
	for fc := range f.conns {
		if fc.idle.Load() {
			_ = fc.c.Close()
		}
	}
	f.mu.Unlock()
	done := make(chan struct{})
	go func() {
		f.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		f.mu.Lock()
		for fc := range f.conns {
			_ = fc.c.Close()
			// A request waiting on its upstream (a stalled body) would
			// not notice its client's close until a timeout minutes away.
			if uc := fc.upstream.Load(); uc != nil {
				_ = uc.Close()
			}
		}
		f.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// dateLine is the Date field for answers the sidecar makes, formatted once
// a second.
type dateLine struct {
	unix int64
	line []byte
}

func (f *Server) dateLine() []byte {
	now := time.Now()
	if d := f.date.Load(); d != nil && d.unix == now.Unix() {
		return d.line
	}
	b := append([]byte("Date: "), now.UTC().AppendFormat(nil, http.TimeFormat)...)
	d := &dateLine{unix: now.Unix(), line: append(b, '\r', '\n')}
	f.date.Store(d)
	return d.line
}
