package kong

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/contentguard/contentguard/edge/ratelimit/redisstore"
	"github.com/contentguard/contentguard/telemetry"
	"github.com/contentguard/contentguard/telemetry/edgemetrics"
)

// NodeOptions configure a Node. Every field has a default.
type NodeOptions struct {
	// Logger receives policy reloads, breaker transitions and failures;
	// default JSON lines on stderr, which Kong copies into its error log.
	Logger *slog.Logger
	// Registry receives the metrics served on each instance's
	// metrics_address; default a fresh telemetry.NewRegistry().
	Registry *prometheus.Registry
	// Now is the clock of breakers and rate limits; default time.Now.
	Now func() time.Time
	// WatchInterval is how often policy files are polled; default 1s.
	WatchInterval time.Duration
	// MaxInFlight bounds the allowed requests waiting for their Log phase;
	// default DefaultMaxInFlight.
	MaxInFlight int
}

// DefaultMaxInFlight is the default bound of requests between their Access
// and Log phases: more than a Kong node's connection limit (worker
// processes × worker_connections) in common setups, and about 60 MiB at
// most.
const DefaultMaxInFlight = 1 << 17

// Node is the state one plugin-server process keeps for every plugin
// instance Kong starts in it. Kong runs one plugin server per node, shared by
// all its NGINX workers, so what lives here is node-wide: each policy (one
// engine, its circuit breakers and in-memory rate-limit buckets, its file
// watcher), the Redis clients, the metrics and their listeners, and the
// requests between Access and Log.
//
// Instances come and go (Kong starts a new one on every configuration change
// and go-pdk expires idle ones), so nothing here belongs to an instance:
// state is keyed by what the configuration names, which bounds it.
type Node struct {
	log      *slog.Logger
	registry *prometheus.Registry
	metrics  *edgemetrics.Metrics
	now      func() time.Time
	every    time.Duration
	inflight *inflight
	redis    redisstore.Clients

	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	sources   map[string]*source        // by sourceKey
	listeners map[string]*metricsServer // by configured metrics_address
	instances int                       // numbers instances Kong starts without an id
}

// NewNode returns a node; Close releases it.
func NewNode(opts NodeOptions) (*Node, error) {
	if opts.Logger == nil {
		opts.Logger = telemetry.NewLogger(os.Stderr, slog.LevelInfo)
	}
	if opts.Registry == nil {
		opts.Registry = telemetry.NewRegistry()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.WatchInterval <= 0 {
		opts.WatchInterval = time.Second
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	m, err := edgemetrics.New(opts.Registry, opts.Logger)
	if err != nil {
		return nil, fmt.Errorf("kong: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Node{
		log:       opts.Logger,
		registry:  opts.Registry,
		metrics:   m,
		now:       opts.Now,
		every:     opts.WatchInterval,
		inflight:  newInflight(opts.MaxInFlight),
		ctx:       ctx,
		stop:      stop,
		sources:   map[string]*source{},
		listeners: map[string]*metricsServer{},
	}, nil
}

// New is the go-pdk constructor of plugin instances bound to n: pass it to
// server.StartServer in place of the package's New to run instances on a
// node of your own.
func (n *Node) New() interface{} { return &Config{node: n} }

// Close stops the policy watchers and metrics listeners and releases the
// engines and Redis clients. Instances of a closed node refuse requests.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.stop()
	listeners := n.listeners
	sources := n.sources
	n.listeners, n.sources = nil, nil
	n.mu.Unlock()
	var errs []error
	for _, l := range listeners {
		errs = append(errs, l.close())
	}
	n.wg.Wait() // the watchers and the listeners' Serve
	for _, s := range sources {
		s.close()
	}
	errs = append(errs, n.redis.Close())
	return errors.Join(errs...)
}

// errClosed refuses instances of a closed node.
var errClosed = errors.New("kong: the plugin server's node is closed")

// nextInstance numbers an instance Kong started without a plugin id.
func (n *Node) nextInstance() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.instances++
	return n.instances
}

// metricsServer serves the node's registry on one loopback address.
type metricsServer struct {
	srv  *http.Server
	addr string // as bound
}

func (m *metricsServer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return m.srv.Shutdown(ctx)
}

// serveMetrics starts serving /metrics on addr unless it already does. A
// failure is logged, not fatal: the instance enforces its policy either
// way, and a later instance naming the address tries again.
func (n *Node) serveMetrics(addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed || n.listeners[addr] != nil {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		n.log.Error("cannot serve metrics", "metrics_address", addr, "err", err.Error())
		return
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", n.metrics.HTTP().Handler())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	n.listeners[addr] = &metricsServer{srv: srv, addr: ln.Addr().String()}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("metrics listener stopped", "metrics_address", addr, "err", err.Error())
		}
	}()
	n.log.Info("serving metrics", "metrics_address", addr, "listening", ln.Addr().String())
}

// MetricsAddr returns the address the listener for a configured
// metrics_address is bound to (its port, when configured as 0), or "" when
// none is serving.
func (n *Node) MetricsAddr(configured string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if l := n.listeners[configured]; l != nil {
		return l.addr
	}
	return ""
}
