package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contentguard/contentguard/edge/auth"
	"github.com/golang-jwt/jwt/v5"
)

// jwksServer is a real HTTP JWKS endpoint whose answer the test changes.
type jwksServer struct {
	*httptest.Server
	fetches atomic.Int64

	mu     sync.Mutex
	status int
	body   string
	gate   chan struct{} // when non-nil, requests wait for it to close
	seen   chan struct{} // when non-nil, receives one value per request
}

func newJWKSServer(t *testing.T, body string) *jwksServer {
	s := &jwksServer{status: http.StatusOK, body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(w http.ResponseWriter, r *http.Request) {
	s.fetches.Add(1)
	s.mu.Lock()
	status, body, gate, seen := s.status, s.body, s.gate, s.seen
	s.mu.Unlock()
	if seen != nil {
		select {
		case seen <- struct{}{}:
		default: // nobody is counting this many
		}
	}
	if gate != nil {
		<-gate
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

func (s *jwksServer) set(status int, body string) {
	s.mu.Lock()
	s.status, s.body = status, body
	s.mu.Unlock()
}

func urlProvider(url string) auth.Provider {
	return auth.Provider{
		Name:       "remote",
		Issuer:     testIssuer,
		Audiences:  []string{testAudience},
		Algorithms: []string{"ES256"},
		JWKSURL:    url,
		Refresh:    time.Hour, // background refreshes stay out of the way
	}
}

func TestJWKSRefetchRotationRateLimitAndLastGoodSet(t *testing.T) {
	k := fixtureKeys(t)
	jwksA := jwksFor(t, map[string]crypto.PublicKey{"A": &k.ec256.PublicKey}, nil)
	jwksAB := jwksFor(t, map[string]crypto.PublicKey{"A": &k.ec256.PublicKey, "B": &k.ec256b.PublicKey}, nil)
	jwksB := jwksFor(t, map[string]crypto.PublicKey{"B": &k.ec256b.PublicKey}, nil)
	srv := newJWKSServer(t, jwksA)
	clk := newClock()
	var logs strings.Builder
	var logMu sync.Mutex
	logf := func(format string, args ...any) {
		logMu.Lock()
		fmt.Fprintf(&logs, format+"\n", args...)
		logMu.Unlock()
	}
	v := newVerifier(t, []auth.Provider{urlProvider(srv.URL)}, auth.Options{Now: clk.Now, Logf: logf})
	ctx := context.Background()
	expectFetches := func(want int64) {
		t.Helper()
		if got := srv.fetches.Load(); got != want {
			t.Fatalf("%d JWKS fetches, want %d", got, want)
		}
	}
	verify := func(tok string, want auth.Reason) {
		t.Helper()
		if _, reason := v.Verify(ctx, tok); reason != want {
			t.Fatalf("reason %q, want %q", reason, want)
		}
	}
	tokA := sign(t, jwt.SigningMethodES256, k.ec256, "A", claims(map[string]any{"exp": t0.Add(24 * time.Hour).Unix()}))
	tokB := sign(t, jwt.SigningMethodES256, k.ec256b, "B", claims(map[string]any{"exp": t0.Add(24 * time.Hour).Unix()}))
	tokRandom := func(i int) string {
		return sign(t, jwt.SigningMethodES256, k.ec256, fmt.Sprintf("random-%d", i), claims(nil))
	}

	expectFetches(1) // the first fetch, in NewVerifier
	verify(tokA, auth.ReasonOK)

	// The issuer rotates in key B. Within MinRefetchInterval of the first
	// fetch the unknown kid does not reach the server.
	srv.set(http.StatusOK, jwksAB)
	verify(tokB, auth.ReasonUnknownKey)
	expectFetches(1)

	// After the interval one refetch happens and B verifies.
	clk.Advance(31 * time.Second)
	verify(tokB, auth.ReasonOK)
	expectFetches(2)

	// A flood of random kids right after costs no fetch at all.
	for i := 0; i < 20; i++ {
		verify(tokRandom(i), auth.ReasonUnknownKey)
	}
	expectFetches(2)

	// The server breaks: the refetch fails, the last good set stays.
	clk.Advance(31 * time.Second)
	srv.set(http.StatusInternalServerError, "oops")
	verify(tokRandom(100), auth.ReasonUnknownKey)
	expectFetches(3)
	verify(tokA, auth.ReasonOK)
	verify(tokB, auth.ReasonOK)

	// Junk with status 200, and a set with no usable key: same.
	for i, junk := range []string{"<html>not json</html>", `{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`, `{"keys":[]}`} {
		clk.Advance(31 * time.Second)
		srv.set(http.StatusOK, junk)
		verify(tokRandom(200+i), auth.ReasonUnknownKey)
		expectFetches(int64(4 + i))
		verify(tokA, auth.ReasonOK)
		verify(tokB, auth.ReasonOK)
	}

	// A body over 1 MiB is refused too.
	clk.Advance(31 * time.Second)
	srv.set(http.StatusOK, `{"keys":[],"pad":"`+strings.Repeat("x", 1<<20)+`"}`)
	verify(tokRandom(300), auth.ReasonUnknownKey)
	expectFetches(7)
	verify(tokA, auth.ReasonOK)

	// The issuer retires A. Once a refetch sees that, the cached A token is
	// refused although it has not expired.
	clk.Advance(31 * time.Second)
	srv.set(http.StatusOK, jwksB)
	verify(tokRandom(400), auth.ReasonUnknownKey)
	expectFetches(8)
	verify(tokA, auth.ReasonUnknownKey)
	verify(tokB, auth.ReasonOK)

	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), "status 500") || !strings.Contains(logs.String(), "exceeds") {
		t.Errorf("failed refreshes were not logged:\n%s", logs.String())
	}
}

func TestJWKSRefetchCoalescesConcurrentCallers(t *testing.T) {
	k := fixtureKeys(t)
	srv := newJWKSServer(t, jwksFor(t, map[string]crypto.PublicKey{"A": &k.ec256.PublicKey}, nil))
	clk := newClock()
	v := newVerifier(t, []auth.Provider{urlProvider(srv.URL)}, auth.Options{Now: clk.Now})
	srv.set(http.StatusOK, jwksFor(t, map[string]crypto.PublicKey{"A": &k.ec256.PublicKey, "B": &k.ec256b.PublicKey}, nil))

	gate := make(chan struct{})
	seen := make(chan struct{}, 100)
	srv.mu.Lock()
	srv.gate, srv.seen = gate, seen
	srv.mu.Unlock()
	clk.Advance(time.Minute)

	const callers = 20
	tokB := sign(t, jwt.SigningMethodES256, k.ec256b, "B", claims(nil))
	results := make(chan auth.Reason, callers)
	for i := 0; i < callers; i++ {
		go func() {
			_, reason := v.Verify(context.Background(), tokB)
			results <- reason
		}()
	}
	<-seen // one fetch is in flight and held by the gate
	close(gate)
	for i := 0; i < callers; i++ {
		// A caller that arrived after the fetch ended finds B installed
		// or is rate-limited; either way no second fetch is made.
		if reason := <-results; reason != auth.ReasonOK && reason != auth.ReasonUnknownKey {
			t.Fatalf("caller %d: %q", i, reason)
		}
	}
	if got := srv.fetches.Load(); got != 2 {
		t.Fatalf("%d fetches for %d concurrent callers, want 2 (first + one refetch)", got, callers)
	}
	if _, reason := v.Verify(context.Background(), tokB); reason != auth.ReasonOK {
		t.Fatalf("after the refetch: %q", reason)
	}
}

func TestJWKSRefetchWaitEndsWithCallerContext(t *testing.T) {
	k := fixtureKeys(t)
	srv := newJWKSServer(t, jwksFor(t, map[string]crypto.PublicKey{"A": &k.ec256.PublicKey}, nil))
	clk := newClock()
	v := newVerifier(t, []auth.Provider{urlProvider(srv.URL)}, auth.Options{Now: clk.Now})
	gate := make(chan struct{})
	defer close(gate)
	seen := make(chan struct{}, 10)
	srv.mu.Lock()
	srv.gate, srv.seen = gate, seen
	srv.mu.Unlock()
	clk.Advance(time.Minute)

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-seen
		cancel()
	}()
	if _, reason := v.Verify(ctx, sign(t, jwt.SigningMethodES256, k.ec256b, "B", claims(nil))); reason != auth.ReasonUnknownKey {
		t.Fatalf("reason %q, want %q", reason, auth.ReasonUnknownKey)
	}
}

func TestURLProviderFailsClosedUntilKeysArrive(t *testing.T) {
	k := fixtureKeys(t)
	srv := newJWKSServer(t, "")
	srv.set(http.StatusServiceUnavailable, "down")
	clk := newClock()
	v := newVerifier(t, []auth.Provider{urlProvider(srv.URL)}, auth.Options{Now: clk.Now})
	tok := sign(t, jwt.SigningMethodES256, k.ec256, "A", claims(map[string]any{"exp": t0.Add(time.Hour).Unix()}))

	if _, reason := v.Verify(context.Background(), tok); reason != auth.ReasonNoKeys {
		t.Fatalf("no keys yet: %q", reason)
	}
	srv.set(http.StatusOK, jwksFor(t, map[string]crypto.PublicKey{"A": &k.ec256.PublicKey}, nil))
	if _, reason := v.Verify(context.Background(), tok); reason != auth.ReasonNoKeys {
		t.Fatalf("within the refetch interval: %q", reason)
	}
	clk.Advance(31 * time.Second)
	if _, reason := v.Verify(context.Background(), tok); reason != auth.ReasonOK {
		t.Fatalf("after keys arrived: %q", reason)
	}
	if got := srv.fetches.Load(); got != 2 {
		t.Fatalf("%d fetches, want 2", got)
	}
}

func TestJWKSBackgroundRefresh(t *testing.T) {
	k := fixtureKeys(t)
	srv := newJWKSServer(t, jwksFor(t, map[string]crypto.PublicKey{"A": &k.ec256.PublicKey}, nil))
	seen := make(chan struct{}, 100)
	srv.mu.Lock()
	srv.seen = seen
	srv.mu.Unlock()
	p := urlProvider(srv.URL)
	p.Refresh = time.Millisecond
	rt := &countingTransport{next: http.DefaultTransport}
	client := &http.Client{Timeout: 5 * time.Second, Transport: rt}
	v, err := auth.NewVerifier(context.Background(), []auth.Provider{p}, auth.Options{Now: newClock().Now, HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	// The first fetch plus at least two background refreshes arrive.
	for i := 0; i < 3; i++ {
		<-seen
	}
	v.Close()
	// Close waited for the refresh goroutine and any fetch it ran: no
	// request starts afterwards, not even for an unknown kid.
	after := rt.calls.Load()
	if _, reason := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, k.ec256, "A", claims(nil))); reason != auth.ReasonOK {
		t.Fatalf("after Close: %q", reason)
	}
	if _, reason := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, k.ec256, "zzz", claims(nil))); reason != auth.ReasonUnknownKey {
		t.Fatalf("unknown kid after Close: %q", reason)
	}
	if got := rt.calls.Load(); got != after {
		t.Fatalf("requests went from %d to %d after Close", after, got)
	}
}

// countingTransport counts the requests a client starts.
type countingTransport struct {
	next  http.RoundTripper
	calls atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.calls.Add(1)
	return c.next.RoundTrip(r)
}

// timers is an Options.NewTimer the test drives: each time the verifier
// arms its timer, the wait arrives on asked, and fire makes it go off.
type timers struct {
	asked chan time.Duration
	mu    sync.Mutex
	f     func()
}

func newTimers() *timers { return &timers{asked: make(chan time.Duration, 1)} }

func (tm *timers) NewTimer(f func()) auth.Timer {
	tm.mu.Lock()
	tm.f = f
	tm.mu.Unlock()
	return tm
}

func (tm *timers) Reset(d time.Duration) bool { tm.asked <- d; return false }
func (tm *timers) Stop() bool                 { return false }

func (tm *timers) fire() {
	tm.mu.Lock()
	f := tm.f
	tm.mu.Unlock()
	f()
}

// fetchLog is an Options.OnFetch that passes each report to the test as
// "provider url ok" or "provider url error: ...".
type fetchLog chan string

func (f fetchLog) record(provider, url string, err error) {
	result := "ok"
	if err != nil {
		result = "error: " + err.Error()
	}
	f <- provider + " " + url + " " + result
}

// TestJWKSRetryBacksOffFromOneSecond: after a failed fetch the background
// loop retries after 1s, doubling up to the refresh period; a success goes
// back to the refresh period, and the next failure starts again at 1s.
// Every fetch is reported to OnFetch with the URL and the error.
func TestJWKSRetryBacksOffFromOneSecond(t *testing.T) {
	k := fixtureKeys(t)
	srv := newJWKSServer(t, "")
	srv.set(http.StatusServiceUnavailable, "down")
	tm := newTimers()
	fetches := make(fetchLog, 1)
	var logs strings.Builder
	var logMu sync.Mutex
	p := urlProvider(srv.URL)
	p.Refresh = 10 * time.Second
	v := newVerifier(t, []auth.Provider{p}, auth.Options{NewTimer: tm.NewTimer, OnFetch: fetches.record,
		Logf: func(format string, args ...any) {
			logMu.Lock()
			fmt.Fprintf(&logs, format+"\n", args...)
			logMu.Unlock()
		}})
	tok := sign(t, jwt.SigningMethodES256, k.ec256, "A", claims(nil))
	if _, reason := v.Verify(context.Background(), tok); reason != auth.ReasonNoKeys {
		t.Fatalf("before any key: %q", reason)
	}
	if got := v.WithoutKeys(); len(got) != 1 || got[0] != "remote" {
		t.Fatalf("WithoutKeys = %v", got)
	}
	failed := "remote " + srv.URL + " error: jwks fetch " + srv.URL + ": status 503"
	step := func(wantWait time.Duration, wantFetch string) {
		t.Helper()
		if d := <-tm.asked; d != wantWait {
			t.Fatalf("the loop waits %v, want %v", d, wantWait)
		}
		tm.fire()
		if got := <-fetches; got != wantFetch {
			t.Fatalf("after waiting %v: fetch %q, want %q", wantWait, got, wantFetch)
		}
	}
	if got := <-fetches; got != failed {
		t.Fatalf("first fetch: %q", got)
	}
	for _, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second} {
		step(wait, failed)
	}
	srv.set(http.StatusOK, jwksFor(t, map[string]crypto.PublicKey{"A": &k.ec256.PublicKey}, nil))
	step(10*time.Second, "remote "+srv.URL+" ok")
	if _, reason := v.Verify(context.Background(), tok); reason != auth.ReasonOK {
		t.Fatalf("after the keys arrived: %q", reason)
	}
	if got := v.WithoutKeys(); len(got) != 0 {
		t.Fatalf("WithoutKeys = %v after a good fetch", got)
	}
	// Refreshing every 10s now; a failure starts the backoff at 1s again,
	// and the last good keys stay.
	srv.set(http.StatusServiceUnavailable, "down")
	step(10*time.Second, failed)
	step(time.Second, failed)
	if _, reason := v.Verify(context.Background(), tok); reason != auth.ReasonOK {
		t.Fatalf("with the last good keys: %q", reason)
	}
	// OnFetch took the failures: Logf is not told them a second time.
	logMu.Lock()
	defer logMu.Unlock()
	if strings.Contains(logs.String(), "status 503") {
		t.Fatalf("failed fetches went to Logf as well as OnFetch:\n%s", logs.String())
	}
}

// TestInProcessKeys: a provider whose issuer signs in this process verifies
// with that issuer's keys from the first token, never fetching its URL (the
// URL would name this process, which may not listen yet); a provider with
// its own file or inline keys keeps them beside the in-process ones.
func TestInProcessKeys(t *testing.T) {
	k := fixtureKeys(t)
	own := jwksFor(t, map[string]crypto.PublicKey{"own": &k.ec256.PublicKey}, nil)
	srv := newJWKSServer(t, "")
	srv.set(http.StatusServiceUnavailable, "not listening yet")
	var logs strings.Builder
	v := newVerifier(t, []auth.Provider{urlProvider(srv.URL)}, auth.Options{
		InProcessJWKS: map[string][]byte{testIssuer: []byte(own)},
		Logf:          func(format string, args ...any) { fmt.Fprintf(&logs, format+"\n", args...) },
	})
	if _, reason := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, k.ec256, "own", claims(nil))); reason != auth.ReasonOK {
		t.Fatalf("the first token of the in-process issuer: %q", reason)
	}
	if _, reason := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, k.ec256b, "other", claims(nil))); reason != auth.ReasonUnknownKey {
		t.Fatalf("a key the issuer does not have: %q", reason)
	}
	if n := srv.fetches.Load(); n != 0 {
		t.Fatalf("the URL of an in-process issuer was fetched %d times", n)
	}
	if len(v.WithoutKeys()) != 0 || !strings.Contains(logs.String(), "is not fetched") {
		t.Fatalf("WithoutKeys %v, log %q", v.WithoutKeys(), logs.String())
	}

	inline := urlProvider("")
	inline.JWKSURL, inline.JWKSInline = "", jwksFor(t, map[string]crypto.PublicKey{"file": &k.ec256b.PublicKey}, nil)
	v = newVerifier(t, []auth.Provider{inline}, auth.Options{InProcessJWKS: map[string][]byte{testIssuer: []byte(own)}})
	for kid, key := range map[string]*ecdsa.PrivateKey{"own": k.ec256, "file": k.ec256b} {
		if _, reason := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, key, kid, claims(nil))); reason != auth.ReasonOK {
			t.Fatalf("kid %s beside in-process keys: %q", kid, reason)
		}
	}
	// Another issuer's provider is not given the in-process keys.
	other := mainProvider(t)
	v = newVerifier(t, []auth.Provider{other}, auth.Options{InProcessJWKS: map[string][]byte{"https://elsewhere": []byte(own)}})
	if _, reason := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, k.ec256b, "own", claims(nil))); reason != auth.ReasonUnknownKey {
		t.Fatalf("keys of another issuer: %q", reason)
	}
}
