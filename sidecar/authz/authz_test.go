package authz_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/contentguard/contentguard/conformance"
	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/policy/policyfile"
	"github.com/contentguard/contentguard/sidecar/authz"
)

func newHandler(t testing.TB, policyName string, opts authz.Options) *authz.Handler {
	t.Helper()
	p, err := policyfile.Load(filepath.Join(conformance.Dir(), "policies", policyName))
	if err != nil {
		t.Fatal(err)
	}
	e, err := edge.New(context.Background(), p, edge.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	opts.Engine = func() *edge.Engine { return e }
	h, err := authz.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// subrequest is what NGINX sends to the decision endpoint.
func subrequest(method, uri, realIP, peer string, header map[string]string) *http.Request {
	r := httptest.NewRequest("GET", authz.DecidePath, nil)
	r.RemoteAddr = peer + ":5000"
	r.Header.Set(authz.HeaderMethod, method)
	r.Header.Set(authz.HeaderURI, uri)
	if realIP != "" {
		r.Header.Set(authz.HeaderRealIP, realIP)
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	return r
}

func TestAllowedAnswerCarriesWhatNGINXCopies(t *testing.T) {
	h := newHandler(t, "standard.yaml", authz.Options{})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, subrequest("POST", "/api/v1/../v1/analyze?x=1", "198.51.100.4", "127.0.0.10",
		map[string]string{"X-API-Key": "cg-conformance-rw-key", "X-Auth-Subject": "forged", "X-Request-ID": "keep-me.1"}))
	got := w.Result().Header
	if w.Code != 200 || got.Get(authz.HeaderStatus) != "200" || got.Get(authz.HeaderPath) != "/api/v1/analyze" {
		t.Fatalf("%d %v", w.Code, got)
	}
	want := map[string]string{
		"X-CG-Up-X-Auth-Subject":    "batch-importer",
		"X-CG-Up-X-Request-Id":      "keep-me.1",
		"X-CG-Resp-X-Request-Id":    "keep-me.1",
		"X-CG-Resp-Ratelimit-Limit": "",
	}
	for k, v := range want {
		if v == "" {
			continue
		}
		if got.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, got.Get(k), v)
		}
	}
	if got.Get("X-CG-Resp-X-Content-Type-Options") != "nosniff" {
		t.Errorf("security headers are not passed: %v", got)
	}
}

func TestRejectionIsRenderedExactlyOnce(t *testing.T) {
	h := newHandler(t, "standard.yaml", authz.Options{})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, subrequest("GET", "/api/v1/x", "198.51.100.4", "127.0.0.1", nil))
	if w.Code != 401 || w.Header().Get(authz.HeaderStatus) != "401" || w.Header().Get("WWW-Authenticate") != "" {
		t.Fatalf("decide: %d %v", w.Code, w.Header())
	}
	key := w.Header().Get(authz.HeaderKey)
	render := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", authz.RenderPath, nil)
		r.Header.Set(authz.HeaderKey, key)
		rw := httptest.NewRecorder()
		h.ServeHTTP(rw, r)
		return rw
	}
	first := render()
	if first.Code != 401 || !strings.HasPrefix(first.Header().Get("WWW-Authenticate"), "Bearer") ||
		first.Header().Get("Content-Type") != "application/problem+json" || !strings.Contains(first.Body.String(), `"credentials_missing"`) {
		t.Fatalf("render: %d %v %s", first.Code, first.Header(), first.Body)
	}
	// A key is good once: a replayed or unknown key is refused, never allowed.
	if again := render(); again.Code != 403 || h.Pending() != 0 {
		t.Fatalf("second render: %d, %d pending", again.Code, h.Pending())
	}

	// 404 and the others come as 403 with the real status in X-CG-Status.
	w = httptest.NewRecorder()
	h.ServeHTTP(w, subrequest("GET", "/nowhere", "", "127.0.0.1", nil))
	if w.Code != 403 || w.Header().Get(authz.HeaderStatus) != "404" {
		t.Fatalf("no route: %d %v", w.Code, w.Header())
	}
}

func TestPendingRejectionsAreBoundedAndExpire(t *testing.T) {
	now := time.Now()
	h := newHandler(t, "standard.yaml", authz.Options{MaxPending: 3, TTL: time.Second, Now: func() time.Time { return now }})
	var keys []string
	for i := 0; i < 5; i++ {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, subrequest("GET", "/nowhere", "", "127.0.0.1", nil))
		keys = append(keys, w.Header().Get(authz.HeaderKey))
	}
	if h.Pending() != 3 {
		t.Fatalf("%d pending, want 3", h.Pending())
	}
	render := func(key string) int {
		r := httptest.NewRequest("GET", authz.RenderPath, nil)
		r.Header.Set(authz.HeaderKey, key)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	// Forgetting an issued key loses nothing: the key holds the answer.
	if render(keys[0]) != 404 || render(keys[4]) != 404 {
		t.Error("every unexpired key must render")
	}
	// Bounded: keys 1 and 2 were forgotten to make room, key 4 rendered.
	if h.Pending() != 1 {
		t.Errorf("%d pending, want 1 (key 3)", h.Pending())
	}
	now = now.Add(2 * time.Second)
	if render(keys[3]) != 403 || h.Pending() != 0 {
		t.Error("an expired decision must not render")
	}
}

// render asks h to render key.
func render(h *authz.Handler, key string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", authz.RenderPath, nil)
	r.Header.Set(authz.HeaderKey, key)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestRejectionRendersOnAnyInstance: the key carries the rejection sealed
// with the shared secret, so an instance that did not decide renders it
// exactly as the one that did would; an instance with another secret, a
// tampered key or a key past its TTL renders nothing but 403.
func TestRejectionRendersOnAnyInstance(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	a := newHandler(t, "standard.yaml", authz.Options{Secret: secret})
	b := newHandler(t, "standard.yaml", authz.Options{Secret: secret})
	stranger := newHandler(t, "standard.yaml", authz.Options{})
	decide := func(h *authz.Handler) string {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, subrequest("GET", "/api/v1/x", "198.51.100.4", "127.0.0.1", map[string]string{"X-Request-ID": "rid-1"}))
		if w.Code != 401 {
			t.Fatalf("decide: %d", w.Code)
		}
		return w.Header().Get(authz.HeaderKey)
	}
	here := render(a, decide(a))
	there := render(b, decide(a))
	if there.Code != 401 || there.Body.String() != here.Body.String() || there.Header().Get("WWW-Authenticate") != here.Header().Get("WWW-Authenticate") ||
		there.Header().Get("X-Request-ID") != "rid-1" || there.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("rendered by the other instance: %d %v %s\nby the deciding one: %d %v %s",
			there.Code, there.Header(), there.Body, here.Code, here.Header(), here.Body)
	}
	key := decide(a)
	if w := render(stranger, key); w.Code != 403 || !strings.Contains(w.Body.String(), "decision-unavailable") {
		t.Fatalf("another secret: %d %s", w.Code, w.Body)
	}
	tampered := []byte(key)
	tampered[len(tampered)/2] ^= 1
	if w := render(b, string(tampered)); w.Code != 403 {
		t.Fatalf("tampered key: %d %s", w.Code, w.Body)
	}
	if w := render(b, key); w.Code != 401 {
		t.Fatalf("the genuine key after a tampered one: %d", w.Code)
	}
	if w := render(b, key); w.Code != 403 {
		t.Fatalf("a key rendered twice by one instance: %d", w.Code)
	}
	if _, err := authz.New(authz.Options{Engine: func() *edge.Engine { return nil }, Secret: []byte("short")}); err == nil {
		t.Fatal("a secret of 5 bytes was accepted")
	}
}

// A rejection echoing a huge path still fits a key NGINX can carry: its
// problem document loses the detail and instance, nothing else.
func TestHugeRejectionStillRenders(t *testing.T) {
	h := newHandler(t, "standard.yaml", authz.Options{})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, subrequest("GET", "/nowhere/"+strings.Repeat("a", 8000), "", "127.0.0.1", nil))
	key := w.Header().Get(authz.HeaderKey)
	if w.Code != 403 || w.Header().Get(authz.HeaderStatus) != "404" || len(key) > 12<<10 {
		t.Fatalf("decide: %d %v, key of %d bytes", w.Code, w.Header().Get(authz.HeaderStatus), len(key))
	}
	r := render(h, key)
	if r.Code != 404 || !strings.Contains(r.Body.String(), `"reason":"no_route"`) || strings.Contains(r.Body.String(), "aaaa") {
		t.Fatalf("render: %d %s", r.Code, r.Body.String()[:min(300, r.Body.Len())])
	}
}

// FuzzRender: no key renders unless this handler sealed it, and nothing
// panics.
func FuzzRender(f *testing.F) {
	h := newHandler(f, "standard.yaml", authz.Options{})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, subrequest("GET", "/nowhere", "", "127.0.0.1", nil))
	f.Add(w.Header().Get(authz.HeaderKey))
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, key string) {
		if w := render(h, key); w.Code != 403 && w.Code != 404 {
			t.Fatalf("key %q rendered %d", key, w.Code)
		}
	})
}

// TestClientAddressComesFromTrustedPeersOnly: X-Real-IP names the client
// only when NGINX (a trusted peer) sends it.
func TestClientAddressComesFromTrustedPeersOnly(t *testing.T) {
	h := newHandler(t, "ratelimit.yaml", authz.Options{TrustedPeers: []netip.Prefix{netip.MustParsePrefix("127.0.0.250/32")}})
	status := func(realIP, peer string) string {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, subrequest("GET", "/per-ip", realIP, peer, nil))
		return w.Header().Get(authz.HeaderStatus)
	}
	// Through NGINX, two clients have a bucket each (1 per hour).
	if status("127.0.0.31", "127.0.0.250") != "200" || status("127.0.0.32", "127.0.0.250") != "200" {
		t.Fatal("two clients through NGINX must both pass")
	}
	if status("127.0.0.31", "127.0.0.250") != "429" {
		t.Fatal("the same client again must be limited")
	}
	// An untrusted caller cannot pick a fresh client address.
	if status("127.0.0.33", "127.0.0.77") != "200" || status("127.0.0.34", "127.0.0.77") != "429" {
		t.Fatal("X-Real-IP from an untrusted peer must be ignored")
	}
}

func TestMalformedSubrequestsFailClosed(t *testing.T) {
	h := newHandler(t, "standard.yaml", authz.Options{})
	for name, r := range map[string]*http.Request{
		"no method": subrequest("", "/healthz", "", "127.0.0.1", nil),
		"no URI":    subrequest("GET", "", "", "127.0.0.1", nil),
		"relative":  subrequest("GET", "healthz", "", "127.0.0.1", nil),
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 403 || w.Header().Get(authz.HeaderStatus) != "400" || w.Header().Get(authz.HeaderKey) == "" {
			t.Errorf("%s: %d %v", name, w.Code, w.Header())
		}
	}
	// Absolute-form targets lose scheme and authority.
	w := httptest.NewRecorder()
	h.ServeHTTP(w, subrequest("GET", "http://evil.example/healthz", "", "127.0.0.1", nil))
	if w.Code != 200 || w.Header().Get(authz.HeaderPath) != "/healthz" {
		t.Errorf("absolute form: %d %v", w.Code, w.Header())
	}
	// A declared body over the limit is 413 even though NGINX sends none.
	w = httptest.NewRecorder()
	r := subrequest("POST", "/api/v1/analyze", "", "127.0.0.1", nil)
	r.Header.Set(authz.HeaderContentLength, "99999999")
	h.ServeHTTP(w, r)
	if w.Header().Get(authz.HeaderStatus) != "413" {
		t.Errorf("large body: %v", w.Header())
	}
	if _, err := authz.New(authz.Options{}); err == nil {
		t.Error("New without an engine must fail")
	}
}

// FuzzDecide: any method, URI and client address gives 200, 401 or 403,
// never a panic.
func FuzzDecide(f *testing.F) {
	f.Add("GET", "/healthz", "198.51.100.1", "")
	f.Add("POST", "/api/v1/%2e%2e/admin?x=%zz", "::1", "123")
	f.Add("OPTIONS", "http://x", "not-an-ip", "-5")
	f.Add("GET", "*", "", "1e9")
	h := newHandler(f, "standard.yaml", authz.Options{})
	f.Fuzz(func(t *testing.T, method, uri, realIP, length string) {
		r := httptest.NewRequest("GET", authz.DecidePath, nil)
		r.RemoteAddr = "127.0.0.1:1"
		r.Header[authz.HeaderMethod] = []string{method}
		r.Header[authz.HeaderURI] = []string{uri}
		r.Header[authz.HeaderRealIP] = []string{realIP}
		r.Header[authz.HeaderContentLength] = []string{length}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 && w.Code != 401 && w.Code != 403 {
			t.Fatalf("status %d", w.Code)
		}
		if w.Code != 200 && w.Header().Get(authz.HeaderKey) == "" {
			t.Fatal("a rejection without a key cannot be rendered")
		}
	})
}

// BenchmarkDecide: one allowed decision (API key, rate limit, headers for
// NGINX) and one rejection stored for rendering.
func BenchmarkDecide(b *testing.B) {
	h := newHandler(b, "standard.yaml", authz.Options{})
	allowed := subrequest("GET", "/api/v1/items?page=2", "198.51.100.4", "127.0.0.1", map[string]string{"X-API-Key": "cg-conformance-read-key"})
	rejected := subrequest("GET", "/nowhere", "198.51.100.4", "127.0.0.1", nil)
	b.Run("allowed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, allowed)
		}
	})
	b.Run("rejected+render", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, rejected)
			r := httptest.NewRequest("GET", authz.RenderPath, nil)
			r.Header.Set(authz.HeaderKey, w.Header().Get(authz.HeaderKey))
			h.ServeHTTP(httptest.NewRecorder(), r)
		}
	})
}
