package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/contentguard/contentguard/backend/cache"
	"github.com/contentguard/contentguard/internal/redistest"
	"github.com/contentguard/contentguard/internal/syncbuf"
	"github.com/contentguard/contentguard/telemetry"
	"github.com/contentguard/contentguard/telemetry/otlptest"
)

func keys(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

func TestCompatibleRoutesAndEnvelope(t *testing.T) {
	ts := newTestServer(t, Config{Version: "9.9.9"})
	cases := []struct {
		path, body string
		fields     []string
	}{
		{"/analyze", `{"content":"The cat. The cat sat."}`, []string{"content_hash", "word_count", "character_count", "unique_words", "redundancy_score", "analysis_time", "timestamp"}},
		{"/similarity", `{"text1":"the cat sat","text2":"the cat sat down"}`, []string{"similarity_score", "is_similar", "common_words", "method", "analysis_time", "timestamp"}},
		{"/quality", `{"content":"The cat sat on the mat. It purred."}`, []string{"readability_score", "complexity_score", "quality_rating", "suggestions", "flesch_kincaid_grade", "analysis_time", "timestamp"}},
		{"/batch/process", `{"jobs":[{"operation":"analyze","input":{"content":"a b"}}]}`, []string{"batch_id", "status", "total_jobs", "completed_jobs", "failed_jobs", "progress", "results", "analysis_time", "timestamp"}},
	}
	for _, prefix := range []string{"", "/api/v1"} {
		for _, c := range cases {
			a := ts.do(t, "POST", prefix+c.path, c.body)
			if a.Status != 200 || a.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("%s%s: %d %s", prefix, c.path, a.Status, a.Raw)
			}
			if got := keys(a.Body); got != "data,error,success,timestamp" {
				t.Fatalf("envelope keys %s", got)
			}
			if a.Body["success"] != true || a.Body["error"] != nil {
				t.Fatalf("envelope %s", a.Raw)
			}
			if ts, ok := a.Body["timestamp"].(float64); !ok || ts < 1.7e9 {
				t.Fatalf("envelope timestamp %v", a.Body["timestamp"])
			}
			d := a.data(t)
			for _, f := range c.fields {
				if _, ok := d[f]; !ok {
					t.Fatalf("%s%s: data lacks %s: %s", prefix, c.path, f, a.Raw)
				}
			}
			if _, err := time.Parse(time.RFC3339Nano, d["timestamp"].(string)); err != nil || !strings.HasSuffix(d["timestamp"].(string), "Z") {
				t.Fatalf("data timestamp %v not ISO-8601 UTC", d["timestamp"])
			}
		}
		h := ts.do(t, "GET", prefix+"/health", "").data(t)
		if h["status"] != "healthy" || h["version"] != "9.9.9" {
			t.Fatalf("health %v", h)
		}
	}
}

func TestAnalyzeValues(t *testing.T) {
	ts := newTestServer(t, Config{})
	d := ts.do(t, "POST", "/analyze", `{"content":"  Hello world hello  "}`).data(t)
	// md5("Hello world hello") — the original hashed the stripped content.
	if d["content_hash"] != "df4ff7cb4984f67ef9ed589dcc4691f7" || d["word_count"] != 3.0 || d["unique_words"] != 2.0 || d["character_count"] != 21.0 {
		t.Fatalf("analyze = %v", d)
	}
	d = ts.do(t, "POST", "/analyze", `{"content":"one two three. one two three.","repeated_passages":true}`).data(t)
	rp, ok := d["repeated_passages"].(map[string]any)
	if !ok {
		t.Fatalf("repeated_passages missing: %v", d)
	}
	phrases, _ := rp["phrases"].([]any)
	if len(phrases) == 0 || phrases[0].(map[string]any)["text"] != "one two three" || phrases[0].(map[string]any)["count"] != 2.0 {
		t.Fatalf("phrases %v", rp["phrases"])
	}
	if _, ok := ts.do(t, "POST", "/analyze", `{"content":"one two three"}`).data(t)["repeated_passages"]; ok {
		t.Fatal("repeated_passages present without being asked for")
	}
}

func TestSimilarityThresholdAndMethods(t *testing.T) {
	ts := newTestServer(t, Config{})
	// ratio("abcd","abce") = 0.75: similar at 0.7, not at the default 0.8.
	if d := ts.do(t, "POST", "/similarity", `{"text1":"abcd","text2":"abce"}`).data(t); d["is_similar"] != false || d["similarity_score"] != 0.75 {
		t.Fatalf("default threshold: %v", d)
	}
	if d := ts.do(t, "POST", "/similarity", `{"text1":"abcd","text2":"abce","threshold":0.7}`).data(t); d["is_similar"] != true {
		t.Fatalf("threshold 0.7: %v", d)
	}
	for _, m := range []string{"sequence", "jaccard", "cosine"} {
		d := ts.do(t, "POST", "/api/v1/similarity", `{"text1":"red fish blue fish","text2":"blue fish red fish","method":"`+m+`"}`).data(t)
		if d["method"] != m {
			t.Fatalf("method %s: %v", m, d)
		}
	}
	for _, th := range []string{"-0.1", "1.5"} {
		a := ts.do(t, "POST", "/similarity", `{"text1":"a","text2":"b","threshold":`+th+`}`)
		if a.Status != 422 || a.Body["field"] != "threshold" {
			t.Fatalf("threshold %s: %d %s", th, a.Status, a.Raw)
		}
	}
	a := ts.do(t, "POST", "/similarity", `{"text1":"a","text2":"b","method":"levenshtein"}`)
	if a.Status != 422 || a.Body["field"] != "method" {
		t.Fatalf("bad method: %d %s", a.Status, a.Raw)
	}
}

func TestErrorsAreProblems(t *testing.T) {
	ts := newTestServer(t, Config{MaxBodyBytes: 64 << 10})
	long := strings.Repeat("a", MaxTextChars+1)
	manyJobs := "[" + strings.TrimSuffix(strings.Repeat(`{"operation":"quality","input":{"content":"x"}},`, MaxBatchJobs+1), ",") + "]"
	cases := []struct {
		name, method, path, body string
		status                   int
		field, detail            string
	}{
		{"empty body", "POST", "/analyze", ``, 400, "", "empty"},
		{"syntax", "POST", "/analyze", "{\n  \"content\": \"x\",\n}", 400, "", "line 3, column 1"},
		{"truncated", "POST", "/analyze", `{"content": "x"`, 400, "", "unexpected end"},
		{"trailing", "POST", "/analyze", `{"content":"x"} {}`, 400, "", "after top-level value"},
		{"not an object", "POST", "/analyze", `["x"]`, 422, "", "JSON object"},
		{"wrong type", "POST", "/analyze", `{"content": 42}`, 422, "content", "expected a string"},
		{"threshold type", "POST", "/analyze", `{"content":"x","threshold":"high"}`, 422, "threshold", "expected a number"},
		{"missing", "POST", "/analyze", `{}`, 422, "content", "required"},
		{"null", "POST", "/quality", `{"content":null}`, 422, "content", "required"},
		{"empty text", "POST", "/quality", `{"content":""}`, 422, "content", "empty"},
		{"blank text", "POST", "/similarity", `{"text1":"x","text2":" \n\t"}`, 422, "text2", "empty"},
		{"invalid utf-8", "POST", "/analyze", "{\"content\":\"caf\xe9\"}", 422, "", "UTF-8 (byte offset 15)"},
		{"too long", "POST", "/api/v1/quality", `{"content":"` + long[:MaxTextChars/2] + `"}`, 200, "", ""},
		{"sequence limit", "POST", "/similarity", `{"text1":"` + strings.Repeat("b", 20001) + `","text2":"x"}`, 422, "", "20001-character"},
		{"no jobs", "POST", "/batch/process", `{"jobs":[]}`, 422, "jobs", "at least one"},
		{"jobs missing", "POST", "/batch/process", `{}`, 422, "jobs", "required"},
		{"jobs type", "POST", "/batch/process", `{"jobs":{"a":1}}`, 422, "jobs", "expected an array"},
		{"dedup bad option", "POST", "/api/v1/dedup", `{"documents":[{"text":"a"}],"permutations":5000}`, 422, "", "permutations"},
		{"dedup duplicate id", "POST", "/api/v1/dedup", `{"documents":[{"id":"a","text":"x"},{"id":"a","text":"y"}]}`, 422, "documents[1].id", "repeats"},
		{"unknown route", "GET", "/nope", ``, 404, "", "no route"},
		{"dedup not at root", "POST", "/dedup", `{}`, 404, "", "no route"},
		{"wrong method", "GET", "/api/v1/analyze", ``, 405, "", "not allowed"},
		{"wrong method health", "DELETE", "/health", ``, 405, "", "not allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := ts.do(t, c.method, c.path, c.body, "X-Request-ID", "req-"+strings.ReplaceAll(c.name, " ", "-"))
			if a.Status != c.status {
				t.Fatalf("status %d, want %d: %s", a.Status, c.status, a.Raw)
			}
			if c.status == 200 {
				return
			}
			if ct := a.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type %q", ct)
			}
			b := a.Body
			if b["status"] != float64(c.status) || b["success"] != false || b["error"] != b["detail"] || b["type"] == "" || b["title"] == "" {
				t.Fatalf("problem shape: %s", a.Raw)
			}
			if b["request_id"] != "req-"+strings.ReplaceAll(c.name, " ", "-") || a.Header.Get("X-Request-ID") != b["request_id"] {
				t.Fatalf("request_id %v / header %q", b["request_id"], a.Header.Get("X-Request-ID"))
			}
			if c.field != "" && b["field"] != c.field {
				t.Fatalf("field %v, want %s: %s", b["field"], c.field, a.Raw)
			}
			if !strings.Contains(b["detail"].(string), c.detail) {
				t.Fatalf("detail %q lacks %q", b["detail"], c.detail)
			}
		})
	}
	if a := ts.do(t, "GET", "/analyze", ""); a.Header.Get("Allow") != "POST" {
		t.Fatalf("Allow = %q", a.Header.Get("Allow"))
	}
	if a := ts.do(t, "POST", "/health", ""); a.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("Allow = %q", a.Header.Get("Allow"))
	}
	big := `{"content":"` + strings.Repeat("a", 70<<10) + `"}`
	if a := ts.do(t, "POST", "/analyze", big); a.Status != 413 || a.Body["type"] != "https://contentguard.dev/problems/body-too-large" {
		t.Fatalf("oversized body: %d %s", a.Status, a.Raw)
	}
	if a := ts.do(t, "POST", "/batch/process", `{"jobs":`+manyJobs+`}`); a.Status != 422 || !strings.Contains(a.Body["detail"].(string), "exceed the limit of 100") {
		t.Fatalf("too many jobs: %d %s", a.Status, a.Raw)
	}
	ts2 := newTestServer(t, Config{MaxBodyBytes: 4 << 20})
	if a := ts2.do(t, "POST", "/analyze", `{"content":"`+long+`"}`); a.Status != 422 || !strings.Contains(a.Body["detail"].(string), "exceed the limit") {
		t.Fatalf("too long text: %d %s", a.Status, a.Raw)
	}
	var docs strings.Builder
	docs.WriteString(`{"documents":[`)
	for i := 0; i <= MaxDedupDocuments; i++ {
		if i > 0 {
			docs.WriteByte(',')
		}
		docs.WriteString(`{"text":"d"}`)
	}
	docs.WriteString(`]}`)
	if a := ts2.do(t, "POST", "/api/v1/dedup", docs.String()); a.Status != 422 || a.Body["field"] != "documents" {
		t.Fatalf("too many documents: %d %s", a.Status, a.Raw)
	}
}

func TestBatchReportsEachJob(t *testing.T) {
	ts := newTestServer(t, Config{})
	d := ts.do(t, "POST", "/batch/process", `{"jobs":[
		{"operation":"analyze","input":{"content":"a b a"}},
		{"operation":"similarity","input":{"text1":"abc","text2":"abd"}},
		{"operation":"quality","input":{"content":""}},
		{"operation":"translate","input":{}}]}`).data(t)
	if d["total_jobs"] != 4.0 || d["completed_jobs"] != 2.0 || d["failed_jobs"] != 2.0 || d["status"] != BatchCompletedWithErrors || d["progress"] != 100.0 {
		t.Fatalf("batch = %v", d)
	}
	results := d["results"].([]any)
	r0 := results[0].(map[string]any)
	if r0["status"] != "completed" || r0["result"].(map[string]any)["word_count"] != 3.0 {
		t.Fatalf("job 0 = %v", r0)
	}
	r2 := results[2].(map[string]any)
	if r2["status"] != "failed" || r2["error"].(map[string]any)["field"] != "jobs[2].content" {
		t.Fatalf("job 2 = %v", r2)
	}
	all := ts.do(t, "POST", "/batch/process", `{"jobs":[{"operation":"quality","input":{"content":"x"}}]}`).data(t)
	if all["status"] != BatchCompleted {
		t.Fatalf("status %v", all["status"])
	}
	none := ts.do(t, "POST", "/batch/process", `{"jobs":[{"operation":"quality","input":{"content":5}},{"operation":"analyze","input":"text"}]}`).data(t)
	if none["status"] != BatchFailed {
		t.Fatalf("status %v", none["status"])
	}
	notObject := none["results"].([]any)[1].(map[string]any)
	if notObject["operation"] != "analyze" || notObject["error"].(map[string]any)["field"] != "jobs[1].input" {
		t.Fatalf("non-object input: %v", notObject)
	}
}

func TestDedupEndpoint(t *testing.T) {
	ts := newTestServer(t, Config{})
	a := ts.do(t, "POST", "/api/v1/dedup", `{"documents":[{"id":"a","text":"same text here"},{"id":"b","text":"same text here"},{"text":"other"}]}`)
	if a.Status != 200 {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	d := a.data(t)
	for _, f := range []string{"clusters", "exact_duplicates", "stats", "analysis_time", "timestamp"} {
		if _, ok := d[f]; !ok {
			t.Fatalf("dedup lacks %s: %s", f, a.Raw)
		}
	}
}

func TestPanicBecomesProblem(t *testing.T) {
	ts := newTestServer(t, Config{})
	ts.Handle("GET /boom", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("kaboom") }))
	a := ts.do(t, "GET", "/boom", "")
	if a.Status != 500 || a.Body["type"] != "https://contentguard.dev/problems/internal" || a.Body["detail"] == "kaboom" {
		t.Fatalf("panic answer %d %s", a.Status, a.Raw)
	}
	if !strings.Contains(ts.logs.String(), "kaboom") || !strings.Contains(ts.logs.String(), "panic serving request") {
		t.Fatalf("panic not logged: %s", ts.logs.String())
	}
	if got := testutil.ToFloat64(ts.metrics.RequestsCounter().WithLabelValues("GET", "/boom", "500")); got != 1 {
		t.Fatalf("panic not counted as 500: %v", got)
	}
}

func TestCacheHitsMissesAndNoPrefixCollision(t *testing.T) {
	ts := newTestServer(t, Config{})
	prefix := strings.Repeat("shared prefix ", 10) // > 100 characters
	a1 := ts.do(t, "POST", "/analyze", `{"content":"`+prefix+`alpha"}`).data(t)
	a2 := ts.do(t, "POST", "/analyze", `{"content":"`+prefix+`beta gamma"}`).data(t)
	if a1["content_hash"] == a2["content_hash"] || a1["word_count"] == a2["word_count"] {
		t.Fatal("texts sharing 100 characters got the same cached result")
	}
	again := ts.do(t, "POST", "/analyze", `{"content":"`+prefix+`alpha"}`).data(t)
	if again["content_hash"] != a1["content_hash"] {
		t.Fatal("cached result differs")
	}
	if h, m := testutil.ToFloat64(ts.cacheHits), testutil.ToFloat64(ts.cacheMisses); h != 1 || m != 2 {
		t.Fatalf("hits %v misses %v", h, m)
	}
	// The same text under another operation or threshold is another entry.
	ts.do(t, "POST", "/analyze", `{"content":"`+prefix+`alpha","threshold":0.5}`)
	ts.do(t, "POST", "/quality", `{"content":"`+prefix+`alpha"}`)
	if m := testutil.ToFloat64(ts.cacheMisses); m != 4 {
		t.Fatalf("misses %v", m)
	}
}

func TestCacheTTLThroughTheServer(t *testing.T) {
	now := time.Unix(2_000_000_000, 0)
	clock := func() time.Time { return now }
	ts := newTestServer(t, Config{Cache: cache.NewMemory(100, 300*time.Second, cache.WithClock(clock)), CacheKind: "memory"})
	body := `{"content":"ttl test"}`
	ts.do(t, "POST", "/quality", body)
	now = now.Add(299 * time.Second)
	ts.do(t, "POST", "/quality", body)
	now = now.Add(2 * time.Second)
	ts.do(t, "POST", "/quality", body)
	if h, m := testutil.ToFloat64(ts.cacheHits), testutil.ToFloat64(ts.cacheMisses); h != 1 || m != 2 {
		t.Fatalf("hits %v misses %v (want 1 hit before expiry, a miss after)", h, m)
	}
}

func TestRedisCacheThroughTheServer(t *testing.T) {
	addr := redistest.Start(t)
	client, err := cache.NewRedisFromURL("redis://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	mk := func() *testServer {
		return newTestServer(t, Config{Cache: cache.NewRedis(client, "cg:", time.Minute), CacheKind: "redis"})
	}
	one, two := mk(), mk()
	d1 := one.do(t, "POST", "/similarity", `{"text1":"shared cache","text2":"shared cash"}`).data(t)
	d2 := two.do(t, "POST", "/similarity", `{"text1":"shared cache","text2":"shared cash"}`).data(t)
	if d1["similarity_score"] != d2["similarity_score"] {
		t.Fatal("results differ")
	}
	if testutil.ToFloat64(two.cacheHits) != 1 || testutil.ToFloat64(one.cacheMisses) != 1 {
		t.Fatal("second replica did not hit the shared Redis cache")
	}
	n, err := client.Keys(context.Background(), "cg:*").Result()
	if err != nil || len(n) != 1 || len(n[0]) != len("cg:")+64 {
		t.Fatalf("redis keys %v %v", n, err)
	}
	if two.do(t, "GET", "/health", "").data(t)["cache"] != "redis" {
		t.Fatal("health does not report the redis cache")
	}
}

// TestHealthChecks: a failing check degrades /health, which says how it
// failed but not where: /health is public, the Redis address is not.
func TestHealthChecks(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	ts := newTestServer(t, Config{HealthChecks: map[string]func(context.Context) error{
		"redis": func(context.Context) error {
			if failing.Load() {
				return fmt.Errorf("redis: %w", &net.OpError{Op: "dial", Net: "tcp",
					Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 3), Port: 6379},
					Err:  &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}})
			}
			return nil
		},
	}})
	a := ts.do(t, "GET", "/health", "")
	if d := a.data(t); d["status"] != "degraded" || d["checks"].(map[string]any)["redis"] != "error: connection refused" {
		t.Fatalf("health %v", d)
	}
	if strings.Contains(string(a.Raw), "10.0.0.3") {
		t.Fatalf("/health shows the address of the failed call: %s", a.Raw)
	}
	failing.Store(false)
	if d := ts.do(t, "GET", "/api/v1/health", "").data(t); d["status"] != "healthy" || d["checks"].(map[string]any)["redis"] != "ok" {
		t.Fatalf("health %v", d)
	}
}

func TestMetricsPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is required (apt-get install prometheus)")
	}
	ts := newTestServer(t, Config{})
	mountAsync(t, ts)
	ts.do(t, "POST", "/analyze", `{"content":"metrics please"}`)
	ts.do(t, "POST", "/analyze", `{"content":"metrics please"}`)
	ts.do(t, "GET", "/nope/123", "")
	a := ts.do(t, "GET", "/metrics", "")
	text := string(a.Raw)
	for _, want := range []string{
		`http_requests_total{method="POST",route="/analyze",status="200"} 2`,
		`http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`http_request_duration_seconds_bucket{method="POST",route="/analyze",le="+Inf"} 2`,
		`analysis_requests_total{kind="analyze"} 2`,
		`cache_hits_total 1`,
		`cache_misses_total 1`,
		`go_goroutines`,
		`webhook_delivery_attempts_total{code="5xx"} 0`,
		`webhook_deliveries_dropped_total{reason="queue_full"} 0`,
		`webhook_delivery_queue_depth 0`,
		`webhook_delivery_queue_lag_seconds 0`,
		`webhook_dead_letters 0`,
		`webhook_endpoints 0`,
		`webhook_delivery_latency_seconds_count 0`,
		`jobs_queue_depth`,
	} {
		if !strings.Contains(text, want) {
			t.Fatalf("metrics lack %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "/nope/123") {
		t.Fatal("a raw path became a label")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(a.Raw)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestTracesOfOneRequest(t *testing.T) {
	recv := otlptest.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL)
	tracing, err := telemetry.SetupTracing(context.Background(), "backend-test", "0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, Config{Tracing: tracing})
	const traceID, parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	ts.do(t, "POST", "/api/v1/batch/process", `{"jobs":[{"operation":"analyze","input":{"content":"one two two"}}]}`,
		"traceparent", "00-"+traceID+"-"+parent+"-01")
	if err := tracing.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	byName := map[string]otlptest.Span{}
	for _, s := range recv.Spans() {
		byName[s.Name] = s
	}
	server, batch, analyze := byName["POST /api/v1/batch/process"], byName["analysis.batch"], byName["analysis.analyze"]
	if server.SpanID == "" || batch.SpanID == "" || analyze.SpanID == "" {
		t.Fatalf("spans: %+v", recv.Spans())
	}
	if server.TraceID != traceID || server.ParentSpanID != parent {
		t.Fatalf("server span ignores traceparent: %+v", server)
	}
	if batch.ParentSpanID != server.SpanID || analyze.ParentSpanID != batch.SpanID || analyze.TraceID != traceID {
		t.Fatalf("parentage: server %s batch %+v analyze %+v", server.SpanID, batch, analyze)
	}
	if analyze.Attributes["analysis.kind"] != "analyze" || analyze.Attributes["analysis.word_count"] != int64(3) || analyze.Attributes["analysis.cache_hit"] != false {
		t.Fatalf("analyze attributes %v", analyze.Attributes)
	}
	if server.Attributes["http.route"] != "/api/v1/batch/process" || server.Resource["service.name"] != "backend-test" {
		t.Fatalf("server span %+v", server)
	}
}

func TestRequestIDInLogs(t *testing.T) {
	logs := &syncbuf.Buffer{}
	ts := newTestServer(t, Config{Logger: telemetry.NewLogger(logs, nil)})
	a := ts.do(t, "POST", "/analyze", `{"content":"x"}`, "X-Request-ID", "trace-me-42")
	if a.Header.Get("X-Request-ID") != "trace-me-42" {
		t.Fatal("request ID not echoed")
	}
	if !strings.Contains(logs.String(), `"request_id":"trace-me-42"`) || !strings.Contains(logs.String(), `"route":"/analyze"`) {
		t.Fatalf("access log: %s", logs.String())
	}
	a = ts.do(t, "POST", "/analyze", `{"content":"x"}`, "X-Request-ID", "bad id with spaces")
	if got := a.Header.Get("X-Request-ID"); got == "bad id with spaces" || len(got) != 36 {
		t.Fatalf("malformed request ID kept: %q", got)
	}
}

func TestHeadAndRoot(t *testing.T) {
	ts := newTestServer(t, Config{})
	if a := ts.do(t, "HEAD", "/health", ""); a.Status != 200 || len(a.Raw) != 0 {
		t.Fatalf("HEAD /health: %d %q", a.Status, a.Raw)
	}
	if d := ts.do(t, "GET", "/", "").data(t); d["docs"] != "/docs" {
		t.Fatalf("root %v", d)
	}
}

// TestChunkedBodyOverLimit sends a body without Content-Length, so only the
// MaxBytesReader can stop it.
func TestChunkedBodyOverLimit(t *testing.T) {
	ts := newTestServer(t, Config{MaxBodyBytes: 1024})
	body := io.MultiReader(strings.NewReader(`{"content":"`), strings.NewReader(strings.Repeat("a", 4096)), strings.NewReader(`"}`))
	req, _ := http.NewRequest("POST", ts.URL+"/analyze", body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 413 || req.ContentLength != 0 || !strings.Contains(string(raw), "exceeds 1024 bytes") {
		t.Fatalf("%d %s", resp.StatusCode, raw)
	}
}

// TestDedupCandidateExplosionIsAClientError sends thousands of nearly
// identical documents (distinct, so not exact duplicates): every pair is an
// LSH candidate, past analysis.MaxCandidatePairs.
func TestDedupCandidateExplosionIsAClientError(t *testing.T) {
	ts := newTestServer(t, Config{})
	var b strings.Builder
	b.WriteString(`{"documents":[`)
	for i := 0; i < 7000; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"text":"the same long run of words shared by every document here and there %d"}`, i)
	}
	b.WriteString(`]}`)
	a := ts.do(t, "POST", "/api/v1/dedup", b.String())
	if a.Status != 422 || a.Body["field"] != "documents" || !strings.Contains(a.Body["detail"].(string), "candidate pairs") {
		t.Fatalf("%d %.500s", a.Status, a.Raw)
	}
}
