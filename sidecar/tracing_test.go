package sidecar_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/contentguard/contentguard/backend/api"
	"github.com/contentguard/contentguard/sidecar"
	"github.com/contentguard/contentguard/telemetry"
	"github.com/contentguard/contentguard/telemetry/otlptest"
)

// TestOneTraceAcrossSidecarAndBackend: a request through the sidecar to the
// real backend handler yields one trace: the sidecar's server span, its
// client span as the child, and the backend's server span under that —
// carried by the traceparent the sidecar sends upstream. A client's own
// traceparent is continued, on the fast path and through net/http alike.
func TestOneTraceAcrossSidecarAndBackend(t *testing.T) {
	for _, netHTTP := range []bool{false, true} {
		for _, incoming := range []bool{false, true} {
			name := fmt.Sprintf("nethttp=%v/incoming=%v", netHTTP, incoming)
			t.Run(name, func(t *testing.T) { oneTrace(t, netHTTP, incoming) })
		}
	}
}

func oneTrace(t *testing.T, netHTTP, incoming bool) {
	recv := otlptest.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "")
	ctx := context.Background()
	beTracing, err := telemetry.SetupTracing(ctx, "backend-test", "t")
	if err != nil {
		t.Fatal(err)
	}
	scTracing, err := telemetry.SetupTracing(ctx, "sidecar-test", "t")
	if err != nil {
		t.Fatal(err)
	}
	be, err := api.New(api.Config{Tracing: beTracing})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	beSrv := &http.Server{Handler: be.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = beSrv.Serve(ln) }()
	t.Cleanup(func() { _ = beSrv.Close() })

	p := parsePolicy(t, `
apiVersion: contentguard.dev/v1
kind: EdgePolicy
metadata: {name: traced}
spec:
  upstream: {url: http://127.0.0.1:9, timeout: 5s}
  routes:
    - name: health
      match: {path: /health}
      auth: none
`)
	sc := startSidecar(t, sidecar.Options{Policy: p, Upstream: "http://" + ln.Addr().String(), Tracing: scTracing, DisableFastPath: netHTTP})
	const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	var h http.Header
	if incoming {
		h = http.Header{"Traceparent": {"00-" + clientTrace + "-00f067aa0ba902b7-01"}}
	}
	r := get(t, sc.addr, "/health", "", h)
	if r.Status != 200 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	sc.stop()
	for _, tr := range []*telemetry.Tracing{scTracing, beTracing} {
		if err := tr.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var server, client, backend *otlptest.Span
	spans := recv.Spans()
	for i := range spans {
		s := &spans[i]
		switch {
		case s.Resource["service.name"] == "sidecar-test" && s.Kind == tracepb.Span_SPAN_KIND_SERVER:
			server = s
		case s.Resource["service.name"] == "sidecar-test" && s.Kind == tracepb.Span_SPAN_KIND_CLIENT:
			client = s
		case s.Resource["service.name"] == "backend-test" && s.Kind == tracepb.Span_SPAN_KIND_SERVER:
			backend = s
		}
	}
	if server == nil || client == nil || backend == nil {
		t.Fatalf("missing spans: %+v", spans)
	}
	if server.TraceID != client.TraceID || client.TraceID != backend.TraceID {
		t.Fatalf("three traces, want one: %s %s %s", server.TraceID, client.TraceID, backend.TraceID)
	}
	if incoming && (server.TraceID != clientTrace || server.ParentSpanID != "00f067aa0ba902b7") {
		t.Fatalf("the client's trace was not continued: trace %s parent %s", server.TraceID, server.ParentSpanID)
	}
	if client.ParentSpanID != server.SpanID || backend.ParentSpanID != client.SpanID {
		t.Fatalf("span tree broken: server %s, client parent %s (id %s), backend parent %s",
			server.SpanID, client.ParentSpanID, client.SpanID, backend.ParentSpanID)
	}
	if server.Name != "GET health" || server.Attributes["http.route"] != "health" {
		t.Fatalf("server span = %+v", server)
	}
	if server.Attributes["contentguard.request_id"] != r.Header.Get("X-Request-ID") {
		t.Fatalf("server span request id %v, response %q", server.Attributes["contentguard.request_id"], r.Header.Get("X-Request-ID"))
	}
}
