package edge_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/edge/breaker"
	"github.com/contentguard/contentguard/internal/clocktest"
	"github.com/contentguard/contentguard/policy"
)

// TestObserveClientFaultNotCounted: outcomes the client caused never move
// the breaker, however many; the upstream's own failures still open it.
func TestObserveClientFaultNotCounted(t *testing.T) {
	clk := clocktest.New(time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC))
	e := breakerEngine(t, clk.Now)
	req := edge.Request{Method: "POST", Host: "api", Path: "/x", Peer: netip.MustParseAddr("192.0.2.1"), ContentLength: -1}
	run := func(o edge.Outcome) edge.Decision {
		d := e.Check(context.Background(), req)
		if d.Allow {
			e.Observe(&d, o)
		}
		return d
	}
	faults := []edge.Outcome{
		{Timeout: true, ClientFault: true},
		{Connection: true, ClientFault: true},
		{Status: 400, ClientFault: true},
		{Status: 408, ClientFault: true},
	}
	for i := 0; i < 20; i++ {
		if d := run(faults[i%len(faults)]); !d.Allow {
			t.Fatalf("request %d refused (%s) after client faults only", i, d.Reason)
		}
	}
	if st := e.Breakers().Get("127.0.0.1:1").State(); st != breaker.Closed {
		t.Fatalf("client faults moved the breaker to %s", st)
	}
	for i := 0; i < 3; i++ {
		run(edge.Outcome{Timeout: true})
	}
	if st := e.Breakers().Get("127.0.0.1:1").State(); st != breaker.Open {
		t.Fatalf("three upstream timeouts left the breaker %s", st)
	}
	// Half-open: a client fault frees the probe slot without deciding.
	clk.Advance(10 * time.Second)
	if d := run(edge.Outcome{ClientFault: true, Status: 400}); !d.Allow {
		t.Fatalf("half-open probe refused: %s", d.Reason)
	}
	if st := e.Breakers().Get("127.0.0.1:1").State(); st != breaker.HalfOpen {
		t.Fatalf("client fault decided the probe: %s", st)
	}
	if d := run(edge.Outcome{Status: 200}); !d.Allow {
		t.Fatalf("slot not released: %s", d.Reason)
	}
	if st := e.Breakers().Get("127.0.0.1:1").State(); st != breaker.Closed {
		t.Fatalf("good probe left the breaker %s", st)
	}
}

// TestObserveUnknownNotCounted: an outcome the edge did not see (another
// component answered the client) never moves the breaker, whatever the
// status it carries; in half-open it frees the probe slot undecided.
func TestObserveUnknownNotCounted(t *testing.T) {
	clk := clocktest.New(time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC))
	e := breakerEngine(t, clk.Now)
	b := e.Breakers().Get("127.0.0.1:1")
	run := func(o edge.Outcome) {
		t.Helper()
		d := e.Check(context.Background(), edge.Request{Method: "GET", Host: "api", Path: "/x", Peer: netip.MustParseAddr("192.0.2.1")})
		if !d.Allow {
			t.Fatalf("refused (%s) in state %s", d.Reason, b.State())
		}
		e.Observe(&d, o)
	}
	for i := 0; i < 10; i++ {
		run(edge.Outcome{Unknown: true, Status: 503})
	}
	if st := b.State(); st != breaker.Closed {
		t.Fatalf("unknown outcomes moved the breaker to %s", st)
	}
	for i := 0; i < 3; i++ {
		run(edge.Outcome{Status: 503})
	}
	if st := b.State(); st != breaker.Open {
		t.Fatalf("three 503s left the breaker %s", st)
	}
	clk.Advance(10 * time.Second)
	run(edge.Outcome{Unknown: true, Status: 200}) // a cached answer must not close it
	if st := b.State(); st != breaker.HalfOpen {
		t.Fatalf("an unknown outcome decided the probe: %s", st)
	}
	run(edge.Outcome{Status: 200})
	if st := b.State(); st != breaker.Closed {
		t.Fatalf("good probe left the breaker %s", st)
	}
}

// breakerEngine is an engine with one public route and a breaker that opens
// after three failures, for ten seconds, with one half-open probe.
func breakerEngine(t *testing.T, now func() time.Time) *edge.Engine {
	t.Helper()
	p, err := policy.DecodeJSON([]byte(`{"apiVersion":"contentguard.dev/v1","kind":"EdgePolicy","metadata":{"name":"t"},
		"spec":{"upstream":{"url":"http://127.0.0.1:1"},"circuitBreaker":{"consecutiveFailures":3,"openFor":"10s","halfOpenRequests":1},
		"routes":[{"name":"all","match":{"pathPrefix":"/"},"auth":"none"}]}}`), "t.json")
	if err != nil {
		t.Fatal(err)
	}
	e, err := edge.New(context.Background(), p, edge.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}
