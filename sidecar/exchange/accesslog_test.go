package exchange

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// TestAccessLogMatchesSlog: the directly encoded access line decodes to the
// same JSON object as the line slog's JSONHandler writes for the same entry
// (bar the time, which each takes itself), whatever the strings hold.
func TestAccessLogMatchesSlog(t *testing.T) {
	tricky := []string{
		"", "plain", `quote " and back\slash`, "tab\tnew\nline\rcr", "\x00\x01\x1f\x7f",
		"caf\u00e9 \u65e5\u672c", "bad utf-8 \xff\xfe end", "\u2028 and \u2029", "<html>&amp;",
		"emoji \U0001F600", "trunc \xe6\x97",
	}
	for _, s := range tricky {
		e := accessEntry{
			requestID: s, method: "GET", path: "/p/" + s, route: s, decision: "allow", reason: "allowed",
			status: 503, latency: 1234567 * time.Nanosecond, clientIP: "::1", subject: s, bytes: 42,
		}
		var direct, viaSlog bytes.Buffer
		logger := slog.New(slog.NewJSONHandler(&viaSlog, nil))
		newAccessLog(&direct, logger).log(context.Background(), &e)
		e.slog(context.Background(), logger)
		if n := bytes.Count(direct.Bytes(), []byte("\n")); n != 1 || !bytes.HasSuffix(direct.Bytes(), []byte("\n")) {
			t.Fatalf("%q: not one line: %q", s, direct.String())
		}
		var a, b map[string]any
		if err := json.Unmarshal(direct.Bytes(), &a); err != nil {
			t.Fatalf("%q: direct line is not JSON: %v\n%s", s, err, direct.String())
		}
		if err := json.Unmarshal(viaSlog.Bytes(), &b); err != nil {
			t.Fatal(err)
		}
		for _, m := range []map[string]any{a, b} {
			if _, err := time.Parse(time.RFC3339Nano, m["time"].(string)); err != nil {
				t.Fatalf("time %v: %v", m["time"], err)
			}
			delete(m, "time")
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%q:\n direct %v\n slog   %v", s, a, b)
		}
		if a["level"] != "ERROR" {
			t.Errorf("a 503 is logged at %v, want ERROR", a["level"])
		}
	}
}

// TestAccessLogLevelAndTrace: the logger's level filters direct lines too,
// and a span in the context adds its trace and span IDs.
func TestAccessLogLevelAndTrace(t *testing.T) {
	var out bytes.Buffer
	warn := slog.New(slog.NewJSONHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a := newAccessLog(&out, warn)
	a.log(context.Background(), &accessEntry{status: 200})
	if out.Len() != 0 {
		t.Fatalf("an info line passed a warn logger: %s", out.String())
	}
	a.log(context.Background(), &accessEntry{status: 502})
	if out.Len() == 0 {
		t.Fatal("an error line was dropped")
	}

	out.Reset()
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5}, TraceFlags: trace.FlagsSampled,
	})
	info := slog.New(slog.NewJSONHandler(&bytes.Buffer{}, nil))
	newAccessLog(&out, info).log(context.Background(), &accessEntry{status: 200, span: sc})
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m["trace_id"] != sc.TraceID().String() || m["span_id"] != sc.SpanID().String() {
		t.Fatalf("trace fields: %v", m)
	}
}

func BenchmarkAccessLog(b *testing.B) {
	e := accessEntry{
		time: time.Now(), requestID: "01a21d2c-ecf7-7342-9d63-5370b403d571", method: "GET", path: "/api/v1/analyze",
		route: "analyze", decision: "allow", reason: "allowed", status: 200, latency: 2177797,
		clientIP: "10.1.2.3", subject: "user-123", bytes: 243,
	}
	var sink bytes.Buffer
	b.Run("direct", func(b *testing.B) {
		a := newAccessLog(&sink, slog.New(slog.DiscardHandler))
		a.enabled = func(context.Context, slog.Level) bool { return true }
		b.ReportAllocs()
		for b.Loop() {
			sink.Reset()
			a.log(context.Background(), &e)
		}
	})
	b.Run("slog", func(b *testing.B) {
		logger := slog.New(slog.NewJSONHandler(&sink, nil))
		b.ReportAllocs()
		for b.Loop() {
			sink.Reset()
			e.slog(context.Background(), logger)
		}
	})
}
