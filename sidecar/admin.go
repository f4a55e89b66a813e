package sidecar

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/contentguard/contentguard/edge/breaker"
)

// AdminHandler returns the admin API. Serve it on a private listener only
// (Serve never puts it on the public one):
//
//	GET  /healthz                 200 while the process runs, with Options.Version
//	GET  /readyz                  200 with a policy loaded, every JWT provider's keys in (unless
//	                              jwks.readyWithoutKeys) and not draining, else 503
//	GET  /metrics                 Prometheus exposition of Options.Registry
//	GET  /admin/breakers          the circuit breakers, as JSON
//	POST /admin/breakers/reset    close every breaker, or ?name=X only (404 if unknown)
//	GET  /admin/policy            name, version, hash, source, loaded_at of the policy in force
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.opts.Version})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		var awaiting []string
		if pl := s.state.Load(); pl != nil {
			awaiting = pl.engine.AwaitingKeys()
		}
		switch {
		case s.draining.Load():
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
		case s.closed.Load() || s.state.Load() == nil:
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
		case len(awaiting) > 0:
			// Tokens of these providers would be refused with no_keys.
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "awaiting keys", "providers": awaiting})
		default:
			writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		}
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /admin/breakers", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"breakers": breakersJSON(s.breakers.Snapshot())})
	})
	mux.HandleFunc("POST /admin/breakers/reset", func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("name")
		if name == "" {
			s.breakers.ResetAll()
			writeJSON(w, http.StatusOK, map[string]any{"reset": "all"})
			return
		}
		if !s.breakers.Reset(name) {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": "no breaker named " + name})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"reset": name})
	})
	mux.HandleFunc("GET /admin/policy", func(w http.ResponseWriter, r *http.Request) {
		pl := s.state.Load()
		p := pl.policy
		writeJSON(w, http.StatusOK, policyJSON{
			Name:     p.Metadata.Name,
			Version:  p.Metadata.Version,
			Hash:     p.Hash,
			Source:   p.Source,
			LoadedAt: pl.loadedAt.UTC().Format(time.RFC3339Nano),
			Upstream: pl.target.scheme + "://" + pl.target.host + pl.target.base,
			Routes:   len(p.Spec.Routes),
		})
	})
	if s.opts.Profiling {
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
