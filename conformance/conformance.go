// Package conformance holds contentguard's decision cases as data and the one
// runner that every data plane's tests call. A case is a policy, a sequence of
// requests (with how the upstream answers each) and what must come back: the
// status, response headers, and the headers and path the upstream receives.
//
// A data plane joins the suite by implementing Plane: start an instance for a
// policy file, send one request through it. The engine, the engine under
// Yaegi, the sidecar over real HTTP and NGINX in front of the sidecar all run
// the same cases, which is how "same policy, same decision" is proven rather
// than promised.
package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// Request is one request of a step, as the client sends it.
type Request struct {
	Method string            `yaml:"method"`
	Path   string            `yaml:"path"` // raw request target path, sent verbatim (may hold %2e, //)
	Header map[string]string `yaml:"headers"`
	// Multi holds headers sent more than once, in order (after Header and
	// Token's Authorization).
	Multi map[string][]string `yaml:"multiHeaders"`
	// Peer is the client's address: a loopback address so that real-network
	// planes can bind it (127.0.0.0/8).
	Peer string `yaml:"peer"`
	// BodyBytes sends a body of this many bytes.
	BodyBytes int `yaml:"bodyBytes"`
	// Token, when set, is minted and sent as "Authorization: Bearer ...".
	Token *Token `yaml:"token"`
	// Wire-level variations, for planes that send bytes (the engine sees
	// the same request either way): Proto is the request line's version
	// (default HTTP/1.1), NoHost leaves the Host header out (HTTP/1.0
	// allows that), EmptyLines sends that many CRLFs before the request
	// line (RFC 9112 §2.2).
	Proto      string `yaml:"proto"`
	NoHost     bool   `yaml:"noHost"`
	EmptyLines int    `yaml:"emptyLines"`
}

// Upstream scripts how the upstream answers a forwarded request.
type Upstream struct {
	Status int           `yaml:"status"` // default 200
	Delay  time.Duration `yaml:"delay"`  // answer after this long (timeouts)
	Down   bool          `yaml:"down"`   // refuse connections
}

// Expect is what must come back.
type Expect struct {
	Status int    `yaml:"status"`
	Reason string `yaml:"reason"` // the problem's reason code, for edge-made answers
	// Forwarded says whether the upstream must (true) or must not (false)
	// have seen the request.
	Forwarded *bool `yaml:"forwarded"`
	// Headers must be equal (case-insensitive names, exact values).
	Headers map[string]string `yaml:"headers"`
	// HeadersContain must contain the value as a substring.
	HeadersContain map[string]string `yaml:"headersContain"`
	HeadersPresent []string          `yaml:"headersPresent"`
	HeadersAbsent  []string          `yaml:"headersAbsent"`
	// RequestID is "kept" (the incoming X-Request-ID came back) or
	// "generated" (a fresh, well-formed id came back instead).
	RequestID             string            `yaml:"requestID"`
	UpstreamHeaders       map[string]string `yaml:"upstreamHeaders"`
	UpstreamHeadersAbsent []string          `yaml:"upstreamHeadersAbsent"`
	UpstreamPath          string            `yaml:"upstreamPath"`
}

// Step is one request and its expectation, optionally after a pause.
type Step struct {
	Sleep    time.Duration `yaml:"sleep"` // time that passes before the request (refill, breaker timers): a Clocked instance's clock advances, others sleep
	Repeat   int           `yaml:"repeat"`
	Request  Request       `yaml:"request"`
	Upstream Upstream      `yaml:"upstream"`
	Expect   Expect        `yaml:"expect"`
}

// Case is one named scenario.
type Case struct {
	Name   string `yaml:"name"`
	Policy string `yaml:"policy"` // file name under policies/
	// Tags let a plane that cannot express a feature list it openly (see
	// Plane.Unsupported) instead of silently skipping it.
	Tags  []string `yaml:"tags"`
	Steps []Step   `yaml:"steps"`
	// File is the case file the case came from.
	File string `yaml:"-"`
}

// Response is what a plane saw for one request.
type Response struct {
	Status         int
	Header         http.Header
	Body           []byte
	Forwarded      bool
	UpstreamHeader http.Header
	UpstreamPath   string
}

// SentRequest is a Request with everything resolved: tokens minted, headers
// expanded. Planes send exactly this.
type SentRequest struct {
	Method    string
	Path      string
	Header    http.Header
	Peer      string
	BodyBytes int
	// Proto, NoHost and EmptyLines are Request's, Proto defaulted.
	Proto      string
	NoHost     bool
	EmptyLines int
}

// RequestLine is the request as a plane writes it on the wire up to the
// Host header: the empty lines, the request line and Host (unless NoHost).
func (s SentRequest) RequestLine(host string) string {
	line := strings.Repeat("\r\n", s.EmptyLines) + s.Method + " " + s.Path + " " + s.Proto + "\r\n"
	if !s.NoHost {
		line += "Host: " + host + "\r\n"
	}
	return line
}

// Plane is a data plane under test.
type Plane interface {
	// Start runs a fresh instance enforcing the policy file at policyPath.
	Start(t testing.TB, policyPath string) Instance
}

// Instance is one running data plane.
type Instance interface {
	Do(t testing.TB, req SentRequest, up Upstream) Response
	Close()
}

// Clocked is an Instance whose engine reads a clock of its own, which
// stands still until Advance moves it (a plane built on the engine passes
// it as edge.Options.Now). RunCase mints a case's tokens at Now and
// advances the clock for a step's sleep instead of sleeping, so time in a
// case moves only when the case says so: a bucket's refill, a breaker's
// open period and token lifetimes never depend on how fast a loaded
// machine gets from one request to the next. Instances that cannot take a
// clock (a gateway binary) leave it out, and RunCase sleeps for real.
type Clocked interface {
	Now() time.Time
	Advance(d time.Duration)
}

// Dir is the directory of this package's cases, policies and keys.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// Load reads every case under dir/cases.
func Load(dir string) ([]Case, error) {
	files, err := filepath.Glob(filepath.Join(dir, "cases", "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var all []Case
	names := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var doc struct {
			Cases []Case `yaml:"cases"`
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&doc); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for i := range doc.Cases {
			c := doc.Cases[i]
			c.File = filepath.Base(f)
			if prev, dup := names[c.Name]; dup {
				return nil, fmt.Errorf("%s: case %q already defined in %s", f, c.Name, prev)
			}
			names[c.Name] = c.File
			if c.Policy == "" || len(c.Steps) == 0 {
				return nil, fmt.Errorf("%s: case %q needs a policy and steps", f, c.Name)
			}
			all = append(all, c)
		}
	}
	return all, nil
}

// Options tune a run.
type Options struct {
	// Unsupported maps a case tag to why this plane cannot express it; such
	// cases are reported, by name and reason, and not run.
	Unsupported map[string]string
	// Only runs just these cases (by name) when not empty.
	Only func(Case) bool
	// Clients, when > 0, runs that many cases at once, each from its own
	// goroutine, instead of as parallel subtests (which -parallel bounds,
	// to GOMAXPROCS by default): a plane that must hold up under many
	// concurrent clients from its first request on runs the suite so.
	Clients int
}

// Run runs every case against the plane, each as a parallel subtest, and
// returns how many it started.
func Run(t *testing.T, plane Plane, opts Options) int {
	dir := Dir()
	cases, err := Load(dir)
	if err != nil {
		t.Fatalf("load conformance cases: %v", err)
	}
	minter, err := NewMinter(filepath.Join(dir, "testdata", "keys"))
	if err != nil {
		t.Fatalf("conformance keys: %v", err)
	}
	var run []Case
	for _, c := range cases {
		if opts.Only != nil && !opts.Only(c) {
			continue
		}
		if why := unsupported(c, opts.Unsupported); why != "" {
			t.Logf("not run on this plane: %s (%s)", c.Name, why)
			continue
		}
		run = append(run, c)
	}
	if len(run) == 0 {
		t.Fatal("no conformance case ran")
	}
	if opts.Clients > 0 {
		runConcurrently(t, plane, minter, dir, run, opts.Clients)
		return len(run)
	}
	for _, c := range run {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			RunCase(t, plane, minter, dir, c)
		})
	}
	return len(run)
}

// runConcurrently runs cases from clients goroutines at once (t.Run may be
// called from several goroutines; each subtest runs on its caller's).
func runConcurrently(t *testing.T, plane Plane, minter *Minter, dir string, cases []Case, clients int) {
	next := make(chan Case)
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range next {
				t.Run(c.Name, func(t *testing.T) { RunCase(t, plane, minter, dir, c) })
			}
		}()
	}
	for _, c := range cases {
		next <- c
	}
	close(next)
	wg.Wait()
}

func unsupported(c Case, m map[string]string) string {
	for _, tag := range c.Tags {
		if why, ok := m[tag]; ok {
			return why
		}
	}
	return ""
}

// RunCase runs one case against a fresh instance of the plane.
func RunCase(t testing.TB, plane Plane, minter *Minter, dir string, c Case) {
	inst := plane.Start(t, filepath.Join(dir, "policies", c.Policy))
	defer inst.Close()
	clock, clocked := inst.(Clocked)
	if clocked {
		minter = minter.At(clock.Now)
	}
	for i, s := range c.Steps {
		n := s.Repeat
		if n == 0 {
			n = 1
		}
		switch {
		case s.Sleep > 0 && clocked:
			clock.Advance(s.Sleep)
		case s.Sleep > 0:
			time.Sleep(s.Sleep)
		}
		for k := 0; k < n; k++ {
			req, err := minter.Resolve(s.Request)
			if err != nil {
				t.Fatalf("step %d: %v", i+1, err)
			}
			resp := inst.Do(t, req, s.Upstream)
			if problems := Check(s.Expect, req, resp); len(problems) > 0 {
				t.Fatalf("%s step %d (request %d of %d) %s %s:\n  %s\n  status %d, headers %v\n  body %s",
					c.File, i+1, k+1, n, req.Method, req.Path, strings.Join(problems, "\n  "),
					resp.Status, resp.Header, truncate(resp.Body, 400))
			}
		}
	}
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// Check compares a response with an expectation and lists every mismatch.
func Check(e Expect, req SentRequest, r Response) []string {
	var out []string
	if e.Status != 0 && r.Status != e.Status {
		out = append(out, fmt.Sprintf("status %d, want %d", r.Status, e.Status))
	}
	if e.Forwarded != nil && r.Forwarded != *e.Forwarded {
		out = append(out, fmt.Sprintf("forwarded=%v, want %v", r.Forwarded, *e.Forwarded))
	}
	if e.Reason != "" || !r.Forwarded && r.Status >= 400 {
		// Every error the edge itself produces is problem+json carrying
		// the request ID, in the body and in the header.
		out = append(out, checkProblem(e, r)...)
	}
	for k, v := range e.Headers {
		if got := r.Header.Values(k); len(got) == 0 || strings.Join(got, ", ") != v {
			out = append(out, fmt.Sprintf("header %s = %q, want %q", k, strings.Join(got, ", "), v))
		}
	}
	for k, v := range e.HeadersContain {
		if got := strings.Join(r.Header.Values(k), ", "); !strings.Contains(got, v) {
			out = append(out, fmt.Sprintf("header %s = %q, want it to contain %q", k, got, v))
		}
	}
	for _, k := range e.HeadersPresent {
		if r.Header.Get(k) == "" {
			out = append(out, fmt.Sprintf("header %s missing", k))
		}
	}
	for _, k := range e.HeadersAbsent {
		if v := r.Header.Values(k); len(v) > 0 {
			out = append(out, fmt.Sprintf("header %s = %q, want it absent", k, v))
		}
	}
	switch e.RequestID {
	case "kept":
		if got, sent := r.Header.Get("X-Request-ID"), req.Header.Get("X-Request-ID"); got != sent {
			out = append(out, fmt.Sprintf("X-Request-ID %q, want the incoming %q kept", got, sent))
		}
	case "generated":
		got := r.Header.Get("X-Request-ID")
		if got == "" || got == req.Header.Get("X-Request-ID") || !validRequestID(got) {
			out = append(out, fmt.Sprintf("X-Request-ID %q, want a freshly generated id", got))
		}
	case "":
	default:
		out = append(out, fmt.Sprintf("unknown requestID expectation %q", e.RequestID))
	}
	for k, v := range e.UpstreamHeaders {
		if !r.Forwarded {
			out = append(out, fmt.Sprintf("upstream header %s expected but nothing was forwarded", k))
			continue
		}
		if strings.HasPrefix(v, "@@RESPONSE:") {
			// The upstream must see what the client was told.
			v = r.Header.Get(strings.TrimSuffix(strings.TrimPrefix(v, "@@RESPONSE:"), "@@"))
		}
		if got := strings.Join(r.UpstreamHeader.Values(k), ", "); got != v || v == "" {
			out = append(out, fmt.Sprintf("upstream header %s = %q, want %q", k, got, v))
		}
	}
	for _, k := range e.UpstreamHeadersAbsent {
		if v := r.UpstreamHeader.Values(k); r.Forwarded && len(v) > 0 {
			out = append(out, fmt.Sprintf("upstream header %s = %q, want it stripped", k, v))
		}
	}
	if e.UpstreamPath != "" && r.UpstreamPath != e.UpstreamPath {
		out = append(out, fmt.Sprintf("upstream path %q, want %q", r.UpstreamPath, e.UpstreamPath))
	}
	return out
}

func checkProblem(e Expect, r Response) []string {
	var out []string
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		return append(out, fmt.Sprintf("content type %q, want application/problem+json", ct))
	}
	var p struct {
		Type      string `json:"type"`
		Title     string `json:"title"`
		Status    int    `json:"status"`
		Detail    string `json:"detail"`
		RequestID string `json:"request_id"`
		Reason    string `json:"reason"`
	}
	if err := json.Unmarshal(r.Body, &p); err != nil {
		return append(out, fmt.Sprintf("problem body is not JSON: %v", err))
	}
	if p.Type == "" || p.Title == "" || p.Detail == "" || p.Status != r.Status {
		out = append(out, fmt.Sprintf("problem lacks type/title/detail or status %d != %d", p.Status, r.Status))
	}
	if p.RequestID == "" || p.RequestID != r.Header.Get("X-Request-ID") {
		out = append(out, fmt.Sprintf("problem request_id %q, header X-Request-ID %q: want equal and set", p.RequestID, r.Header.Get("X-Request-ID")))
	}
	if e.Reason != "" && p.Reason != e.Reason {
		out = append(out, fmt.Sprintf("reason %q, want %q", p.Reason, e.Reason))
	}
	return out
}

func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}
