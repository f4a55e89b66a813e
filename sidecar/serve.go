package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/contentguard/contentguard/sidecar/fastpath"
)

// headerSlack is how far above the policy's maxHeaderBytes the server
// itself still reads a request head, so that the engine — not net/http —
// answers oversize heads, with a problem document.
const headerSlack = 16 << 10

// Serve runs the public handler on public and the admin handler on admin
// (nil: no admin listener) with hardened http.Servers until ctx ends or a
// listener fails. Then it turns /readyz to 503 and keeps serving for
// DrainDelay — every answer saying Connection: close, connections idle for
// a second closed (see drain.go) — then stops accepting, lets in-flight
// requests finish for up to DrainTimeout (then cuts them), and returns.
//
// The public listener belongs to the fast path (package fastpath) when it
// applies (upstream.Client.FastPath); the net/http server then serves the
// connections it hands over.
func (s *Server) Serve(ctx context.Context, public, admin net.Listener) error {
	errLog := slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)
	maxHeader := int(s.state.Load().Policy.Spec.Limits.MaxHeaderBytes) + headerSlack
	pub := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: orDefault(s.opts.ReadHeaderTimeout, 10*time.Second),
		ReadTimeout:       orDefault(s.opts.ReadTimeout, 60*time.Second),
		WriteTimeout:      orDefault(s.opts.WriteTimeout, 5*time.Minute),
		IdleTimeout:       orDefault(s.opts.IdleTimeout, 120*time.Second),
		MaxHeaderBytes:    maxHeader,
		ErrorLog:          errLog,
	}
	idle := newIdleConns()
	pub.ConnState = idle.track
	servers := []*http.Server{pub}
	listeners := []net.Listener{public}
	fastOK, why := s.fastPath()
	s.logDataPaths(fastOK, why)
	var fast *fastpath.Server
	if fastOK {
		// The fast path owns the public listener; net/http serves the
		// connections it hands over.
		fast = fastpath.New(fastpath.Config{
			Sidecar:           view{s},
			Pool:              s.client.Pool(),
			Recorder:          s.recorder,
			Logger:            s.log,
			ReadHeaderTimeout: pub.ReadHeaderTimeout,
			ReadTimeout:       pub.ReadTimeout,
			WriteTimeout:      pub.WriteTimeout,
			IdleTimeout:       pub.IdleTimeout,
		})
		listeners[0] = fast.Handoff()
	}
	if admin != nil {
		servers = append(servers, &http.Server{
			Handler:           s.AdminHandler(),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       60 * time.Second,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          errLog,
		})
		listeners = append(listeners, admin)
	}
	failed := make(chan error, len(servers)+1)
	for i := range servers {
		srv, ln := servers[i], listeners[i]
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				failed <- fmt.Errorf("sidecar: serve %s: %w", ln.Addr(), err)
			}
		}()
	}
	if fast != nil {
		go func() {
			if err := fast.Serve(public); err != nil {
				failed <- fmt.Errorf("sidecar: serve %s: %w", public.Addr(), err)
			}
		}()
	}
	s.log.Info("sidecar listening", "public", public.Addr().String(), "admin", addrOf(admin))

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-failed:
	}
	s.draining.Store(true)
	s.log.Info("draining", "delay", s.opts.DrainDelay.String(), "timeout", s.opts.DrainTimeout.String())
	if s.opts.DrainDelay > 0 && serveErr == nil {
		s.drainDelay(s.opts.DrainDelay, fast, idle)
	}
	dctx, cancel := context.WithTimeout(context.Background(), s.opts.DrainTimeout)
	defer cancel()
	// Admin last, so /readyz keeps reporting "draining" while requests end.
	var fastDone chan error
	if fast != nil {
		// Stop accepting first, so nothing more is handed to net/http.
		fast.StopAccepting()
		_ = public.Close()
		fastDone = make(chan error, 1)
		go func() { fastDone <- fast.Shutdown(dctx) }()
	}
	if err := pub.Shutdown(dctx); err != nil {
		s.log.Warn("drain timed out; closing remaining connections", "err", err.Error())
		_ = pub.Close()
	}
	if fastDone != nil {
		if err := <-fastDone; err != nil {
			s.log.Warn("drain timed out; closed remaining fast-path connections", "err", err.Error())
		}
	}
	for _, srv := range servers[1:] {
		sctx, scancel := context.WithTimeout(context.Background(), time.Second)
		if err := srv.Shutdown(sctx); err != nil {
			_ = srv.Close()
		}
		scancel()
	}
	s.log.Info("sidecar stopped")
	return serveErr
}

// fastPath reports whether Serve answers on the fast path, and if not why.
func (s *Server) fastPath() (bool, string) {
	if s.opts.DisableFastPath {
		return false, "turned off (--no-fast-path, Options.DisableFastPath)"
	}
	return s.client.FastPath()
}

// logDataPaths says which path serves which traffic, and why: the rule is
// the fast path's (package fastpath and upstream.Client.FastPath), this is
// its one line in the log.
func (s *Server) logDataPaths(fast bool, why string) {
	if !fast {
		level := slog.LevelInfo
		if !s.opts.DisableFastPath {
			level = slog.LevelWarn // not asked for: say it louder
		}
		s.log.Log(context.Background(), level, "data path: net/http serves every request; the fast path is off",
			"fast_path", false, "reason", why)
		return
	}
	handed := "chunked or Expect bodies, upgrades, HTTP/1.0, heads over 8 KiB"
	if len(s.opts.LocalPaths) > 0 {
		handed += ", the in-process paths " + strings.Join(s.opts.LocalPaths, " ")
	}
	s.log.Info("data paths: the fast path serves keep-alive HTTP/1.1, net/http what it hands over",
		"fast_path", true,
		"fast", "HTTP/1.1 in origin form without a body or with a Content-Length one, to http and https upstreams",
		"net_http", handed)
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func addrOf(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}
