package extauthz_test

import (
	"context"
	"sync"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	accesslogdata "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/edge/breaker"
	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/sidecar/extauthz"
	"github.com/contentguard/contentguard/xds/policypb"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newServer is an ext_authz server over a one-route policy whose breaker
// opens after two failures for 10 s and probes with one request.
func newServer(t testing.TB) (*extauthz.Server, *edge.Engine, *clock) {
	t.Helper()
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	p, err := policy.DecodeJSON([]byte(`{"apiVersion":"contentguard.dev/v1","kind":"EdgePolicy","metadata":{"name":"t"},
		"spec":{"upstream":{"url":"http://127.0.0.1:1","timeout":"1s"},
		"circuitBreaker":{"consecutiveFailures":2,"openFor":"10s","halfOpenRequests":1},
		"routes":[{"name":"all","match":{"pathPrefix":"/"},"auth":"none","bodyTimeout":"1s"}]}}`), "t.json")
	if err != nil {
		t.Fatal(err)
	}
	e, err := edge.New(context.Background(), p, edge.Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	s, err := extauthz.New(extauthz.Options{Engine: func() *edge.Engine { return e }, Now: clk.now, Grace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s, e, clk
}

func checkReq(id string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &core.Address{Address: &core.Address_SocketAddress{
			SocketAddress: &core.SocketAddress{Address: "192.0.2.9", PortSpecifier: &core.SocketAddress_PortValue{PortValue: 1}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: "/x", Host: "h", Headers: map[string]string{"x-request-id": id}}},
	}}
}

// entry is the access-log entry of a request answered by the upstream.
func entry(id, ticket string, status uint32) *accesslogdata.HTTPAccessLogEntry {
	e := &accesslogdata.HTTPAccessLogEntry{
		CommonProperties: &accesslogdata.AccessLogCommon{ResponseFlags: &accesslogdata.ResponseFlags{}},
		Request:          &accesslogdata.HTTPRequestProperties{RequestHeaders: map[string]string{"x-request-id": id}},
		Response:         &accesslogdata.HTTPResponseProperties{ResponseCode: wrapperspb.UInt32(status), ResponseCodeDetails: "via_upstream"},
	}
	if ticket != "" {
		e.CommonProperties.Metadata = &core.Metadata{FilterMetadata: map[string]*structpb.Struct{policypb.MetadataNamespace: {
			Fields: map[string]*structpb.Value{policypb.MetadataTicket: structpb.NewStringValue(ticket)}}}}
	}
	return e
}

func allow(t *testing.T, s *extauthz.Server, id string) string {
	t.Helper()
	resp, err := s.Check(context.Background(), checkReq(id))
	if err != nil || resp.GetOkResponse() == nil {
		t.Fatalf("Check %s: %v, %v", id, resp, err)
	}
	return resp.GetDynamicMetadata().GetFields()[policypb.MetadataTicket].GetStringValue()
}

// TestAccessLogFeedsTheBreaker: failures reported in the access log open
// the breaker; a report for a request id no decision holds changes
// nothing.
func TestAccessLogFeedsTheBreaker(t *testing.T) {
	s, e, _ := newServer(t)
	for i, id := range []string{"0190f3c2-7b1e-7cc1-9d2a-5b8f1e0a3c01", "0190f3c2-7b1e-7cc1-9d2a-5b8f1e0a3c02"} {
		ticket := allow(t, s, id)
		s.Report(entry("0190f3c2-7b1e-7cc1-9d2a-5b8f1e0a3cff", "", 503)) // nobody's
		s.Report(entry(id, ticket, 503))
		if s.Pending() != 0 {
			t.Fatalf("report %d left %d pending", i, s.Pending())
		}
	}
	if st := e.Breakers().Get("127.0.0.1:1").State(); st != breaker.Open {
		t.Fatalf("breaker %s after two reported 503s, want open", st)
	}
	resp, _ := s.Check(context.Background(), checkReq("0190f3c2-7b1e-7cc1-9d2a-5b8f1e0a3c03"))
	if resp.GetDeniedResponse().GetStatus().GetCode() != 503 {
		t.Fatalf("with the breaker open: %v", resp)
	}
}

// TestSameRequestIDTwice: two requests with the same (client-chosen) id
// are told apart by the ticket Envoy carries back; the oldest is taken
// when no ticket comes.
func TestSameRequestIDTwice(t *testing.T) {
	s, e, _ := newServer(t)
	const id = "0190f3c2-7b1e-7cc1-9d2a-5b8f1e0a3c10"
	first := allow(t, s, id)
	second := allow(t, s, id)
	if first == second {
		t.Fatal("two decisions share a ticket")
	}
	s.Report(entry(id, second, 503))
	s.Report(entry(id, second, 503)) // a duplicate changes nothing
	if s.Pending() != 1 {
		t.Fatalf("%d pending, want the first", s.Pending())
	}
	if st := e.Breakers().Get("127.0.0.1:1").Status(); st.ConsecutiveFailures != 1 {
		t.Fatalf("%d failures counted, want 1", st.ConsecutiveFailures)
	}
	s.Report(entry(id, "", 200))
	if s.Pending() != 0 {
		t.Fatalf("%d pending after the last report", s.Pending())
	}
}

// TestUnreportedHalfOpenProbeExpiresAsAFailure: a half-open probe whose
// outcome never arrives is counted as a failure once its timeouts and the
// grace have passed (the breaker opens again); a closed-state ticket is
// released without counting.
func TestUnreportedHalfOpenProbeExpiresAsAFailure(t *testing.T) {
	s, e, clk := newServer(t)
	b := e.Breakers().Get("127.0.0.1:1")

	allow(t, s, "0190f3c2-7b1e-7cc1-9d2a-5b8f1e0a3c20") // closed: lost
	clk.add(2999 * time.Millisecond)
	if n := s.Expire(); n != 0 {
		t.Fatalf("expired %d before body + upstream timeout + grace (3 s)", n)
	}
	clk.add(time.Millisecond)
	if n := s.Expire(); n != 1 {
		t.Fatalf("expired %d at 3 s, want 1", n)
	}
	if st := b.Status(); st.State != breaker.Closed || st.ConsecutiveFailures != 0 {
		t.Fatalf("a lost closed-state ticket counted: %+v", st)
	}

	for i := 0; i < 2; i++ {
		id := "0190f3c2-7b1e-7cc1-9d2a-5b8f1e0a3c3" + string(rune('0'+i))
		s.Report(entry(id, allow(t, s, id), 502))
	}
	clk.add(10 * time.Second) // open for 10 s: now half-open
	allow(t, s, "0190f3c2-7b1e-7cc1-9d2a-5b8f1e0a3c40")
	if st := b.State(); st != breaker.HalfOpen {
		t.Fatalf("breaker %s, want half-open with the probe out", st)
	}
	clk.add(3 * time.Second)
	if n := s.Expire(); n != 1 {
		t.Fatalf("expired %d, want the probe", n)
	}
	if st := b.State(); st != breaker.Open {
		t.Fatalf("breaker %s after the unreported probe, want open again", st)
	}
}

// TestOutcome: how an access-log entry reads.
func TestOutcome(t *testing.T) {
	flags := func(f func(*accesslogdata.ResponseFlags)) *accesslogdata.HTTPAccessLogEntry {
		e := entry("id", "", 503)
		e.Response.ResponseCodeDetails = "local"
		f(e.CommonProperties.ResponseFlags)
		return e
	}
	for _, c := range []struct {
		name  string
		entry *accesslogdata.HTTPAccessLogEntry
		want  edge.Outcome
		ok    bool
	}{
		{"upstream answered", entry("id", "", 503), edge.Outcome{Status: 503}, true},
		{"timeout", flags(func(f *accesslogdata.ResponseFlags) { f.UpstreamRequestTimeout = true }), edge.Outcome{Timeout: true, Status: 503}, true},
		{"unreachable", flags(func(f *accesslogdata.ResponseFlags) { f.UpstreamConnectionFailure = true }), edge.Outcome{Connection: true, Status: 503}, true},
		{"upstream's answer not HTTP", flags(func(f *accesslogdata.ResponseFlags) { f.UpstreamProtocolError = true }), edge.Outcome{Connection: true, Status: 503}, true},
		{"client gone", flags(func(f *accesslogdata.ResponseFlags) { f.DownstreamConnectionTermination = true }), edge.Outcome{ClientFault: true, Status: 499}, true},
		{"client reset", flags(func(f *accesslogdata.ResponseFlags) { f.DownstreamRemoteReset = true }), edge.Outcome{ClientFault: true, Status: 499}, true},
		// Envoy's own refusals and resets say nothing of the upstream: the
		// slot is released, nothing counted.
		{"Envoy's breaker (UO)", flags(func(f *accesslogdata.ResponseFlags) { f.UpstreamOverflow = true }), edge.Outcome{ClientFault: true, Status: 503}, true},
		{"Envoy overloaded (OM)", flags(func(f *accesslogdata.ResponseFlags) { f.OverloadManager = true }), edge.Outcome{ClientFault: true, Status: 503}, true},
		{"local reset (LR)", flags(func(f *accesslogdata.ResponseFlags) { f.LocalReset = true }), edge.Outcome{ClientFault: true, Status: 503}, true},
		{"stream idle (SI)", func() *accesslogdata.HTTPAccessLogEntry {
			e := entry("id", "", 408)
			e.Response.ResponseCodeDetails = "stream_idle_timeout"
			e.CommonProperties.ResponseFlags.StreamIdleTimeout = true
			return e
		}(), edge.Outcome{ClientFault: true, Status: 408}, true},
		{"Envoy's 413", func() *accesslogdata.HTTPAccessLogEntry {
			e := entry("id", "", 413)
			e.Response.ResponseCodeDetails = "request_payload_too_large"
			return e
		}(), edge.Outcome{ClientFault: true, Status: 413}, true},
		{"refused by the edge", flags(func(f *accesslogdata.ResponseFlags) {
			f.UnauthorizedDetails = &accesslogdata.ResponseFlags_Unauthorized{}
		}), edge.Outcome{}, false},
	} {
		got, ok := extauthz.Outcome(c.entry)
		got.Duration = 0
		if ok != c.ok || got != c.want {
			t.Errorf("%s: %+v %v, want %+v %v", c.name, got, ok, c.want, c.ok)
		}
	}
}
