package traefikload_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contentguard/contentguard/internal/clocktest"
	"github.com/contentguard/contentguard/internal/traefikload"
)

// pluginDir is the plugin's module, loaded with its vendor/ as Traefik
// loads it. CONTENTGUARD_TRAEFIK_PLUGIN names another copy of it, for
// benchmarks side by side with an older engine (docs/benchmarks.md).
var pluginDir = func() string {
	if dir := os.Getenv("CONTENTGUARD_TRAEFIK_PLUGIN"); dir != "" {
		return dir
	}
	return filepath.Join("..", "..", "plugins", "traefik")
}()

var (
	loadOnce  sync.Once
	loaded    *traefikload.Plugin
	withClock func(context.Context, *planeClock) context.Context
	loadErr   error
	names     atomic.Int64
)

// loadPlugin loads the plugin once per test binary: like Traefik, one
// interpreter serves every middleware of the plugin.
func loadPlugin(tb testing.TB) *traefikload.Plugin {
	tb.Helper()
	loadOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cg-traefik-")
		if err != nil {
			loadErr = err
			return
		}
		// Yaegi has read every source by the end of the import.
		defer os.RemoveAll(dir)
		loaded, loadErr = traefikload.Load(filepath.Join(dir, "plugins-local"), pluginDir)
		if loadErr != nil {
			return
		}
		v, err := loaded.Interp.Eval(loaded.BasePkg + ".WithClock")
		if err != nil {
			loadErr = err
			return
		}
		with := v.Interface().(func(context.Context, func() time.Time, func(time.Duration, func()) *time.Timer) context.Context)
		withClock = func(ctx context.Context, c *planeClock) context.Context { return with(ctx, c.Now, c.AfterFunc) }
	})
	if loadErr != nil {
		tb.Fatalf("loading the plugin as Traefik does: %v", loadErr)
	}
	return loaded
}

// planeClock is a middleware's clock in a test (WithClock): the
// time stands still until the test moves it, and the upstream timers never
// fire by themselves — the test fires them (fire) when the service it
// scripts is late, so that timeouts are exact however loaded the machine.
type planeClock struct {
	*clocktest.Clock

	mu     sync.Mutex
	timers []*planeTimer
}

type planeTimer struct {
	t *time.Timer
	f func()
}

func newPlaneClock() *planeClock { return &planeClock{Clock: clocktest.New(time.Now())} }

// AfterFunc returns a timer that would fire only after an hour.
func (c *planeClock) AfterFunc(d time.Duration, f func()) *time.Timer {
	t := time.AfterFunc(time.Hour, f)
	c.mu.Lock()
	c.timers = append(c.timers, &planeTimer{t: t, f: f})
	c.mu.Unlock()
	return t
}

// fire fires every timer not stopped yet.
func (c *planeClock) fire() {
	c.mu.Lock()
	timers := c.timers
	c.timers = nil
	c.mu.Unlock()
	for _, pt := range timers {
		if pt.t.Stop() {
			pt.f()
		}
	}
}

// uniqueName names a middleware as Traefik does (name@provider), once per
// test: the plugin keeps engines by name.
func uniqueName(prefix string) string {
	return prefix + "-" + strconv.FormatInt(names.Add(1), 10) + "@file"
}

// upstream is a service behind the proxy: a real loopback server whose
// answers a test scripts and which records what it received. A late
// service fires the middleware's timers (late) and answers only when its
// request is cancelled.
type upstream struct {
	srv *http.Server
	url *url.URL

	mu       sync.Mutex
	status   int
	late     func() // set: the service is late
	received []*http.Request
}

func startUpstream(tb testing.TB) *upstream {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	u := &upstream{url: &url.URL{Scheme: "http", Host: ln.Addr().String()}}
	u.srv = &http.Server{Handler: http.HandlerFunc(u.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = u.srv.Serve(ln) }()
	tb.Cleanup(func() { _ = u.srv.Close() })
	return u
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	u.mu.Lock()
	u.received = append(u.received, r.Clone(context.Background()))
	status, late := u.status, u.late
	u.mu.Unlock()
	if late != nil {
		late()
		<-r.Context().Done()
		return
	}
	if status == 0 {
		status = http.StatusOK
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, "upstream says "+strconv.Itoa(status))
}

func (u *upstream) script(status int, late func()) {
	u.mu.Lock()
	u.status, u.late = status, late
	u.mu.Unlock()
}

func (u *upstream) take() []*http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	r := u.received
	u.received = nil
	return r
}

// closedAddr is an address where nothing listens: a service that is down.
func closedAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// traefikProxy is the handler a Traefik router ends in: its service's
// reverse proxy as Traefik v3 builds it (pkg/proxy/httputil) — the path
// taken from RequestURI, X-Forwarded-For appended, and its error handler,
// which answers a failed attempt with a bare status and its text: 502 for
// an unreachable service, 504 for a timeout, 499 for a cancelled request.
func traefikProxy(target *url.URL, transport http.RoundTripper) http.Handler {
	return &httputil.ReverseProxy{
		Transport: transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			for _, name := range []string{"X-Forwarded-For", "Forwarded", "X-Forwarded-Host", "X-Forwarded-Proto"} {
				if v, ok := pr.In.Header[name]; ok {
					pr.Out.Header[name] = v
				}
			}
			if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
				if prior := pr.Out.Header["X-Forwarded-For"]; len(prior) > 0 {
					ip = strings.Join(prior, ", ") + ", " + ip
				}
				pr.Out.Header.Set("X-Forwarded-For", ip)
			}
			pr.Out.URL.Scheme, pr.Out.URL.Host = target.Scheme, target.Host
			u := pr.Out.URL
			if pr.Out.RequestURI != "" {
				if parsed, err := url.ParseRequestURI(pr.Out.RequestURI); err == nil {
					u = parsed
				}
			}
			pr.Out.URL.Path, pr.Out.URL.RawPath, pr.Out.URL.RawQuery = u.Path, u.RawPath, u.RawQuery
			pr.Out.RequestURI = ""
			pr.Out.Host = target.Host
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			status := http.StatusInternalServerError
			var netErr net.Error
			switch {
			case errors.Is(err, io.EOF):
				status = http.StatusBadGateway
			case errors.Is(err, context.Canceled):
				status = 499
			case errors.As(err, &netErr) && netErr.Timeout():
				status = http.StatusGatewayTimeout
			case errors.As(err, &netErr):
				status = http.StatusBadGateway
			}
			w.WriteHeader(status)
			text := http.StatusText(status)
			if status == 499 {
				text = "Client Closed Request"
			}
			_, _ = w.Write([]byte(text))
		},
	}
}

// wireRequest is what Traefik's entrypoint makes of the bytes a client
// sends: the request exactly as net/http's server parses it.
func wireRequest(method, target, proto string, header http.Header, body []byte, noHost bool) (*http.Request, error) {
	var b bytes.Buffer
	if proto == "" {
		proto = "HTTP/1.1"
	}
	b.WriteString(method + " " + target + " " + proto + "\r\n")
	if !noHost {
		b.WriteString("Host: edge.test\r\n")
	}
	for name, values := range header {
		for _, v := range values {
			b.WriteString(name + ": " + v + "\r\n")
		}
	}
	if len(body) > 0 {
		b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	return http.ReadRequest(bufio.NewReader(&b))
}
