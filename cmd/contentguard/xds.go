package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/internal/buildinfo"
	"github.com/contentguard/contentguard/sidecar/extauthz"
	"github.com/contentguard/contentguard/sidecar/xdsclient"
	"github.com/contentguard/contentguard/telemetry"
	"github.com/contentguard/contentguard/xds"
)

const xdsHelp = `Usage: contentguard xds --policy FILE|DIR --listen ADDR [flags]

Serves policies over xDS (ADS, State of the World and Delta) to Envoy
sidecars (Envoy resources enforcing the policy through ext_authz), gRPC
clients (xds:///<policy name>) and contentguard sidecars (--xds ADDR),
see docs/envoy.md.

--policy is one file, served to every node, or a directory: a node gets
DIR/<node id>.yaml, else DIR/<node cluster>.yaml, else DIR/default.yaml
(.yml and .json too). Files are polled every --watch-interval; a change is
pushed to the nodes it applies to; a refused file keeps its last good
policy, and says why in the log, in xds_policy_errors_total and on
GET /admin/xds.

Admin API (on --admin): /healthz, /readyz, /metrics, GET /admin/xds.

Flags:
`

func runXDS(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("xds", flag.ContinueOnError)
	fs.SetOutput(stderr)
	policyPath := fs.String("policy", "", "policy file or directory; required")
	listen := fs.String("listen", ":18000", "gRPC listen address of the ADS server")
	adminAddr := fs.String("admin", "127.0.0.1:9902", "admin listen address (keep it private); empty: none")
	envoyListen := fs.String("envoy-listen", xds.DefaultListenAddress, "the address Envoy's public listener binds (host:port)")
	authzAddr := fs.String("ext-authz-addr", xds.DefaultExtAuthzAddr, "where Envoy reaches contentguard sidecar --ext-authz (IP:port; the sidecar in its pod)")
	interval := fs.Duration("watch-interval", time.Second, "how often the policy files are polled")
	logLevel := fs.String("log-level", envOr("LOG_LEVEL", "info"), "log level: debug, info, warn, error")
	fs.Usage = func() {
		fmt.Fprint(stdout, xdsHelp)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if *policyPath == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "contentguard xds: --policy FILE|DIR is required")
		return 2
	}
	logger := telemetry.NewLogger(stderr, telemetry.ParseLevel(*logLevel))
	src, err := xds.NewSource(*policyPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	reg := telemetry.NewRegistry()
	srv, err := xds.NewServer(xds.ServerOptions{
		Source:   src,
		Envoy:    xds.Options{ListenAddress: *envoyListen, ExtAuthz: *authzAddr},
		Logger:   logger,
		Registry: reg,
		Context:  ctx, // on SIGTERM the nodes' streams end, and GracefulStop with them
	})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, e := range src.Entries() {
		// Refuse at start what no Envoy could be served: better now than
		// at the first node.
		if _, err := xds.Envoy(e.Policy, xds.Options{ListenAddress: *envoyListen, ExtAuthz: *authzAddr}); err != nil {
			logger.Warn("this policy cannot be served to Envoy nodes (contentguard sidecars still get it)", "file", e.File, "err", err.Error())
		}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		logger.Error("listen", "addr", *listen, "err", err)
		return 1
	}
	g := newGRPCServer(xds.GRPCServerOptions()...)
	srv.Register(g)
	go srv.Watch(ctx, *interval)
	if *adminAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /admin/xds", srv.AdminHandler())
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
			if len(src.Entries()) == 0 {
				http.Error(w, "no good policy", http.StatusServiceUnavailable)
				return
			}
			_, _ = io.WriteString(w, "ready\n")
		})
		stop, err := serveHTTP(ctx, *adminAddr, &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10}, logger, "the xds admin API")
		if err != nil {
			logger.Error("listen", "addr", *adminAddr, "err", err)
			return 1
		}
		defer stop()
	}
	logger.Info("serving xDS", "listen", ln.Addr().String(), "policy", *policyPath, "policies", len(src.Entries()), "version", buildinfo.Version())
	return serveGRPC(ctx, g, ln, logger)
}

// newGRPCServer is a gRPC server with the limits every contentguard gRPC
// listener has: bounded messages and streams, keepalive both ways (dead
// peers are found, abusive pings refused), a connection timeout; and the
// options of the service it serves.
func newGRPCServer(service ...grpc.ServerOption) *grpc.Server {
	return grpc.NewServer(append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(4 << 20),
		grpc.MaxConcurrentStreams(1000),
		grpc.ConnectionTimeout(10 * time.Second),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}, service...)...)
}

// serveGRPC serves g on ln until ctx ends, then stops it gracefully
// (streams get 5 s).
func serveGRPC(ctx context.Context, g *grpc.Server, ln net.Listener, logger *slog.Logger) int {
	failed := make(chan error, 1)
	go func() { failed <- g.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-failed:
		if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			logger.Error("gRPC server stopped", "err", err)
			return 1
		}
		return 0
	}
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		g.Stop()
	}
	return 0
}

// serveHTTP serves srv (its timeouts and handler set) on addr until the
// returned stop is called; requests get ctx as their base context.
func serveHTTP(ctx context.Context, addr string, srv *http.Server, logger *slog.Logger, what string) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv.BaseContext = func(net.Listener) context.Context { return ctx }
	go func() {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			logger.Error(what+" stopped", "err", err)
		}
	}()
	logger.Info("serving "+what, "addr", ln.Addr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}

// serveExtAuthz runs Envoy's ext_authz and access-log services over the
// engine in force on addr, until the returned stop is called; bound is the
// address it listens on. The end of ctx does not stop them: Envoy goes on
// asking through the sidecar's drain, and a refused Check is a refused
// request.
func serveExtAuthz(ctx context.Context, addr string, engine func() *edge.Engine, reg prometheus.Registerer, logger *slog.Logger) (bound string, stop func(), err error) {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	// On stop Envoy's access-log streams end, and GracefulStop with them.
	s, err := extauthz.New(extauthz.Options{Engine: engine, Logger: logger, Registry: reg, Context: rctx})
	if err != nil {
		cancel()
		return "", nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		cancel()
		return "", nil, err
	}
	g := newGRPCServer()
	s.Register(g)
	go s.Run(rctx, 100*time.Millisecond)
	done := make(chan struct{})
	go func() { serveGRPC(rctx, g, ln, logger); close(done) }()
	logger.Info("serving Envoy ext_authz and access-log services", "addr", ln.Addr().String())
	return ln.Addr().String(), func() { cancel(); <-done }, nil
}

// xdsPolicy makes the client that takes the sidecar's policy from the
// control plane, and the handoff that gives the first one to start with.
func xdsPolicy(server, node, cluster, baseDir string, logger *slog.Logger) (*xdsclient.Client, *xdsclient.Handoff, error) {
	h, err := xdsclient.NewHandoff(server, baseDir)
	if err != nil {
		return nil, nil, err
	}
	c, err := xdsclient.New(xdsclient.Options{Server: server, NodeID: node, Cluster: cluster, Version: buildinfo.Version(), Apply: h.Apply, Logger: logger})
	if err != nil {
		return nil, nil, err
	}
	return c, h, nil
}
