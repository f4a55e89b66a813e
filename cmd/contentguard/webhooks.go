package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/contentguard/contentguard/backend/api"
	"github.com/contentguard/contentguard/backend/host"
	"github.com/contentguard/contentguard/backend/webhook"
	"github.com/contentguard/contentguard/backend/webhook/redisstore"
)

// webhookFlags are the backend's webhook settings.
type webhookFlags struct {
	allowPrivate  bool
	queueSize     int
	senders       int
	bodySignature bool
	timeout       time.Duration
}

// newWebhooks builds the webhook registry and the deliverer (sending from
// this process), counting into srv's metrics: endpoints and deliveries in
// Redis when rdb is given, shared with every replica and worker, else in
// this process's memory.
func newWebhooks(srv *api.Server, rdb *redis.Client, f webhookFlags, logger *slog.Logger) (*webhook.Registry, *webhook.Deliverer, error) {
	guard := webhook.Guard{AllowPrivate: f.allowPrivate}
	ropts := webhook.RegistryOptions{Guard: guard}
	if rdb != nil {
		ropts.Store = redisstore.New(rdb, redisstore.Options{})
	}
	obs, err := srv.WebhooksObserver()
	if err != nil {
		return nil, nil, err
	}
	reg := webhook.NewRegistry(ropts)
	d := webhook.NewDeliverer(reg, webhook.DelivererOptions{
		Guard: guard, QueueSize: f.queueSize, Workers: f.senders, OmitBodySignature: !f.bodySignature, Timeout: f.timeout,
		Observer: obs, Logger: logger,
	})
	return reg, d, nil
}

// serveMetrics serves reg on addr's /metrics until ctx ends or stop is
// called; an empty addr serves nothing.
func serveMetrics(ctx context.Context, addr string, reg *prometheus.Registry, logger *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := host.Serve(ctx, ln, mux, host.Options{Logger: logger, ShutdownTimeout: 5 * time.Second})
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics listener stopped", "err", err)
		}
	}()
	logger.Info("serving metrics", "addr", ln.Addr().String())
	return func() { cancel(); <-done }, nil
}
