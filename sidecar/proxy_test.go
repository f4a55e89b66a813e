package sidecar_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/contentguard/contentguard/internal/clocktest"
	"github.com/contentguard/contentguard/internal/syncbuf"
	"github.com/contentguard/contentguard/sidecar"
)

// basicPolicy: one public route with a small body limit and a trusted proxy.
const basicPolicy = `
apiVersion: contentguard.dev/v1
kind: EdgePolicy
metadata: {name: basic, version: "1"}
spec:
  upstream: {url: http://127.0.0.1:9, timeout: 2s}
  clientIP: {trustedProxies: [127.0.0.10/32], headers: [X-Forwarded-For]}
  circuitBreaker: {consecutiveFailures: 3, openFor: 500ms, halfOpenRequests: 1, failOn: [502, 503, 504, timeout, connection]}
  limits: {maxBodyBytes: 4KiB, maxHeaderBytes: 8KiB}
  routes:
    - name: open
      match: {pathPrefix: /}
      auth: none
`

func get(t testing.TB, addr, target, peer string, h http.Header) rawResponse {
	t.Helper()
	return send(t, addr, rawRequest{Method: "GET", Target: target, Peer: peer, Header: h})
}

func problemReason(t testing.TB, r rawResponse) string {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("status %d content type %q, want a problem: %s", r.Status, ct, r.Body)
	}
	var p struct {
		Reason    string `json:"reason"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("problem body: %v: %s", err, r.Body)
	}
	if p.RequestID == "" || p.RequestID != r.Header.Get("X-Request-ID") {
		t.Fatalf("problem request_id %q, header %q", p.RequestID, r.Header.Get("X-Request-ID"))
	}
	return p.Reason
}

// TestRawHeaderInjection writes a CR LF inside the X-Request-ID value on
// the wire (the conformance case Go's client cannot send): the bytes split
// into two headers, the well-formed id "abc" is kept, nothing named
// X-Injected comes back, and a bare CR is refused outright.
func TestRawHeaderInjection(t *testing.T) {
	up := startUpstream(t)
	sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, basicPolicy), Upstream: up.URL})
	r := get(t, sc.addr, "/x", "", http.Header{"X-Request-Id": {"abc\r\nX-Injected: yes"}})
	if r.Status != 200 || r.Header.Get("X-Request-ID") != "abc" || r.Header.Get("X-Injected") != "" {
		t.Fatalf("CRLF split: status %d, id %q, injected %q", r.Status, r.Header.Get("X-Request-ID"), r.Header.Get("X-Injected"))
	}
	got := up.take()
	if len(got) != 1 || got[0].Header.Get("X-Request-ID") != "abc" {
		t.Fatalf("upstream saw %+v", got)
	}
	r = get(t, sc.addr, "/x", "", http.Header{"X-Request-Id": {"abc\rX-Injected: yes"}})
	if r.Status != http.StatusBadRequest || len(up.take()) != 0 {
		t.Fatalf("bare CR: status %d, want 400 and nothing forwarded", r.Status)
	}
}

// TestInvalidTargetEscapeIsRefused: net/http refuses "%zz" in the request
// target itself (plain 400); the request never reaches the upstream.
func TestInvalidTargetEscapeIsRefused(t *testing.T) {
	up := startUpstream(t)
	sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, basicPolicy), Upstream: up.URL})
	if r := get(t, sc.addr, "/api/v1/%zz", "", nil); r.Status != http.StatusBadRequest {
		t.Fatalf("status %d", r.Status)
	}
	if got := up.take(); len(got) != 0 {
		t.Fatalf("forwarded: %+v", got)
	}
}

// TestForwardingHeaders: X-Forwarded-For extends a trusted proxy's chain and
// starts afresh for anyone else; Proto/Host are set; the query is kept and
// the path normalised.
func TestForwardingHeaders(t *testing.T) {
	up := startUpstream(t)
	sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, basicPolicy), Upstream: up.URL})
	h := http.Header{"X-Forwarded-For": {"203.0.113.7, 10.0.0.1"}, "X-Forwarded-Host": {"evil.example"}, "X-Forwarded-Proto": {"https"}}

	get(t, sc.addr, "/a//b/../c?q=1&r=%20", "127.0.0.10", h)
	got := up.take()[0]
	if xff := got.Header.Get("X-Forwarded-For"); xff != "203.0.113.7, 10.0.0.1, 127.0.0.10" {
		t.Fatalf("trusted peer: XFF %q", xff)
	}
	if got.Header.Get("X-Forwarded-Proto") != "https" || got.Header.Get("X-Forwarded-Host") != "evil.example" {
		t.Fatalf("trusted peer: proto/host %v", got.Header)
	}
	if got.Path != "/a/c" || got.Query != "q=1&r=%20" {
		t.Fatalf("path %q query %q", got.Path, got.Query)
	}

	get(t, sc.addr, "/x", "127.0.0.22", h)
	got = up.take()[0]
	if xff := got.Header.Get("X-Forwarded-For"); xff != "127.0.0.22" {
		t.Fatalf("untrusted peer: XFF %q, want a fresh chain", xff)
	}
	if got.Header.Get("X-Forwarded-Proto") != "http" || got.Header.Get("X-Forwarded-Host") != "edge.test" {
		t.Fatalf("untrusted peer: proto/host %v", got.Header)
	}
}

// TestChunkedBodyOverLimitIs413: a chunked body has no length for the engine
// to judge; the proxy counts it while streaming and answers 413 as a problem.
// Bodies within the limit stream through whole.
func TestChunkedBodyOverLimitIs413(t *testing.T) {
	up := startUpstream(t)
	sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, basicPolicy), Upstream: up.URL})
	r := send(t, sc.addr, rawRequest{Method: "POST", Target: "/upload", Body: bytes.Repeat([]byte("y"), 3000), Chunked: true})
	if r.Status != 200 {
		t.Fatalf("within limit: %d %s", r.Status, r.Body)
	}
	if got := up.take(); len(got) != 1 || got[0].Body != 3000 {
		t.Fatalf("upstream got %+v", got)
	}
	r = send(t, sc.addr, rawRequest{Method: "POST", Target: "/upload", Body: bytes.Repeat([]byte("y"), 64<<10), Chunked: true})
	if r.Status != http.StatusRequestEntityTooLarge || problemReason(t, r) != "body_too_large" {
		t.Fatalf("over limit: %d %s", r.Status, r.Body)
	}
	for _, g := range up.take() {
		if g.Body > 4<<10 {
			t.Fatalf("upstream received %d body bytes past the limit", g.Body)
		}
	}
	r = send(t, sc.addr, rawRequest{Method: "POST", Target: "/upload", Body: bytes.Repeat([]byte("y"), 5000)})
	if r.Status != http.StatusRequestEntityTooLarge || problemReason(t, r) != "body_too_large" {
		t.Fatalf("declared length over limit: %d %s", r.Status, r.Body)
	}
}

// TestOversizeHeadIsAProblem: heads past the policy's maxHeaderBytes get the
// engine's 431 problem, not net/http's plain answer.
func TestOversizeHeadIsAProblem(t *testing.T) {
	up := startUpstream(t)
	sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, basicPolicy), Upstream: up.URL})
	r := get(t, sc.addr, "/x", "", http.Header{"X-Big": {strings.Repeat("b", 12<<10)}})
	if r.Status != http.StatusRequestHeaderFieldsTooLarge || problemReason(t, r) != "headers_too_large" {
		t.Fatalf("status %d body %s", r.Status, r.Body)
	}
}

// TestUpstreamFaults: a closed port is 502, a slow upstream 504 (and the
// upstream's request is cancelled), a 5xx storm opens the breaker (503 +
// Retry-After without touching the upstream), which half-opens after
// openFor and closes on a good probe. Metrics follow.
func TestUpstreamFaults(t *testing.T) {
	// A port nobody listens on, held so that nobody can.
	closed := "http://" + closedPortAddr(t)
	dead := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, basicPolicy), Upstream: closed})
	if r := get(t, dead.addr, "/x", "", nil); r.Status != http.StatusBadGateway || problemReason(t, r) != "upstream_unreachable" {
		t.Fatalf("closed port: %d %s", r.Status, r.Body)
	}

	up := startUpstream(t)
	// The breaker's time is a clock the test moves: it stays open exactly
	// until openFor has passed on it, however slow the requests are.
	clock := clocktest.New(time.Now())
	sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, basicPolicy), Upstream: up.URL, Now: clock.Now})
	up.script(200, 10*time.Second, false)
	if r := get(t, sc.addr, "/slow", "", nil); r.Status != http.StatusGatewayTimeout || problemReason(t, r) != "upstream_timeout" {
		t.Fatalf("slow: %d %s", r.Status, r.Body)
	}
	up.take()
	adminJSON(t, sc, "POST", "/admin/breakers/reset", nil) // the timeout counted as one failure

	up.script(http.StatusServiceUnavailable, 0, false)
	for i := 0; i < 3; i++ {
		if r := get(t, sc.addr, "/storm", "", nil); r.Status != http.StatusServiceUnavailable || r.Header.Get("X-Upstream") != "fake" {
			t.Fatalf("storm %d: %d", i, r.Status)
		}
	}
	up.take()
	r := get(t, sc.addr, "/storm", "", nil)
	if r.Status != http.StatusServiceUnavailable || problemReason(t, r) != "circuit_open" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("open breaker: %d %v %s", r.Status, r.Header, r.Body)
	}
	if got := up.take(); len(got) != 0 {
		t.Fatalf("open breaker forwarded %d requests", len(got))
	}
	if v := breakerGauge(t, sc); v != 2 {
		t.Fatalf("circuit_breaker_state = %v, want 2 (open)", v)
	}
	var br struct {
		Breakers []struct{ Name, State string }
	}
	adminJSON(t, sc, "GET", "/admin/breakers", &br)
	if len(br.Breakers) != 1 || br.Breakers[0].State != "open" || "http://"+br.Breakers[0].Name != up.URL {
		t.Fatalf("/admin/breakers = %+v", br)
	}

	// Before openFor has passed it stays open; after it, one probe goes
	// through, and its success closes the breaker.
	up.script(200, 0, false)
	clock.Advance(499 * time.Millisecond)
	if r := get(t, sc.addr, "/early", "", nil); r.Status != http.StatusServiceUnavailable {
		t.Fatalf("1ms before openFor: %d, want 503", r.Status)
	}
	clock.Advance(time.Millisecond)
	if r := get(t, sc.addr, "/probe", "", nil); r.Status != 200 {
		t.Fatalf("probe after openFor: %d %s", r.Status, r.Body)
	}
	if v := breakerGauge(t, sc); v != 0 {
		t.Fatalf("circuit_breaker_state = %v after a good probe, want 0", v)
	}

	// Admin reset closes an open breaker at once.
	up.script(http.StatusBadGateway, 0, false)
	for i := 0; i < 3; i++ {
		get(t, sc.addr, "/storm", "", nil)
	}
	if get(t, sc.addr, "/storm", "", nil).Status != http.StatusServiceUnavailable || breakerGauge(t, sc) != 2 {
		t.Fatal("breaker did not open again")
	}
	adminJSON(t, sc, "POST", "/admin/breakers/reset", nil)
	up.script(200, 0, false)
	if r := get(t, sc.addr, "/after-reset", "", nil); r.Status != 200 {
		t.Fatalf("after reset: %d", r.Status)
	}
	if resp := adminDo(t, sc, "POST", "/admin/breakers/reset?name=nope"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("reset of an unknown breaker: %d", resp.StatusCode)
	}
}

func breakerGauge(t testing.TB, sc *running) float64 {
	t.Helper()
	mfs, err := sc.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == sidecar.MetricBreakerState {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no circuit_breaker_state")
	return -1
}

func adminDo(t testing.TB, sc *running, method, path string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+sc.admin+path, nil)
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func adminJSON(t testing.TB, sc *running, method, path string, v any) {
	t.Helper()
	resp := adminDo(t, sc, method, path)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, body)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, body)
		}
	}
}

// waitFor polls cond until it holds or the deadline passes (a bound, not a
// timing assertion).
func waitFor(t testing.TB, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLocalHandler: LocalPaths are served in-process after the engine's
// checks (rate limited like any route), with the decision's headers, never
// forwarded, and independent of the upstream's breaker.
func TestLocalHandler(t *testing.T) {
	up := startUpstream(t)
	p := parsePolicy(t, strings.Replace(basicPolicy, "    - name: open\n", `    - name: token
      match: {path: /oauth/token}
      auth: none
      rateLimit: {key: ip, rate: 2, per: 1h}
    - name: open
`, 1))
	local := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			w.WriteHeader(http.StatusRequestEntityTooLarge) // the chunked body outgrew maxBodyBytes
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"t"}`)
	})
	sc := startSidecar(t, sidecar.Options{Policy: p, Upstream: up.URL, Local: local, LocalPaths: []string{"/oauth/token"}})
	r := send(t, sc.addr, rawRequest{Method: "POST", Target: "/oauth//token", Body: []byte("grant_type=x")})
	if r.Status != 200 || string(r.Body) != `{"access_token":"t"}` || r.Header.Get("X-Request-ID") == "" || r.Header.Get("RateLimit-Remaining") != "1" {
		t.Fatalf("local: %d %v %s", r.Status, r.Header, r.Body)
	}
	if r := send(t, sc.addr, rawRequest{Method: "POST", Target: "/oauth/token", Body: bytes.Repeat([]byte("z"), 64<<10), Chunked: true}); r.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked body past the limit to a local path: %d", r.Status)
	}
	if r := send(t, sc.addr, rawRequest{Method: "POST", Target: "/oauth/token"}); r.Status != http.StatusTooManyRequests {
		t.Fatalf("third token request: %d, want 429 (rate 2 per hour)", r.Status)
	}
	if got := up.take(); len(got) != 0 {
		t.Fatalf("local path forwarded: %+v", got)
	}
}

// TestTelemetry: one JSON access-log line per request with the decision and
// identity but never a credential; the documented metric names.
func TestTelemetry(t *testing.T) {
	up := startUpstream(t)
	var logs syncbuf.Buffer
	p := loadPolicy(t, conformancePolicy("standard.yaml"))
	sc := startSidecar(t, sidecar.Options{Policy: p, Upstream: up.URL, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	const key = "cg-conformance-rw-key"
	if r := send(t, sc.addr, rawRequest{Method: "POST", Target: "/api/v1/analyze?api_key=" + key, Header: http.Header{"X-Api-Key": {key}}}); r.Status != 200 {
		t.Fatalf("allowed: %d %s", r.Status, r.Body)
	}
	if r := get(t, sc.addr, "/api/v1/x", "", http.Header{"Authorization": {"Bearer not-a-jwt"}}); r.Status != 401 {
		t.Fatalf("bad token: %d", r.Status)
	}
	if strings.Contains(logs.String(), key) || strings.Contains(logs.String(), "not-a-jwt") {
		t.Fatalf("a credential reached the log:\n%s", logs.String())
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		if m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("%d access lines:\n%s", len(lines), logs.String())
	}
	a, b := lines[0], lines[1]
	if a["route"] != "analyze" || a["decision"] != "allow" || a["status"] != float64(200) || a["subject"] != "apikey:batch-importer" ||
		a["client_ip"] != "127.0.0.1" || a["request_id"] == "" || a["latency_seconds"] == nil {
		t.Fatalf("allowed line: %v", a)
	}
	if b["decision"] != "reject" || b["reason"] != "token_malformed" || b["status"] != float64(401) {
		t.Fatalf("rejected line: %v", b)
	}
	checks := map[string]float64{
		`http_requests_total{method="POST",route="analyze",status="200"}`:               1,
		`edge_decisions_total{decision="allow",reason="allowed",route="analyze"}`:       1,
		`edge_decisions_total{decision="reject",reason="token_malformed",route="read"}`: 1,
		`auth_failures_total{reason="token_malformed"}`:                                 1,
		`upstream_request_duration_seconds_count{upstream="` + up.URL[7:] + `"}`:        1,
		`http_request_duration_seconds_count{method="GET",route="read"}`:                1,
		`circuit_breaker_state{upstream="` + up.URL[7:] + `"}`:                          0,
		`policy_reload_errors_total`:                                                    0,
		`policy_info{hash="` + p.Hash + `",name="conformance-standard",version=""}`:     1,
	}
	exposition := scrape(t, sc)
	for series, want := range checks {
		if !strings.Contains(exposition, series+" "+trimFloat(want)+"\n") {
			t.Errorf("missing %s %v", series, want)
		}
	}
	if t.Failed() {
		t.Log(exposition)
	}
	if n, err := testutil.GatherAndCount(sc.reg, sidecar.MetricRateRejections, sidecar.MetricRateFallbacks); err != nil || n != 1 {
		t.Fatalf("ratelimit series: %d %v", n, err)
	}
}

func trimFloat(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}

func scrape(t testing.TB, sc *running) string {
	t.Helper()
	resp := adminDo(t, sc, "GET", "/metrics")
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestObserveOncePerAllowedRequest: every allowed request reports exactly
// one outcome to the breaker — answered, failed, or abandoned by a client
// that hung up while the upstream was still working.
func TestObserveOncePerAllowedRequest(t *testing.T) {
	up := startUpstream(t)
	sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, basicPolicyLongTimeout), Upstream: up.URL})
	outcomes := func() int {
		var br struct {
			Breakers []struct {
				State    string
				Requests int
			}
		}
		adminJSON(t, sc, "GET", "/admin/breakers", &br)
		if len(br.Breakers) != 1 || br.Breakers[0].State != "closed" {
			t.Fatalf("breakers %+v", br)
		}
		return br.Breakers[0].Requests
	}
	get(t, sc.addr, "/ok", "", nil)
	up.script(http.StatusBadGateway, 0, false)
	get(t, sc.addr, "/bad", "", nil)
	up.script(200, 2*time.Second, false)
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", sc.addr)
		if err != nil {
			t.Fatal(err)
		}
		n := up.count()
		_, _ = io.WriteString(c, "GET /abandoned HTTP/1.1\r\nHost: edge.test\r\n\r\n")
		waitFor(t, 5*time.Second, func() bool { return up.count() > n })
		c.Close() // hang up while the upstream works
	}
	waitFor(t, 10*time.Second, func() bool { return outcomes() >= 5 })
	if n := sc.drainedOutcomes(t); n != 5 {
		t.Fatalf("%d outcomes reported for 5 allowed requests", n)
	}
}
