// Package host runs the backend's http.Handler where it is deployed: as a
// plain HTTP server with timeouts and graceful shutdown (locally, in
// containers, on Cloud Run/Knative via PORT, as an Azure Functions custom
// handler via FUNCTIONS_CUSTOMHANDLER_PORT) or inside AWS Lambda
// (AWS_LAMBDA_FUNCTION_NAME) through the lambda adapter.
package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	awslambda "github.com/aws/aws-lambda-go/lambda"

	"github.com/contentguard/contentguard/backend/lambda"
)

// DefaultListen is the address when neither a flag nor the platform says.
const DefaultListen = "127.0.0.1:8081"

// Mode is where the process runs.
type Mode string

// Modes, in the order Detect checks them.
const (
	ModeLambda Mode = "lambda"
	ModeAzure  Mode = "azure-functions"
	ModePort   Mode = "port" // Cloud Run, Knative, Heroku-style PORT
	ModeListen Mode = "listen"
)

// Detect picks the mode and listen address from an explicit --listen value
// (empty when the flag was not given) and the environment (getenv):
//
//  1. AWS_LAMBDA_FUNCTION_NAME set → Lambda (no listener at all);
//  2. an explicit --listen → that address (the operator's word wins);
//  3. FUNCTIONS_CUSTOMHANDLER_PORT → 127.0.0.1:<port> (the Functions host
//     forwards to loopback);
//  4. PORT → :<port> on all interfaces (Cloud Run/Knative route to it);
//  5. DefaultListen.
func Detect(listenFlag string, getenv func(string) string) (Mode, string) {
	if getenv("AWS_LAMBDA_FUNCTION_NAME") != "" {
		return ModeLambda, ""
	}
	if listenFlag != "" {
		return ModeListen, listenFlag
	}
	if p := getenv("FUNCTIONS_CUSTOMHANDLER_PORT"); p != "" {
		return ModeAzure, net.JoinHostPort("127.0.0.1", p)
	}
	if p := getenv("PORT"); p != "" {
		return ModePort, net.JoinHostPort("", p)
	}
	return ModeListen, DefaultListen
}

// Options tune the HTTP server; zero fields take the defaults below.
type Options struct {
	ReadHeaderTimeout time.Duration // default 10s (slow-loris bound)
	ReadTimeout       time.Duration // default 30s (whole request, body included)
	WriteTimeout      time.Duration // default 60s (longest analysis + write)
	IdleTimeout       time.Duration // default 120s
	MaxHeaderBytes    int           // default 64 KiB
	ShutdownTimeout   time.Duration // default 20s to let in-flight requests finish
	Logger            *slog.Logger
	// Ready, if set, receives the bound address once listening (tests, cold-start timing).
	Ready func(addr net.Addr)
}

func (o *Options) defaults() {
	if o.ReadHeaderTimeout == 0 {
		o.ReadHeaderTimeout = 10 * time.Second
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = 30 * time.Second
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 60 * time.Second
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 120 * time.Second
	}
	if o.MaxHeaderBytes == 0 {
		o.MaxHeaderBytes = 64 << 10
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 20 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Run serves h in mode until ctx is cancelled, then shuts down gracefully.
func Run(ctx context.Context, mode Mode, addr string, h http.Handler, opts Options) error {
	opts.defaults()
	if mode == ModeLambda {
		opts.Logger.InfoContext(ctx, "serving AWS Lambda events")
		awslambda.StartWithOptions(lambda.New(h), awslambda.WithContext(ctx))
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("host: listen on %s: %w", addr, err)
	}
	return Serve(ctx, ln, h, opts)
}

// Serve runs an http.Server on ln until ctx is cancelled; then it stops
// accepting, lets in-flight requests finish for up to ShutdownTimeout, and
// returns. A serve error other than a clean close is returned.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, opts Options) error {
	opts.defaults()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		ReadTimeout:       opts.ReadTimeout,
		WriteTimeout:      opts.WriteTimeout,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    opts.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	opts.Logger.InfoContext(ctx, "listening", "addr", ln.Addr().String())
	if opts.Ready != nil {
		opts.Ready(ln.Addr())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("host: serve: %w", err)
	case <-ctx.Done():
	}
	opts.Logger.Info("shutting down", "grace", opts.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), opts.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("host: graceful shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("host: serve: %w", err)
	}
	return nil
}
