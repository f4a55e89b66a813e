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
	p, err := policy.DecodeJSON([]byte(`{"apiVersion":"contentguard.dev/v1","kind":"EdgePolicy","metadata":{"name":"t"},
		"spec":{"upstream":{"url":"http://127.0.0.1:1"},"circuitBreaker":{"consecutiveFailures":3,"openFor":"10s","halfOpenRequests":1},
		"routes":[{"name":"all","match":{"pathPrefix":"/"},"auth":"none"}]}}`), "t.json")
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktest.New(time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC))
	e, err := edge.New(context.Background(), p, edge.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
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
