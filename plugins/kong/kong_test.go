package kong

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/Kong/go-pdk/test"

	"github.com/contentguard/contentguard/conformance"
	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/edge/breaker"
	"github.com/contentguard/contentguard/internal/clocktest"
	"github.com/contentguard/contentguard/internal/syncbuf"
)

func conformancePolicy(name string) string {
	return filepath.Join(conformance.Dir(), "policies", name)
}

// startInstance starts a plugin instance on a node of its own from a
// configuration as Kong sends it.
func startInstance(t testing.TB, opts NodeOptions, conf map[string]any) (*Node, *Config) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	n, err := NewNode(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	c := n.New().(*Config)
	data, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, c); err != nil {
		t.Fatalf("start the instance with %s: %v", data, err)
	}
	return n, c
}

// send runs one request through the instance's phases; up is the upstream's
// answer when it is forwarded (status 200 when zero).
func send(t testing.TB, c *Config, req test.Request, up test.Response) *exchange {
	t.Helper()
	if req.Url == "" {
		req.Url = "http://edge.test/healthz"
	}
	if req.Method == "" {
		req.Method = http.MethodGet
	}
	req.Headers = req.Headers.Clone()
	if req.Headers == nil {
		req.Headers = http.Header{}
	}
	req.Headers.Set("Host", "edge.test")
	x, err := newExchange(t, req)
	if err != nil {
		t.Fatal(err)
	}
	if up.Status == 0 {
		up.Status = http.StatusOK
	}
	if up.Headers == nil {
		up.Headers = http.Header{"Content-Type": {"text/plain"}}
	}
	x.do(c, up)
	return x
}

func mint(t testing.TB, tok conformance.Token) string {
	t.Helper()
	m, err := conformance.NewMinter(filepath.Join(conformance.Dir(), "testdata", "keys"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.Mint(tok)
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + s
}

// PDK calls, by what they are for.
var (
	callsRead    = []string{"kong.request.get_headers", "kong.request.get_method", "kong.request.get_path_with_query"}
	callScheme   = "kong.request.get_scheme"
	callPeer     = "kong.client.get_ip"
	callsForward = []string{"kong.service.request.set_headers", "kong.response.set_headers", "kong.ctx.shared.set"}
	callsLog     = []string{"kong.ctx.shared.get", "kong.response.get_status", "kong.response.get_source"}
)

// calls concatenates call lists and single calls.
func calls(parts ...any) []string {
	var out []string
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			out = append(out, p)
		case []string:
			out = append(out, p...)
		}
	}
	return out
}

// TestPDKCalls: the round trips each kind of request costs, call by call.
// Access reads in three calls, asks for the scheme only when the policy's
// answers differ over TLS (the strict preset) and for the client's address
// only when the decision depends on it (an ip-keyed limit, or a key
// falling back to the address); a refusal is one exit; a forward is the
// upstream headers, the response headers and the shared key (and a
// clear_header per forged claim header, a set_path for a normalised path).
// Log is one call for a refused request and three for a forwarded one.
func TestPDKCalls(t *testing.T) {
	standard := conformancePolicy("standard.yaml")
	custom := policyVariant(t, standard, "securityHeaders: strict",
		"securityHeaders: {X-Content-Type-Options: nosniff, Strict-Transport-Security: max-age=31536000}")
	jwt := mint(t, conformance.Token{Sub: "alice", Scope: "read"})
	writer := mint(t, conformance.Token{Sub: "alice", Scope: "read write"})
	key := http.Header{"X-Api-Key": {"cg-conformance-read-key"}}
	deploy := filepath.Join("..", "..", "deploy", "kong", "policy.yaml")
	limited := benchPolicy(t)
	for _, tc := range []struct {
		name, policy string
		req          test.Request
		access, log  []string
		again        bool // send it twice, count the second
	}{
		{"public route", standard, test.Request{Url: "http://edge.test/healthz"},
			calls(callsRead, callScheme, callsForward), callsLog, false},
		{"API key, ip-keyed limit", standard, test.Request{Url: "http://edge.test/api/v1/jobs?page=2", Headers: key},
			calls(callsRead, callScheme, callPeer, callsForward), callsLog, false},
		{"JWT, ip-keyed limit", standard, test.Request{Url: "http://edge.test/api/v1/jobs", Headers: http.Header{"Authorization": {jwt}}},
			calls(callsRead, callScheme, callPeer, callsForward), callsLog, false},
		{"JWT, subject-keyed limit", standard, test.Request{Method: http.MethodPost, Url: "http://edge.test/api/v1/jobs",
			Headers: http.Header{"Authorization": {writer}}, Body: []byte("{}")},
			calls(callsRead, callScheme, callsForward), callsLog, false},
		{"JWT, subject-keyed limit, headers the same over TLS", custom, test.Request{Method: http.MethodPost, Url: "http://edge.test/api/v1/jobs",
			Headers: http.Header{"Authorization": {writer}}, Body: []byte("{}")},
			calls(callsRead, callsForward), callsLog, false},
		{"public route, headers the same over TLS", custom, test.Request{Url: "http://edge.test/healthz"},
			calls(callsRead, callsForward), callsLog, false},
		{"JWT, ip-keyed limit, headers the same over TLS", custom, test.Request{Url: "http://edge.test/api/v1/jobs", Headers: http.Header{"Authorization": {jwt}}},
			calls(callsRead, callPeer, callsForward), callsLog, false},
		{"forged claim header", standard, test.Request{Url: "http://edge.test/healthz", Headers: http.Header{"X-Auth-Subject": {"root"}}},
			calls(callsRead, callScheme, "kong.service.request.clear_header", callsForward), callsLog, false},
		{"normalised path", standard, test.Request{Url: "http://edge.test/api/./v1/jobs", Headers: key},
			calls(callsRead, callScheme, callPeer, callsForward[0], "kong.service.request.set_path", callsForward[1:]), callsLog, false},
		{"API key, apiKey-keyed limit (the deploy policy)", deploy, test.Request{Url: "http://edge.test/api/v1/jobs",
			Headers: http.Header{"X-Api-Key": {"demo-api-key"}}},
			calls(callsRead, callScheme, callsForward), callsLog, false},
		{"refused", standard, test.Request{Url: "http://edge.test/api/v1/jobs"},
			calls(callsRead, callScheme, "kong.response.exit"), []string{"kong.ctx.shared.get"}, false},
		{"no route", standard, test.Request{Url: "http://edge.test/nowhere"},
			calls(callsRead, callScheme, "kong.response.exit"), []string{"kong.ctx.shared.get"}, false},
		{"refused by an ip-keyed limit", limited, test.Request{Url: "http://edge.test/limited"},
			calls(callsRead, callScheme, callPeer, "kong.response.exit"), []string{"kong.ctx.shared.get"}, true},
		{"refused, headers the same over TLS", custom, test.Request{Url: "http://edge.test/api/v1/jobs"},
			calls(callsRead, "kong.response.exit"), []string{"kong.ctx.shared.get"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, c := startInstance(t, NodeOptions{}, map[string]any{"policy_file": tc.policy})
			x := send(t, c, tc.req, test.Response{})
			if tc.again {
				x = send(t, c, tc.req, test.Response{})
			}
			if got := x.callsOf("access"); !reflect.DeepEqual(got, tc.access) {
				t.Errorf("access calls:\n got %q\nwant %q", got, tc.access)
			}
			if got := x.callsOf("log"); !reflect.DeepEqual(got, tc.log) {
				t.Errorf("log calls:\n got %q\nwant %q", got, tc.log)
			}
		})
	}
}

// TestConnectionCallFails: when Kong does not answer the address or scheme
// the engine asked for, the request is refused with a 500 problem, nothing
// is forwarded, and the breaker slot the decision held is handed back.
func TestConnectionCallFails(t *testing.T) {
	for _, method := range []string{callPeer, callScheme} {
		t.Run(method, func(t *testing.T) {
			var logs syncbuf.Buffer
			n, c := startInstance(t, NodeOptions{Logger: slog.New(slog.NewJSONHandler(&logs, nil))},
				map[string]any{"policy_file": conformancePolicy("standard.yaml"), "upstream": "content-api"})
			x, err := newExchange(t, test.Request{Method: http.MethodGet, Url: "http://edge.test/api/v1/jobs",
				Headers: http.Header{"Host": {"edge.test"}, "X-Api-Key": {"cg-conformance-read-key"}}})
			if err != nil {
				t.Fatal(err)
			}
			x.broken = map[string]bool{method: true}
			x.do(c, test.Response{Status: http.StatusOK, Headers: http.Header{}})
			if !x.exited || x.ClientRes.Status != http.StatusInternalServerError ||
				!strings.Contains(string(x.ClientRes.Body), `"reason":"internal"`) {
				t.Fatalf("exited=%v status %d body %s", x.exited, x.ClientRes.Status, x.ClientRes.Body)
			}
			if !strings.Contains(logs.String(), method) {
				t.Errorf("the log does not name %s:\n%s", method, logs.String())
			}
			if got := n.inflight.len(); got != 0 {
				t.Errorf("%d requests pending", got)
			}
			// The decision's breaker slot was handed back, as an outcome
			// nobody knows.
			if m := exposition(t, n); !strings.Contains(m, `upstream_outcomes_total{fault="none",reason="outcome_unknown",upstream="content-api"} 1`) {
				t.Errorf("no outcome_unknown in /metrics:\n%s", m)
			}
		})
	}
}

// TestForwardedRequest: an allowed request reaches the upstream with the
// verified claims and the request ID, the client's forged copies (in any
// spelling) gone and its other headers intact; the client's answer carries
// the request ID, the security headers and the RateLimit headers over the
// upstream's own.
func TestForwardedRequest(t *testing.T) {
	_, c := startInstance(t, NodeOptions{}, map[string]any{"policy_file": conformancePolicy("standard.yaml")})
	x := send(t, c, test.Request{Url: "http://edge.test/api/v1/jobs", Headers: http.Header{
		"Authorization":  {mint(t, conformance.Token{Sub: "alice", Scope: "read write"})},
		"X-Auth-Subject": {"root"},
		"X_auth_scopes":  {"admin"},
		"X-Trace":        {"keep-me"},
	}}, test.Response{Headers: http.Header{"Content-Type": {"application/json"}, "X-Upstream": {"yes"}}})
	if x.exited {
		t.Fatalf("refused: %d %s", x.ClientRes.Status, x.ClientRes.Body)
	}
	up := x.ServiceReq.Headers
	id := x.ClientRes.Headers.Get("X-Request-Id")
	for name, want := range map[string]string{"X-Auth-Subject": "alice", "X-Auth-Scopes": "read write", "X-Request-Id": id, "X-Correlation-Id": id, "X-Trace": "keep-me"} {
		if got := strings.Join(up.Values(name), ","); got != want || want == "" {
			t.Errorf("upstream %s = %q, want %q", name, got, want)
		}
	}
	if v := up.Values("X_auth_scopes"); len(v) > 0 {
		t.Errorf("the client's X_auth_scopes reached the upstream: %q", v)
	}
	res := x.ClientRes.Headers
	for _, name := range []string{"X-Content-Type-Options", "Content-Security-Policy", "Ratelimit-Limit", "Ratelimit-Remaining", "X-Upstream"} {
		if res.Get(name) == "" {
			t.Errorf("response header %s missing: %v", name, res)
		}
	}
	if res.Get("Strict-Transport-Security") != "" {
		t.Errorf("HSTS over plain http: %v", res)
	}
	if x.ClientRes.Status != http.StatusOK {
		t.Errorf("status %d", x.ClientRes.Status)
	}
}

// TestHSTSOverTLS: the scheme Kong reports decides the TLS-only security
// header, as the connection does on every other plane.
func TestHSTSOverTLS(t *testing.T) {
	_, c := startInstance(t, NodeOptions{}, map[string]any{"policy_file": conformancePolicy("standard.yaml")})
	x := send(t, c, test.Request{Url: "https://edge.test/healthz"}, test.Response{})
	if x.ClientRes.Headers.Get("Strict-Transport-Security") == "" {
		t.Fatalf("no HSTS over https: %v", x.ClientRes.Headers)
	}
}

// TestTooManyHeaders: a request with as many header fields as Kong hands a
// plugin may have more the plugin cannot see: it is refused with 431, and
// nothing reaches the upstream, forged claim headers included.
func TestTooManyHeaders(t *testing.T) {
	_, c := startInstance(t, NodeOptions{}, map[string]any{"policy_file": conformancePolicy("standard.yaml")})
	h := http.Header{"X-Auth-Subject": {"root"}}
	for i := 0; len(h) < MaxHeaders-1; i++ { // and Host
		h.Set(fmt.Sprintf("X-Filler-%d", i), "x")
	}
	x := send(t, c, test.Request{Url: "http://edge.test/healthz", Headers: h}, test.Response{})
	if !x.exited || x.ClientRes.Status != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("exited=%v status %d: want a 431 refusal", x.exited, x.ClientRes.Status)
	}
	if !strings.Contains(string(x.ClientRes.Body), `"reason":"headers_too_large"`) {
		t.Fatalf("body %s", x.ClientRes.Body)
	}
	// One fewer passes.
	h.Del("X-Filler-0")
	x = send(t, c, test.Request{Url: "http://edge.test/healthz", Headers: h}, test.Response{})
	if x.exited || x.ServiceReq.Headers.Get("X-Auth-Subject") != "" {
		t.Fatalf("%d fields: exited=%v status %d, upstream X-Auth-Subject %q", MaxHeaders-1, x.exited,
			x.ClientRes.Status, x.ServiceReq.Headers.Get("X-Auth-Subject"))
	}
}

// TestBreakerThroughAccessAndLog: the breaker opens on the failures Log
// reports, refuses in Access while open, lets one probe through after
// openFor, re-opens on a failed probe, ignores a probe the client gave up
// on, and closes on a good one. The clock is the test's.
func TestBreakerThroughAccessAndLog(t *testing.T) {
	clk := clocktest.New(time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC))
	n, c := startInstance(t, NodeOptions{Now: clk.Now}, map[string]any{
		"policy_file": conformancePolicy("breaker.yaml"), "upstream": "payments"})
	work := test.Request{Url: "http://edge.test/work"}
	step := func(upstream, wantStatus int, wantForwarded bool) {
		t.Helper()
		x := send(t, c, work, test.Response{Status: upstream})
		if x.ClientRes.Status != wantStatus || !x.exited != wantForwarded {
			t.Fatalf("status %d forwarded %v, want %d %v; body %s", x.ClientRes.Status, !x.exited, wantStatus, wantForwarded, x.ClientRes.Body)
		}
	}
	state := func(want breaker.State) {
		t.Helper()
		if got := n.sources["file:"+conformancePolicy("breaker.yaml")].breakers.Get("payments").State(); got != want {
			t.Fatalf("breaker %s, want %s", got, want)
		}
	}
	for i := 0; i < 3; i++ {
		step(http.StatusBadGateway, http.StatusBadGateway, true)
	}
	state(breaker.Open)
	step(0, http.StatusServiceUnavailable, false)
	clk.Advance(time.Second)
	step(http.StatusServiceUnavailable, http.StatusServiceUnavailable, true) // the probe fails
	state(breaker.Open)
	step(0, http.StatusServiceUnavailable, false)
	clk.Advance(time.Second)
	step(edge.StatusClientClosed, edge.StatusClientClosed, true) // the client left: no verdict, slot freed
	state(breaker.HalfOpen)
	step(http.StatusOK, http.StatusOK, true)
	state(breaker.Closed)
	step(http.StatusOK, http.StatusOK, true)
	if got := n.inflight.len(); got != 0 {
		t.Fatalf("%d requests still pending after their Log", got)
	}
}

// TestBreakersPerUpstream: two Kong services sharing one policy file keep
// a breaker each, named by upstream or, by default, by Kong's plugin id.
func TestBreakersPerUpstream(t *testing.T) {
	n, err := NewNode(NodeOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	start := func(conf string) *Config {
		c := n.New().(*Config)
		if err := json.Unmarshal([]byte(conf), c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	path := conformancePolicy("breaker.yaml")
	payments := start(fmt.Sprintf(`{"policy_file":%q,"upstream":"payments","__seq__":3}`, path))
	search := start(fmt.Sprintf(`{"policy_file":%q,"upstream":null,"__plugin_id":"0f1e","__seq__":4}`, path))
	for i := 0; i < 3; i++ {
		send(t, payments, test.Request{Url: "http://edge.test/work"}, test.Response{Status: http.StatusBadGateway})
	}
	if x := send(t, payments, test.Request{Url: "http://edge.test/work"}, test.Response{}); !x.exited {
		t.Fatal("payments' breaker did not open")
	}
	if x := send(t, search, test.Request{Url: "http://edge.test/work"}, test.Response{}); x.exited {
		t.Fatalf("search refused by payments' breaker: %s", x.ClientRes.Body)
	}
	reg := n.sources["file:"+path].breakers
	if reg.Get("kong-plugin:0f1e").State() != breaker.Closed || reg.Get("payments").State() != breaker.Open {
		t.Fatalf("breakers: %+v", reg.Snapshot())
	}
}

// TestOutcome: what Log tells the engine for each source and status Kong
// reports, and so how the breaker counts it and upstream_outcomes_total
// labels it.
func TestOutcome(t *testing.T) {
	for _, tc := range []struct {
		source        string
		status        int
		want          edge.Outcome
		fault, reason string
	}{
		{sourceService, 200, edge.Outcome{Status: 200}, "none", "allowed"},
		{sourceService, 101, edge.Outcome{Status: 101}, "none", "allowed"}, // a websocket the route allows
		{sourceService, 503, edge.Outcome{Status: 503}, "upstream", "allowed"},
		{sourceService, 504, edge.Outcome{Status: 504}, "upstream", "allowed"}, // the upstream's own 504
		{sourceService, 499, edge.Outcome{Status: 499, ClientFault: true}, "client", "client_closed"},
		{sourceError, 504, edge.Outcome{Status: 504, Timeout: true}, "upstream", "upstream_timeout"},
		{sourceError, 502, edge.Outcome{Status: 502, Connection: true}, "upstream", "upstream_unreachable"},
		{sourceError, 503, edge.Outcome{Status: 503, Connection: true}, "upstream", "upstream_unreachable"},
		{sourceError, 499, edge.Outcome{Status: 499, ClientFault: true}, "client", "client_closed"},
		{sourceError, 408, edge.Outcome{Status: 408, ClientFault: true, Timeout: true}, "client", "client_timeout"},
		{sourceError, 413, edge.Outcome{Status: 413, ClientFault: true}, "client", "body_too_large"},
		{sourceError, 400, edge.Outcome{Status: 400, ClientFault: true}, "client", "malformed_body"},
		{sourceError, 411, edge.Outcome{Status: 411, ClientFault: true}, "client", "malformed_body"},
		{sourceError, 500, edge.Outcome{Status: 500, Unknown: true}, "none", "outcome_unknown"},
		{sourceExit, 200, edge.Outcome{Status: 200, Unknown: true}, "none", "outcome_unknown"}, // proxy-cache hit
		{sourceExit, 503, edge.Outcome{Status: 503, Unknown: true}, "none", "outcome_unknown"},
		{sourceExit, 499, edge.Outcome{Status: 499, ClientFault: true}, "client", "client_closed"},
		{"", 0, edge.Outcome{Unknown: true}, "none", "outcome_unknown"},
	} {
		got := outcome(tc.source, tc.status)
		if got != tc.want || got.Fault() != tc.fault || got.Reason() != tc.reason {
			t.Errorf("outcome(%q, %d) = %+v (%s, %s), want %+v (%s, %s)", tc.source, tc.status,
				got, got.Fault(), got.Reason(), tc.want, tc.fault, tc.reason)
		}
	}
}

// TestStartRefusesBadConfigurations: Kong's schema cannot say "exactly one
// of"; the instance's start does, and refuses what would not work.
func TestStartRefusesBadConfigurations(t *testing.T) {
	n, err := NewNode(NodeOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	good := conformancePolicy("standard.yaml")
	for _, tc := range []struct{ conf, want string }{
		{`{}`, "set one of policy_file and policy"},
		{`{"policy_file":null,"policy":null}`, "set one of policy_file and policy"},
		{fmt.Sprintf(`{"policy_file":%q,"policy":"apiVersion: contentguard.dev/v1"}`, good), "not both"},
		{fmt.Sprintf(`{"policy_file":%q,"metrics_address":"0.0.0.0:9542"}`, good), "loopback"},
		{fmt.Sprintf(`{"policy_file":%q,"metrics_address":"127.0.0.1"}`, good), "metrics_address"},
		{fmt.Sprintf(`{"policy_file":%q,"upstream":"pay ments"}`, good), "upstream"},
		{`{"policy_file":"/nonexistent/policy.yaml"}`, "no such file"},
		{`{"policy":"apiVersion: contentguard.dev/v1\nkind: EdgePolicy\nmetadata: {name: x}\nspec: {routes: []}"}`, "routes"},
		{`{"policy_file": 7}`, "configuration"},
	} {
		err := json.Unmarshal([]byte(tc.conf), n.New())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %q", tc.conf, err, tc.want)
		}
	}
}

// TestUnstartedInstanceFailsClosed: an instance whose policy cannot load
// (here configured by hand, past Kong's start) refuses every request with a
// 500 problem and logs why.
func TestUnstartedInstanceFailsClosed(t *testing.T) {
	var logs syncbuf.Buffer
	n, err := NewNode(NodeOptions{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	c := n.New().(*Config)
	c.PolicyFile = filepath.Join(t.TempDir(), "missing.yaml")
	x := send(t, c, test.Request{}, test.Response{})
	if !x.exited || x.ClientRes.Status != http.StatusInternalServerError || x.ClientRes.Headers.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("exited=%v status %d headers %v", x.exited, x.ClientRes.Status, x.ClientRes.Headers)
	}
	id := x.ClientRes.Headers.Get("X-Request-Id")
	if id == "" || !strings.Contains(string(x.ClientRes.Body), id) || !strings.Contains(logs.String(), id) {
		t.Fatalf("request id %q in body %s and log %s", id, x.ClientRes.Body, logs.String())
	}
}

// TestNoPanicEscapes: a handler that fails half-way (here Kong's socket is
// gone) neither panics the plugin server nor hangs.
func TestNoPanicEscapes(t *testing.T) {
	var logs syncbuf.Buffer
	_, c := startInstance(t, NodeOptions{Logger: slog.New(slog.NewJSONHandler(&logs, nil))},
		map[string]any{"policy_file": conformancePolicy("standard.yaml")})
	broken := newPDK(nil) // every PDK call panics on the nil socket
	c.Access(broken)
	c.Log(broken)
	for _, want := range []string{"panic in the access phase", "panic in the log phase"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// TestClosedNodeRefuses: instances of a closed node refuse.
func TestClosedNodeRefuses(t *testing.T) {
	n, err := NewNode(NodeOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	err = json.Unmarshal([]byte(fmt.Sprintf(`{"policy_file":%q}`, conformancePolicy("standard.yaml"))), n.New())
	if !errors.Is(err, errClosed) {
		t.Fatalf("start on a closed node: %v", err)
	}
}

// TestClientAddress: the client address is the policy's reading of
// kong.client.get_ip (the harness's 10.10.10.1) and the forwarded headers:
// X-Forwarded-For counts only when the policy trusts the peer.
func TestClientAddress(t *testing.T) {
	policy := func(trusted string) string {
		return `apiVersion: contentguard.dev/v1
kind: EdgePolicy
metadata: {name: client-ip}
spec:
  clientIP: {trustedProxies: [` + trusted + `], headers: [X-Forwarded-For]}
  routes:
    - name: per-ip
      match: {path: /per-ip}
      auth: none
      rateLimit: {key: ip, rate: 1, per: 1h}
`
	}
	for _, tc := range []struct {
		trusted string
		want    []int
	}{
		{harnessPeer + "/32", []int{200, 200, 429}}, // three clients behind the proxy, the first twice
		{"192.0.2.0/24", []int{200, 429, 429}},      // one client spoofing the header
	} {
		_, c := startInstance(t, NodeOptions{}, map[string]any{"policy": policy(tc.trusted)})
		for i, xff := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.1"} {
			x := send(t, c, test.Request{Url: "http://edge.test/per-ip", Headers: http.Header{"X-Forwarded-For": {xff}}}, test.Response{})
			if x.ClientRes.Status != tc.want[i] {
				t.Errorf("trusting %s, request %d from %s: %d, want %d", tc.trusted, i+1, xff, x.ClientRes.Status, tc.want[i])
			}
		}
	}
}

// TestThroughTestNew: the plugin as go-pdk's documentation tests plugins —
// New's instance on the process's default node, configured by hand, driven
// by test.New and DoHttps (Access, an echoing service, Log).
func TestThroughTestNew(t *testing.T) {
	c := New().(*Config)
	c.PolicyFile = conformancePolicy("standard.yaml")
	env, err := test.New(t, test.Request{Method: "GET", Url: "http://example.com/healthz", Headers: http.Header{"X-Auth-Subject": {"root"}}})
	if err != nil {
		t.Fatal(err)
	}
	env.DoHttps(c)
	if env.ClientRes.Status != http.StatusOK || env.ClientRes.Headers.Get("X-Request-Id") == "" ||
		env.ClientRes.Headers.Get("X-Frame-Options") != "DENY" || env.ServiceReq.Headers.Get("X-Auth-Subject") != "" {
		t.Fatalf("allowed: status %d, response %v, upstream %v", env.ClientRes.Status, env.ClientRes.Headers, env.ServiceReq.Headers)
	}
	env, err = test.New(t, test.Request{Method: "GET", Url: "http://example.com/api/v1/jobs"})
	if err != nil {
		t.Fatal(err)
	}
	env.DoHttps(c)
	if env.ClientRes.Status != http.StatusUnauthorized || !strings.Contains(string(env.ClientRes.Body), `"reason":"credentials_missing"`) {
		t.Fatalf("refused: status %d body %s", env.ClientRes.Status, env.ClientRes.Body)
	}
}
