package edge_test

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/contentguard/contentguard/conformance"
	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/internal/clocktest"
	"github.com/contentguard/contentguard/policy/policyfile"
)

// enginePlane runs the conformance suite against the engine itself, with the
// upstream simulated by the outcome each step scripts. With conn, requests
// carry their connection as a Request.Conn rather than Peer.
type enginePlane struct{ conn bool }

// engineInstance runs on its own clock (conformance.Clocked).
type engineInstance struct {
	e *edge.Engine
	*clocktest.Clock
	conn bool
}

func (pl enginePlane) Start(t testing.TB, policyPath string) conformance.Instance {
	p, err := policyfile.Load(policyPath)
	if err != nil {
		t.Fatalf("load policy: %v", err)
	}
	clock := clocktest.New(time.Now())
	e, err := edge.New(context.Background(), p, edge.Options{Now: clock.Now})
	if err != nil {
		t.Fatalf("engine: %v", err)
	}
	return &engineInstance{e: e, Clock: clock, conn: pl.conn}
}

func (in *engineInstance) Close() { in.e.Close() }

func (in *engineInstance) Do(t testing.TB, req conformance.SentRequest, up conformance.Upstream) conformance.Response {
	path, query, _ := strings.Cut(req.Path, "?")
	r := edge.Request{
		Method:        req.Method,
		Host:          "edge.test",
		Path:          path,
		RawQuery:      query,
		Header:        req.Header.Clone(),
		Peer:          netip.MustParseAddr(req.Peer),
		ContentLength: int64(req.BodyBytes),
	}
	if in.conn {
		r.Conn, r.Peer = &countingConn{peer: r.Peer}, netip.Addr{}
	}
	d := in.e.Check(context.Background(), r)
	resp := conformance.Response{Header: http.Header{}}
	if !d.Allow {
		return reply(d, resp)
	}
	resp.Forwarded = true
	resp.UpstreamHeader = req.Header.Clone()
	d.SetUpstreamHeaders(resp.UpstreamHeader)
	resp.UpstreamPath = d.Path

	o := edge.Outcome{Status: up.Status}
	if o.Status == 0 {
		o.Status = http.StatusOK
	}
	switch {
	case up.Down:
		o = edge.Outcome{Connection: true}
	case up.Delay > d.Timeout:
		o = edge.Outcome{Timeout: true}
	}
	in.e.Observe(&d, o)
	if o.Failed() {
		return reply(in.e.UpstreamFailure(d, o), resp)
	}
	resp.Status = o.Status
	d.SetResponseHeaders(resp.Header)
	return resp
}

func reply(d edge.Decision, resp conformance.Response) conformance.Response {
	resp.Status = d.Status
	d.SetResponseHeaders(resp.Header)
	if d.ContentType != "" && len(d.Body) > 0 {
		resp.Header.Set("Content-Type", d.ContentType)
	}
	resp.Body = d.Body
	return resp
}

// TestConformance: the engine passes every case of the suite.
func TestConformance(t *testing.T) {
	conformance.Run(t, enginePlane{}, conformance.Options{})
}
