package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/contentguard/contentguard/internal/syncbuf"
)

// TestHealthcheck: 0 only when every URL answers 2xx; a 503, a redirect, a
// closed port or a URL that is not http(s) is 1 with the reason on stderr.
func TestHealthcheck(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /down", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("GET /moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	closed := "http://127.0.0.1:" + itoa(freePort(t)) + "/health"

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{srv.URL + "/ok"}, 0, ""},
		{[]string{srv.URL + "/ok", srv.URL + "/ok"}, 0, ""},
		{[]string{srv.URL + "/ok", srv.URL + "/down"}, 1, "503 Service Unavailable"},
		{[]string{srv.URL + "/moved"}, 1, "302 Found"},
		{[]string{closed}, 1, "connection refused"},
		{[]string{"ftp://127.0.0.1/x"}, 1, "not an http(s) URL"},
		{[]string{"--timeout", "nonsense"}, 2, "invalid value"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"healthcheck"}, tc.args...), &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("healthcheck %q: exit %d, stderr %q; want %d and %q", tc.args, code, errb.String(), tc.code, tc.want)
		}
	}
}

// TestHealthcheckDefaultAsksTheBackend: without a URL it asks /health of
// the backend at $PORT — a real backend, as the image runs it.
func TestHealthcheckDefaultAsksTheBackend(t *testing.T) {
	if got := defaultHealthURL(func(string) string { return "" }); got != "http://127.0.0.1:8081/health" {
		t.Fatalf("default without PORT: %s", got)
	}
	t.Setenv("REDIS_URL", "")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("AWS_LAMBDA_FUNCTION_NAME", "")
	t.Setenv("FUNCTIONS_CUSTOMHANDLER_PORT", "")
	port := itoa(freePort(t))
	t.Setenv("PORT", port)
	var errb bytes.Buffer
	if code := run(context.Background(), []string{"healthcheck"}, &bytes.Buffer{}, &errb); code != 1 || !strings.Contains(errb.String(), "127.0.0.1:"+port+"/health") {
		t.Fatalf("with nothing listening: exit %d, %s", code, errb.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &syncbuf.Buffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"backend", "--log-level", "info"}, &bytes.Buffer{}, stderr) }()
	addr := logField(t, stderr, "ready", "addr")
	if _, p, _ := net.SplitHostPort(addr); p != port {
		t.Fatalf("backend listens on %s, not on $PORT %s", addr, port)
	}
	errb.Reset()
	if code := run(context.Background(), []string{"healthcheck"}, &bytes.Buffer{}, &errb); code != 0 {
		t.Fatalf("healthcheck of a running backend: exit %d, %s", code, errb.String())
	}
	cancel()
	<-done
}
