package apigateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/contentguard/contentguard/conformance"
	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/plugins/apigateway"
	"github.com/contentguard/contentguard/policy/policyfile"
)

// unsupported lists, by case tag, what an API Gateway authorizer cannot
// express; docs/deploy.md repeats it.
var unsupported = map[string]string{
	"circuit-breaker":       "the authorizer never hears the integration's outcome: decisions are DecideOnly and the breaker does not apply",
	"raw-header-bytes":      "API Gateway parses the request itself; the authorizer receives decoded header maps, never bytes",
	"leading-empty-line":    "API Gateway parses the request line itself",
	"invalid-target-escape": "API Gateway parses the request target itself",
	"large-headers":         "API Gateway bounds headers itself (10 KiB on REST APIs) before any authorizer runs",
}

// TestConformance runs the conformance suite's decisions through the
// authorizer, as payload 1.0 and as 2.0 events: forwarded or not, the
// status and reason of every rejection (401 as the error Unauthorized),
// the request ID and the forwarded claims in the context. What API Gateway
// cannot carry (response headers, problem bodies, stripping the client's
// headers, the upstream's own answer) is not compared; a case that
// expects the upstream to see a rewritten path expects a bad_path Deny
// here, since the integration would see the path as sent.
func TestConformance(t *testing.T) {
	dir := conformance.Dir()
	cases, err := conformance.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	minter, err := conformance.NewMinter(filepath.Join(dir, "testdata", "keys"))
	if err != nil {
		t.Fatal(err)
	}
	for _, payload := range []string{"1.0", "2.0"} {
		t.Run(payload, func(t *testing.T) {
			ran := 0
			for _, c := range cases {
				if why := unsupportedBy(c); why != "" {
					t.Logf("not run: %s (%s)", c.Name, why)
					continue
				}
				ran++
				t.Run(c.Name, func(t *testing.T) {
					t.Parallel()
					runCase(t, minter, dir, c, payload)
				})
			}
			if ran < 50 {
				t.Fatalf("only %d cases ran", ran)
			}
		})
	}
}

func unsupportedBy(c conformance.Case) string {
	for _, tag := range c.Tags {
		if why, ok := unsupported[tag]; ok {
			return why
		}
	}
	return ""
}

// clock stands still until the case advances it.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func runCase(t *testing.T, minter *conformance.Minter, dir string, c conformance.Case, payload string) {
	p, err := policyfile.Load(filepath.Join(dir, "policies", c.Policy))
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Now()}
	e, err := edge.New(context.Background(), p, edge.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	a := apigateway.New(e, nil)
	minter = minter.At(clk.Now)
	for i, s := range c.Steps {
		clk.Advance(s.Sleep)
		n := max(s.Repeat, 1)
		for k := range n {
			req, err := minter.Resolve(s.Request)
			if err != nil {
				t.Fatal(err)
			}
			got := authorize(t, a, req, payload)
			if problems := compare(s.Expect, req, got); len(problems) > 0 {
				t.Fatalf("%s step %d (request %d of %d) %s %s: %s\n  got %+v", c.File, i+1, k+1, n, req.Method, req.Path,
					strings.Join(problems, "; "), got)
			}
		}
	}
}

// outcome is what API Gateway learns from the authorizer.
type outcome struct {
	allow    bool
	status   int
	reason   string
	context  map[string]any
	upstream map[string]string
}

// authorize sends req as an authorizer event of the payload version.
func authorize(t *testing.T, a *apigateway.Authorizer, req conformance.SentRequest, payload string) outcome {
	t.Helper()
	path, query, _ := strings.Cut(req.Path, "?")
	h := req.Header.Clone()
	if req.BodyBytes > 0 {
		h.Set("Content-Length", strconv.Itoa(req.BodyBytes))
	}
	if h.Get("Host") == "" && !req.NoHost {
		h.Set("Host", "api.example.test")
	}
	var ev map[string]any
	if payload == "2.0" {
		flat := map[string]string{}
		for k, vs := range h {
			flat[strings.ToLower(k)] = strings.Join(vs, ",")
		}
		ev = map[string]any{
			"version": "2.0", "type": "REQUEST", "routeKey": "$default",
			"routeArn": "arn:aws:execute-api:eu-west-1:123456789012:api/$default/" + req.Method + path,
			"rawPath":  path, "rawQueryString": query, "headers": flat,
			"requestContext": map[string]any{"stage": "$default", "requestId": "gw",
				"http": map[string]any{"method": req.Method, "path": path, "sourceIp": req.Peer, "protocol": "HTTP/1.1"}},
		}
	} else {
		q := map[string][]string{}
		for _, kv := range strings.Split(query, "&") {
			if k, v, _ := strings.Cut(kv, "="); k != "" {
				q[k] = append(q[k], v)
			}
		}
		ev = map[string]any{
			"type": "REQUEST", "httpMethod": req.Method, "path": path, "resource": "/{proxy+}",
			"methodArn":         "arn:aws:execute-api:eu-west-1:123456789012:api/prod/" + req.Method + path,
			"multiValueHeaders": map[string][]string(h), "multiValueQueryStringParameters": q,
			"requestContext": map[string]any{"stage": "prod", "requestId": "gw", "identity": map[string]any{"sourceIp": req.Peer}},
		}
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Handle(context.Background(), raw)
	if errors.Is(err, apigateway.ErrUnauthorized) {
		return outcome{status: http.StatusUnauthorized}
	}
	if err != nil {
		t.Fatalf("authorizer error: %v", err)
	}
	m := asJSON(t, resp)
	st := m["policyDocument"].(map[string]any)["Statement"].([]any)[0].(map[string]any)
	o := outcome{allow: st["Effect"] == "Allow", context: m["context"].(map[string]any)}
	if res := st["Resource"].([]any); len(res) != 1 || res[0] != ev["methodArn"] && res[0] != ev["routeArn"] {
		t.Fatalf("statement resource %v", res)
	}
	o.status = int(o.context["status"].(float64))
	o.reason, _ = o.context["reason"].(string)
	if s, ok := o.context["upstreamHeaders"].(string); ok {
		if err := json.Unmarshal([]byte(s), &o.upstream); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

// upstreamReasons are reasons a plane gives after forwarding: the decision
// itself allowed the request.
var upstreamReasons = map[string]bool{
	edge.ReasonUpstreamTimeout: true, edge.ReasonUpstreamError: true, edge.ReasonClientTimeout: true,
	edge.ReasonMalformedBody: true, edge.ReasonClientClosed: true,
}

func compare(e conformance.Expect, req conformance.SentRequest, o outcome) []string {
	var out []string
	path, _, _ := strings.Cut(req.Path, "?")
	rewritten := e.UpstreamPath != "" && e.UpstreamPath != path
	wantAllow := e.Forwarded != nil && *e.Forwarded || upstreamReasons[e.Reason]
	switch {
	case rewritten:
		if o.allow || o.reason != edge.ReasonBadPath {
			out = append(out, fmt.Sprintf("the upstream would see %s for %s: want a bad_path Deny", e.UpstreamPath, path))
		}
		return out
	case e.Forwarded != nil && o.allow != *e.Forwarded:
		out = append(out, fmt.Sprintf("allowed %v, want forwarded %v", o.allow, *e.Forwarded))
	case wantAllow && !o.allow:
		out = append(out, "denied, want forwarded")
	}
	if !o.allow && !wantAllow {
		if e.Status != 0 && o.status != e.Status {
			out = append(out, fmt.Sprintf("status %d, want %d", o.status, e.Status))
		}
		if e.Reason != "" && o.status != http.StatusUnauthorized && o.reason != e.Reason {
			out = append(out, fmt.Sprintf("reason %q, want %q", o.reason, e.Reason))
		}
	}
	if !o.allow {
		return out
	}
	id, _ := o.context["requestId"].(string)
	for k, want := range e.UpstreamHeaders {
		if strings.HasPrefix(want, "@@RESPONSE:") {
			if !strings.EqualFold(strings.TrimSuffix(strings.TrimPrefix(want, "@@RESPONSE:"), "@@"), "X-Request-ID") {
				continue // a response header the authorizer cannot set
			}
			want = id
		}
		got, found := "", false
		for name, v := range o.upstream {
			if strings.EqualFold(name, k) {
				got, found = v, true
			}
		}
		if !found {
			// Not set by the decision: the client's own header, which API
			// Gateway passes to the integration as sent.
			got, found = strings.Join(req.Header.Values(k), ","), len(req.Header.Values(k)) > 0
		}
		if !found || got != want {
			out = append(out, fmt.Sprintf("upstream header %s = %q, want %q", k, got, want))
		}
	}
	incoming := req.Header.Get("X-Request-ID")
	switch e.RequestID {
	case "kept":
		if id != incoming {
			out = append(out, fmt.Sprintf("requestId %q, want the incoming %q", id, incoming))
		}
	case "generated":
		if id == "" || id == incoming {
			out = append(out, fmt.Sprintf("requestId %q, want a fresh one", id))
		}
	}
	return out
}
