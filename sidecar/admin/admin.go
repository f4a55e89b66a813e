// Package admin is the sidecar's admin API: health, readiness, metrics,
// the circuit breakers and the policy in force, and optionally pprof. It
// reads the sidecar through Sidecar and serves on the private listener
// only; it neither judges nor forwards requests.
package admin

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/contentguard/contentguard/edge/breaker"
	"github.com/contentguard/contentguard/sidecar/exchange"
)

// Sidecar is what the admin API reports on.
type Sidecar interface {
	// Plane returns the policy in force; nil before there is one.
	Plane() *exchange.Plane
	// Draining reports that the server is shutting down.
	Draining() bool
	// Closed reports that the server was closed.
	Closed() bool
}

// Config configures the admin handler.
type Config struct {
	Sidecar   Sidecar
	Version   string               // reported by /healthz
	Registry  *prometheus.Registry // served on /metrics
	Breakers  *breaker.Registry
	XDS       func() any // the xDS subscription's state on /admin/xds; nil: no subscription
	Profiling bool       // net/http/pprof under /debug/pprof/
}

// Handler returns the admin API. Serve it on a private listener only
// (sidecar.Serve never puts it on the public one):
//
//	GET  /healthz                 200 while the process runs, with Config.Version
//	GET  /readyz                  200 with a policy loaded, every JWT provider's keys in (unless
//	                              jwks.readyWithoutKeys) and not draining, else 503
//	GET  /metrics                 Prometheus exposition of Config.Registry
//	GET  /admin/breakers          the circuit breakers, as JSON
//	POST /admin/breakers/reset    close every breaker, or ?name=X only (404 if unknown)
//	GET  /admin/policy            name, version, hash, source, loaded_at of the policy in force
//	GET  /admin/xds               the xDS subscription (Config.XDS); 404 when the policy comes from a file
func Handler(c Config) http.Handler {
	s := c.Sidecar
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": c.Version})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		var awaiting []string
		pl := s.Plane()
		if pl != nil {
			awaiting = pl.Engine.AwaitingKeys()
		}
		switch {
		case s.Draining():
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
		case s.Closed() || pl == nil:
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
		case len(awaiting) > 0:
			// Tokens of these providers would be refused with no_keys.
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "awaiting keys", "providers": awaiting})
		default:
			writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		}
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(c.Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /admin/breakers", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"breakers": breakersJSON(c.Breakers.Snapshot())})
	})
	mux.HandleFunc("POST /admin/breakers/reset", func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("name")
		if name == "" {
			c.Breakers.ResetAll()
			writeJSON(w, http.StatusOK, map[string]any{"reset": "all"})
			return
		}
		if !c.Breakers.Reset(name) {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": "no breaker named " + name})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"reset": name})
	})
	mux.HandleFunc("GET /admin/policy", func(w http.ResponseWriter, r *http.Request) {
		pl := s.Plane()
		p := pl.Policy
		writeJSON(w, http.StatusOK, policyJSON{
			Name:     p.Metadata.Name,
			Version:  p.Metadata.Version,
			Hash:     p.Hash,
			Source:   p.Source,
			LoadedAt: pl.LoadedAt.UTC().Format(time.RFC3339Nano),
			Upstream: pl.Target.String(),
			Routes:   len(p.Spec.Routes),
		})
	})
	mux.HandleFunc("GET /admin/xds", func(w http.ResponseWriter, r *http.Request) {
		if c.XDS == nil {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": "no xDS subscription: the policy comes from a file"})
			return
		}
		writeJSON(w, http.StatusOK, c.XDS())
	})
	if c.Profiling {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

type policyJSON struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Hash     string `json:"hash"`
	Source   string `json:"source"`
	LoadedAt string `json:"loaded_at"`
	Upstream string `json:"upstream"`
	Routes   int    `json:"routes"`
}

type breakerJSON struct {
	Name                string `json:"name"`
	State               string `json:"state"`
	Requests            int    `json:"requests"`
	Failures            int    `json:"failures"`
	ConsecutiveFailures int    `json:"consecutive_failures"`
	OpenUntil           string `json:"open_until,omitempty"`
}

func breakersJSON(st []breaker.Status) []breakerJSON {
	out := make([]breakerJSON, 0, len(st))
	for _, b := range st {
		j := breakerJSON{Name: b.Name, State: b.State.String(), Requests: b.Requests, Failures: b.Failures, ConsecutiveFailures: b.ConsecutiveFailures}
		if !b.OpenUntil.IsZero() {
			j.OpenUntil = b.OpenUntil.UTC().Format(time.RFC3339Nano)
		}
		out = append(out, j)
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
