package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/contentguard/contentguard/internal/buildinfo"
	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/policy/policyfile"
	"github.com/contentguard/contentguard/sidecar"
	"github.com/contentguard/contentguard/sidecar/xdsclient"
	"github.com/contentguard/contentguard/telemetry"
)

const sidecarHelp = `Usage: contentguard sidecar --policy FILE [flags]
       contentguard sidecar --xds ADDR --node ID [flags]

Runs the edge proxy in front of an upstream (see docs/sidecar.md): every
request is judged by the policy, then rejected with a problem document or
forwarded to spec.upstream.url (or --upstream).

The policy file is reloaded when it changes (polled every second) and on
SIGHUP; an invalid file keeps the policy in force. With --xds the policy
comes from a control plane (contentguard xds) instead: each new one is put
in force atomically or refused (NACKed with why), and the last good one
stays while the control plane is away. SIGTERM or SIGINT drain in-flight
requests, then exit.

--ext-authz ADDR serves Envoy's external authorization API
(envoy.service.auth.v3.Authorization/Check) over the same engine, and on
the same address the access-log service (envoy.service.accesslog.v3) whose
reports feed the circuit breaker (docs/envoy.md).

Admin API (on --admin only, never on the public port): /healthz, /readyz,
/metrics, GET /admin/breakers, POST /admin/breakers/reset[?name=X],
GET /admin/policy.

Environment: LOG_LEVEL, SERVICE_NAME (default contentguard-sidecar),
SERVICE_VERSION, OTEL_EXPORTER_OTLP_ENDPOINT and the other OTEL_* variables,
or OTLP_ENDPOINT (traces over OTLP/HTTP); GOGC (default 400 here) and
GOMEMLIMIT (docs/sidecar.md).

Flags:
`

func runSidecar(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sidecar", flag.ContinueOnError)
	fs.SetOutput(stderr)
	policyPath := fs.String("policy", "", "policy file (YAML or JSON); required unless --xds")
	xdsAddr := fs.String("xds", "", "take the policy from this xDS control plane (host:port) instead of --policy")
	xdsNode := fs.String("node", "", "with --xds: this sidecar's node id (the control plane maps it to a policy)")
	xdsCluster := fs.String("cluster", "", "with --xds: this sidecar's node cluster")
	baseDir := fs.String("base-dir", ".", "with --xds: the directory relative file references of the policy (JWKS, secrets) resolve against")
	xdsWait := fs.Duration("xds-wait", 30*time.Second, "with --xds: how long to wait for the first policy")
	extAuthzAddr := fs.String("ext-authz", "", "serve Envoy's ext_authz and access-log gRPC services on this address; keep it private (docs/envoy.md)")
	listen := fs.String("listen", ":8080", "public listen address")
	adminAddr := fs.String("admin", "127.0.0.1:9901", "admin listen address (keep it private)")
	authzAddr := fs.String("authz", "", "serve the NGINX auth_request endpoint (/authz, /authz/render) on this address; keep it private (docs/nginx.md)")
	authzTrusted := fs.String("authz-trusted", "", "comma-separated CIDRs NGINX connects from, trusted for X-Real-IP (default: the policy's clientIP.trustedProxies)")
	authzSecretFile := fs.String("authz-secret-file", "", "file holding the secret (at least 32 bytes) that seals rejections for /authz/render; every authz instance behind one NGINX needs the same (default: a random one per process)")
	upstream := fs.String("upstream", "", "upstream URL; overrides spec.upstream.url")
	drainTimeout := fs.Duration("drain-timeout", 20*time.Second, "grace period for in-flight requests on shutdown")
	drainDelay := fs.Duration("drain-delay", 0, "keep serving this long after /readyz turns 503, before closing the listener")
	noAccessLog := fs.Bool("no-access-log", false, "do not log one line per request")
	noFastPath := fs.Bool("no-fast-path", false, "serve every request through net/http and httputil.ReverseProxy (no own HTTP/1.1 loop)")
	withPprof := fs.Bool("pprof", false, "serve net/http/pprof under /debug/pprof/ on the admin listener")
	logLevel := fs.String("log-level", envOr("LOG_LEVEL", "info"), "log level: debug, info, warn, error")
	fs.Usage = func() {
		fmt.Fprint(stdout, sidecarHelp)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "contentguard sidecar: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if (*policyPath == "") == (*xdsAddr == "") {
		fmt.Fprintln(stderr, "contentguard sidecar: give exactly one of --policy FILE and --xds ADDR")
		return 2
	}
	if *xdsAddr != "" && *xdsNode == "" {
		fmt.Fprintln(stderr, "contentguard sidecar: --xds needs --node ID")
		return 2
	}
	// Port 0 asks for a free port: two of them are two listeners.
	if _, port, _ := net.SplitHostPort(*listen); *adminAddr != "" && *adminAddr == *listen && port != "0" {
		fmt.Fprintln(stderr, "contentguard sidecar: --admin must differ from --listen (the admin API is never public)")
		return 2
	}

	// One access-log line per request: batch them into few writes.
	logOut := telemetry.NewBufferedWriter(stderr, 64<<10, 100*time.Millisecond)
	defer logOut.Close()
	logger := telemetry.NewLogger(logOut, telemetry.ParseLevel(*logLevel))
	// go-redis logs through a process-wide logger; route it into ours (as
	// warnings: a failing Redis is also counted in ratelimit_fallbacks_total).
	redis.SetLogger(redisLogger{logger})
	if os.Getenv("GOGC") == "" {
		// A proxy's live heap is small and its garbage plentiful: collect
		// less often (the heap stays a few MiB; GOGC overrides).
		debug.SetGCPercent(400)
	}
	var (
		client  *xdsclient.Client
		handoff *xdsclient.Handoff
		p       *policy.Policy
		err     error
	)
	if *xdsAddr != "" {
		if client, handoff, err = xdsPolicy(*xdsAddr, *xdsNode, *xdsCluster, *baseDir, logger); err != nil {
			fmt.Fprintf(stderr, "contentguard sidecar: %v\n", err)
			return 2
		}
		go func() { _ = client.Run(ctx) }()
		wctx, cancel := context.WithTimeout(ctx, *xdsWait)
		p, err = handoff.First(wctx)
		cancel()
		if err != nil {
			logger.Error("no policy from the control plane", "xds", *xdsAddr, "node", *xdsNode, "err", err)
			return 1
		}
	} else if p, err = policyfile.Load(*policyPath); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	ver := envOr("SERVICE_VERSION", buildinfo.Version())
	tracing, flush, err := startTracing(ctx, logger, envOr("SERVICE_NAME", "contentguard-sidecar"), ver)
	if err != nil {
		return 1
	}
	defer flush()

	// The policy's OAuth2 token endpoint, if it has one, is served in-process
	// behind the engine. It keeps the policy it started with (users, keys):
	// restart to change them.
	reg := telemetry.NewRegistry()
	iss, closeIssuer, err := issuerFor(ctx, p, nil, reg, logger)
	if err != nil {
		logger.Error("token issuer set-up failed", "err", err)
		return 1
	}
	defer closeIssuer()
	sopts := sidecar.Options{
		Policy:     p,
		PolicyFile: *policyPath, // "" with --xds: the control plane reloads

		Upstream:         *upstream,
		Logger:           logger,
		Registry:         reg,
		Tracing:          tracing,
		DrainTimeout:     *drainTimeout,
		DrainDelay:       *drainDelay,
		DisableAccessLog: *noAccessLog,
		AccessLog:        logOut,
		DisableFastPath:  *noFastPath,
		Profiling:        *withPprof,
		Version:          ver,
	}
	if client != nil {
		reg.MustRegister(client.Collector())
		sopts.XDSStatus = func() any { return client.Status() }
	}
	withIssuer(&sopts, iss)
	srv, err := sidecar.New(ctx, sopts)
	if err != nil {
		logger.Error("sidecar set-up failed", "err", err)
		return 1
	}
	defer srv.Close()
	if handoff != nil {
		if err := handoff.Attach(srv); err != nil {
			logger.Error("policy from the control plane", "err", err)
		}
	}

	public, err := net.Listen("tcp", *listen)
	if err != nil {
		logger.Error("listen", "addr", *listen, "err", err)
		return 1
	}
	var admin net.Listener
	if *adminAddr != "" {
		if admin, err = net.Listen("tcp", *adminAddr); err != nil {
			public.Close()
			logger.Error("listen", "addr", *adminAddr, "err", err)
			return 1
		}
	}

	if *authzAddr != "" {
		h, err := authzHandler(srv, *authzTrusted, *authzSecretFile, logger)
		if err != nil {
			fmt.Fprintf(stderr, "contentguard sidecar: %v\n", err)
			return 2
		}
		stopAuthz, err := serveAuthz(ctx, *authzAddr, h, logger)
		if err != nil {
			logger.Error("listen", "addr", *authzAddr, "err", err)
			return 1
		}
		defer stopAuthz()
	}

	if *extAuthzAddr != "" {
		_, stop, err := serveExtAuthz(ctx, *extAuthzAddr, srv.Engine, reg, logger)
		if err != nil {
			logger.Error("ext_authz", "addr", *extAuthzAddr, "err", err)
			return 1
		}
		defer stop()
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = srv.Reload() // logged and counted by the server
			}
		}
	}()

	adminListen := ""
	if admin != nil {
		adminListen = admin.Addr().String()
	}
	logger.Info("starting sidecar", "policy", p.Metadata.Name, "hash", p.Hash, "listen", public.Addr().String(),
		"admin", adminListen, "version", ver, "tracing", tracing.Exporting())
	if err := srv.Serve(ctx, public, admin); err != nil {
		logger.Error("sidecar stopped", "err", err)
		return 1
	}
	return 0
}

// redisLogger adapts go-redis's logger to slog.
type redisLogger struct{ log *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.log.WarnContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
