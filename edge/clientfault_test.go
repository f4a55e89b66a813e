package edge_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/policy"
)

// TestClientFailureAnswers: each kind of client fault gets its own answer
// and reason, with the request ID and the route's body timeout, and none
// of them is an upstream fault; the upstream's own are.
func TestClientFailureAnswers(t *testing.T) {
	p, err := policy.DecodeJSON([]byte(`{"apiVersion":"contentguard.dev/v1","kind":"EdgePolicy","metadata":{"name":"t"},
		"spec":{"upstream":{"url":"http://127.0.0.1:1"},"limits":{"maxBodyBytes":"2KiB"},
		"routes":[{"name":"slow","match":{"pathPrefix":"/slow/"},"auth":"none","bodyTimeout":"2m"},
		          {"name":"all","match":{"pathPrefix":"/"},"auth":"none"}]}}`), "t.json")
	if err != nil {
		t.Fatal(err)
	}
	e, err := edge.New(context.Background(), p, edge.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	check := func(path string) edge.Decision {
		d := e.Check(context.Background(), edge.Request{Method: "POST", Host: "api", Path: path, Peer: netip.MustParseAddr("192.0.2.1"), ContentLength: -1})
		if !d.Allow {
			t.Fatalf("%s refused: %s", path, d.Reason)
		}
		return d
	}
	if d := check("/slow/x"); d.BodyTimeout != 2*time.Minute {
		t.Errorf("route bodyTimeout: %v", d.BodyTimeout)
	}
	d := check("/x")
	if d.BodyTimeout != policy.DefaultBodyTimeout {
		t.Errorf("default bodyTimeout: %v", d.BodyTimeout)
	}
	cases := []struct {
		o      edge.Outcome
		status int
		reason string
		fault  string
	}{
		{edge.Outcome{ClientFault: true, Timeout: true}, http.StatusRequestTimeout, edge.ReasonClientTimeout, "client"},
		{edge.Outcome{ClientFault: true, Status: http.StatusBadRequest}, http.StatusBadRequest, edge.ReasonMalformedBody, "client"},
		{edge.Outcome{ClientFault: true, Status: http.StatusRequestEntityTooLarge}, http.StatusRequestEntityTooLarge, edge.ReasonBodyTooLarge, "client"},
		{edge.Outcome{ClientFault: true, Status: edge.StatusClientClosed}, edge.StatusClientClosed, edge.ReasonClientClosed, "client"},
	}
	for _, c := range cases {
		if got := c.o.Reason(); got != c.reason {
			t.Errorf("%+v: Reason %q, want %q", c.o, got, c.reason)
		}
		if got := c.o.Fault(); got != c.fault {
			t.Errorf("%+v: Fault %q, want %q", c.o, got, c.fault)
		}
		f := e.ClientFailure(d, c.o)
		if f.Allow || f.Status != c.status || f.Reason != c.reason {
			t.Errorf("%+v: answer %v %d %s", c.o, f.Allow, f.Status, f.Reason)
		}
		if c.status == edge.StatusClientClosed {
			if len(f.Body) != 0 {
				t.Errorf("client_closed has a body: %s", f.Body)
			}
			continue
		}
		var pb struct {
			Status    int    `json:"status"`
			Reason    string `json:"reason"`
			RequestID string `json:"request_id"`
		}
		if err := json.Unmarshal(f.Body, &pb); err != nil || pb.Status != c.status || pb.Reason != c.reason || pb.RequestID != d.RequestID {
			t.Errorf("%+v: problem %s (%v)", c.o, f.Body, err)
		}
	}
	for _, c := range []struct {
		o             edge.Outcome
		reason, fault string
	}{
		{edge.Outcome{Status: 200}, edge.ReasonAllowed, "none"},
		{edge.Outcome{Status: 404}, edge.ReasonAllowed, "none"},
		{edge.Outcome{Status: 503}, edge.ReasonAllowed, "upstream"},
		{edge.Outcome{Timeout: true}, edge.ReasonUpstreamTimeout, "upstream"},
		{edge.Outcome{Connection: true}, edge.ReasonUpstreamError, "upstream"},
		{edge.Outcome{Unknown: true}, edge.ReasonOutcomeUnknown, "none"},
		{edge.Outcome{Unknown: true, Status: 503}, edge.ReasonOutcomeUnknown, "none"},
	} {
		if c.o.Reason() != c.reason || c.o.Fault() != c.fault {
			t.Errorf("%+v: %s/%s, want %s/%s", c.o, c.o.Reason(), c.o.Fault(), c.reason, c.fault)
		}
	}
}
