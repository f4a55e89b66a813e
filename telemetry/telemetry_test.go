package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/attribute"

	"github.com/contentguard/contentguard/internal/polltest"
	"github.com/contentguard/contentguard/internal/stacktest"
	"github.com/contentguard/contentguard/internal/syncbuf"
	"github.com/contentguard/contentguard/telemetry/otlptest"
)

func TestLoggerAddsRequestIDFromContext(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(&buf, slog.LevelInfo).With("component", "test")
	log.InfoContext(ContextWithRequestID(context.Background(), "abc-123"), "hello", "n", 1)
	log.DebugContext(context.Background(), "dropped")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("not one JSON line: %q: %v", buf.String(), err)
	}
	if rec["request_id"] != "abc-123" || rec["msg"] != "hello" || rec["component"] != "test" {
		t.Fatalf("record = %v", rec)
	}
}

func TestParseLevel(t *testing.T) {
	if ParseLevel("debug") != slog.LevelDebug || ParseLevel("WARN") != slog.LevelWarn || ParseLevel("nonsense") != slog.LevelInfo {
		t.Fatal("ParseLevel")
	}
}

var uuidv7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestRequestIDMiddleware(t *testing.T) {
	var seen string
	h := RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = RequestIDFromContext(r.Context())
	}))
	cases := []struct {
		in   string
		keep bool
	}{
		{"edge-42.a:b_c", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"", false},
		{"has space", false},
		{"quote\"", false},
		{"line\nbreak", false},
		{"ünicode", false},
	}
	for _, c := range cases {
		req := httptest.NewRequest("GET", "/", nil)
		if c.in != "" {
			req.Header.Set(RequestIDHeader, c.in)
		}
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, req)
		echoed := rr.Header().Get(RequestIDHeader)
		if echoed != seen {
			t.Fatalf("%q: echoed %q, context %q", c.in, echoed, seen)
		}
		if c.keep && echoed != c.in {
			t.Fatalf("%q: replaced by %q", c.in, echoed)
		}
		if !c.keep && !uuidv7.MatchString(echoed) {
			t.Fatalf("%q: generated %q is not a UUIDv7", c.in, echoed)
		}
	}
}

func TestNewRequestIDIsUniqueAndOrdered(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	for i := 0; i < 1000; i++ {
		id := NewRequestID()
		if seen[id] || !uuidv7.MatchString(id) {
			t.Fatalf("bad or duplicate id %q", id)
		}
		// The first 12 hex digits are milliseconds: never decreasing.
		if prev != "" && id[:13] < prev[:13] {
			t.Fatalf("time went backwards: %s after %s", id, prev)
		}
		seen[id], prev = true, id
	}
}

func TestMetricsUseRoutePatternNotPath(t *testing.T) {
	reg := NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Fatal("second registration on one registry must fail")
	}
	mux := http.NewServeMux()
	mux.Handle("GET /items/{id}", Route("GET /items/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})))
	var logBuf bytes.Buffer
	h := RequestID(m.Middleware(AccessLog(NewLogger(&logBuf, slog.LevelInfo))(mux)))
	for _, p := range []string{"/items/1", "/items/2", "/nope/1", "/nope/2"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
	}
	req := httptest.NewRequest("BREW", "/items/3", nil)
	h.ServeHTTP(httptest.NewRecorder(), req)

	if got := testutil.ToFloat64(m.requests.WithLabelValues("GET", "/items/{id}", "418")); got != 2 {
		t.Fatalf("pattern count = %v", got)
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("GET", UnmatchedRoute, "404")); got != 2 {
		t.Fatalf("unmatched count = %v", got)
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("OTHER", UnmatchedRoute, "405")); got != 1 {
		t.Fatalf("odd method count = %v", got)
	}
	if n := testutil.CollectAndCount(m.requests); n != 3 {
		t.Fatalf("%d series, want 3 (raw paths must not become labels)", n)
	}
	lines := strings.Split(strings.TrimSpace(logBuf.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d access log lines", len(lines))
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first["route"] != "/items/{id}" || first["status"] != float64(418) || first["request_id"] == nil {
		t.Fatalf("access log = %v", first)
	}

	rr := httptest.NewRecorder()
	m.Handler().ServeHTTP(rr, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rr.Body)
	if !bytes.Contains(body, []byte(`http_requests_total{method="GET",route="/items/{id}",status="418"} 2`)) {
		t.Fatalf("exposition lacks the series:\n%s", body)
	}
}

func TestTracingExportsServerAndChildSpansWithParent(t *testing.T) {
	recv := otlptest.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "")
	tr, err := SetupTracing(context.Background(), "svc-test", "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Exporting() {
		t.Fatal("endpoint set but not exporting")
	}
	mux := http.NewServeMux()
	mux.Handle("POST /work/{id}", Route("POST /work/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, span := tr.Tracer("test").Start(r.Context(), "work")
		span.SetAttributes(attribute.Int("word_count", 7))
		span.End()
	})))
	h := RequestID(tr.Middleware(mux))
	req := httptest.NewRequest("POST", "/work/9", nil)
	const parentTrace, parentSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req.Header.Set("traceparent", "00-"+parentTrace+"-"+parentSpan+"-01")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := recv.Spans()
	if len(spans) != 2 {
		t.Fatalf("got %d spans: %+v", len(spans), spans)
	}
	var server, child otlptest.Span
	for _, s := range spans {
		if s.Name == "work" {
			child = s
		} else {
			server = s
		}
	}
	if server.Name != "POST /work/{id}" || server.Attributes["http.route"] != "/work/{id}" {
		t.Fatalf("server span = %+v", server)
	}
	if server.TraceID != parentTrace || server.ParentSpanID != parentSpan {
		t.Fatalf("server span does not continue the traceparent: %+v", server)
	}
	if child.TraceID != parentTrace || child.ParentSpanID != server.SpanID || child.Attributes["word_count"] != int64(7) {
		t.Fatalf("child span = %+v (server %s)", child, server.SpanID)
	}
	if server.Resource["service.name"] != "svc-test" || server.Resource["service.version"] != "1.2.3" {
		t.Fatalf("resource = %v", server.Resource)
	}
}

func TestTracingWithoutEndpointStillPropagates(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tr, err := SetupTracing(context.Background(), "svc", "v")
	if err != nil || tr.Exporting() {
		t.Fatalf("err=%v exporting=%v", err, tr.Exporting())
	}
	var got string
	h := tr.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		carrier := http.Header{}
		tr.Propagator.Inject(r.Context(), propagationCarrier(carrier))
		got = carrier.Get("traceparent")
	}))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if !strings.Contains(got, "4bf92f3577b34da6a3ce929d0e0e4736") {
		t.Fatalf("outgoing traceparent %q lost the trace", got)
	}
}

func TestTracingRefusesGRPC(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	if _, err := SetupTracing(context.Background(), "svc", "v"); err == nil {
		t.Fatal("grpc accepted")
	}
}

// FuzzRequestID: whatever the client sends, the ID in the context and on
// the response is well-formed, and a well-formed one is kept as is.
func FuzzRequestID(f *testing.F) {
	for _, s := range []string{"abc", "", "a b", "01a21cbe-f458-7b79-8f27-aad19879684c", strings.Repeat("x", 200), "\x00", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var seen string
		h := RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = RequestIDFromContext(r.Context()) }))
		req := httptest.NewRequest("GET", "/", nil)
		req.Header["X-Request-Id"] = []string{in}
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, req)
		out := rr.Header().Get(RequestIDHeader)
		if out != seen || !ValidRequestID(out) {
			t.Fatalf("in %q: out %q seen %q", in, out, seen)
		}
		if ValidRequestID(in) && out != in {
			t.Fatalf("well-formed %q replaced by %q", in, out)
		}
	})
}

func TestBufferedWriterFlushesOnCloseAndInterval(t *testing.T) {
	var out syncbuf.Buffer
	w := NewBufferedWriter(&out, 1<<10, time.Hour)
	_, _ = w.Write([]byte("one\n"))
	if out.String() != "" {
		t.Fatal("written through before a flush")
	}
	_, _ = w.Write(bytes.Repeat([]byte("x"), 2<<10)) // past the buffer's size: flushed soon, not each hour
	if !polltest.Until(5*time.Second, func() bool { return strings.HasPrefix(out.String(), "one\nxx") }) {
		t.Fatalf("a full buffer was not written: %q", out.String()[:min(10, len(out.String()))])
	}
	_, _ = w.Write([]byte("last\n"))
	if err := w.Close(); err != nil || !strings.HasSuffix(out.String(), "last\n") {
		t.Fatalf("close did not flush: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal("second close:", err)
	}

	var timed syncbuf.Buffer
	tw := NewBufferedWriter(&timed, 1<<10, time.Millisecond)
	defer tw.Close()
	_, _ = tw.Write([]byte("soon\n"))
	if !polltest.Until(5*time.Second, func() bool { return timed.String() == "soon\n" }) {
		t.Fatal("the interval flush never came")
	}
}

// gate is a writer that blocks until opened, like a stalled stderr pipe.
type gate struct {
	open chan struct{}
	out  syncbuf.Buffer
}

func (g *gate) Write(p []byte) (int, error) {
	<-g.open
	return g.out.Write(p)
}

// waitingForRoom counts the goroutines blocked in BufferedWriter.Write
// until the buffer has room.
func waitingForRoom() int {
	return stacktest.Count("sync.(*Cond).Wait", "telemetry.(*BufferedWriter).Write")
}

// TestBufferedWriterIsBoundedAndKeepsOrder: lines from many goroutines
// arrive whole, none lost, each goroutine's in order; while the output is
// stalled, writers block once 4×size bytes wait instead of growing the
// buffer, and resume when it drains.
func TestBufferedWriterIsBoundedAndKeepsOrder(t *testing.T) {
	g := &gate{open: make(chan struct{})}
	w := NewBufferedWriter(g, 1<<10, time.Millisecond)
	const writers, lines = 8, 500
	var wg sync.WaitGroup
	var written atomic.Int64
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < lines; j++ {
				n, _ := fmt.Fprintf(w, "w%d %04d %s\n", i, j, strings.Repeat("p", 40))
				written.Add(int64(n))
			}
		}()
	}
	// Stalled: the writers must stop near the bound, not run to the end.
	if !polltest.Until(5*time.Second, func() bool { return written.Load() >= 4<<10 }) {
		t.Fatalf("writers stopped early: %d bytes", written.Load())
	}
	// Every writer has run into the bound and waits for room: none can
	// accept another byte until the output drains.
	if !polltest.Until(10*time.Second, func() bool { return waitingForRoom() == writers }) {
		t.Fatalf("%d of %d writers wait for room; %d bytes accepted", waitingForRoom(), writers, written.Load())
	}
	// 4×size waiting, plus the batch stuck in the write, plus a line each.
	if n := written.Load(); n > 8<<10+writers*64 {
		t.Fatalf("%d bytes accepted while the output was stalled; bound is about %d", n, 8<<10)
	}
	close(g.open)
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	got := strings.Split(strings.TrimSuffix(g.out.String(), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("%d lines, want %d", len(got), writers*lines)
	}
	for _, l := range got {
		var i, j int
		var pad string
		if _, err := fmt.Sscanf(l, "w%d %d %s", &i, &j, &pad); err != nil || len(pad) != 40 || j != next[i] {
			t.Fatalf("line %q: %v (want w%d line %d)", l, err, i, next[i])
		}
		next[i]++
	}
}

// TestChildrenCache: Get creates a child once per key and returns the same
// one after; Record through the cache counts into the registry.
func TestChildrenCache(t *testing.T) {
	var c Children[string, *int]
	made := 0
	create := func() *int { made++; v := made; return &v }
	a, b := c.Get("x", create), c.Get("x", create)
	if a != b || made != 1 || *c.Get("y", create) != 2 || made != 2 {
		t.Fatalf("made %d", made)
	}
	for i := 0; i < maxChildren+10; i++ {
		c.Get(strconv.Itoa(i), create)
	}
	if len(c.m) != maxChildren {
		t.Fatalf("cache holds %d, bound %d", len(c.m), maxChildren)
	}
}
