// Package yaegishim is loaded by the Yaegi conformance test: it runs inside
// the interpreter, beside the interpreted engine, and talks to the native
// test through strings and numbers only, the way the Traefik plugin is
// confined to what Yaegi can pass across.
package yaegishim

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/policy"
)

var (
	mu      sync.Mutex
	engines = map[int]*edge.Engine{}
	clocks  = map[int]*clock{}
	next    = 0
)

// clock is an engine's time, in Unix nanoseconds: it stands still until
// Advance moves it (the native side mirrors it; see conformance.Clocked).
type clock struct {
	mu  sync.Mutex
	now int64
}

func (c *clock) read() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Unix(0, c.now)
}

// Start decodes a JSON policy inside the interpreter and builds an engine
// whose clock reads startUnixNano until Advance moves it.
func Start(policyJSON, baseDir string, startUnixNano int64) (int, string) {
	p, err := policy.DecodeJSON([]byte(policyJSON), "policy.json")
	if err != nil {
		return 0, err.Error()
	}
	p.BaseDir = baseDir
	c := &clock{now: startUnixNano}
	e, err := edge.New(context.Background(), p, edge.Options{Now: c.read})
	if err != nil {
		return 0, err.Error()
	}
	mu.Lock()
	next++
	id := next
	engines[id] = e
	clocks[id] = c
	mu.Unlock()
	return id, ""
}

// Advance moves an engine's clock forward.
func Advance(id int, nanos int64) {
	mu.Lock()
	c := clocks[id]
	mu.Unlock()
	c.mu.Lock()
	c.now += nanos
	c.mu.Unlock()
}

// Close stops an engine.
func Close(id int) {
	mu.Lock()
	e := engines[id]
	delete(engines, id)
	delete(clocks, id)
	mu.Unlock()
	if e != nil {
		e.Close()
	}
}

type result struct {
	Status         int                 `json:"status"`
	Header         map[string][]string `json:"header"`
	Body           string              `json:"body"`
	Forwarded      bool                `json:"forwarded"`
	UpstreamHeader map[string][]string `json:"upstreamHeader"`
	UpstreamPath   string              `json:"upstreamPath"`
}

// Do decides one request and simulates the scripted upstream, exactly as the
// native engine plane does.
func Do(id int, method, target, headerJSON, peer string, bodyBytes int64, upStatus int, upDown bool, upDelayMillis int64) string {
	mu.Lock()
	e := engines[id]
	mu.Unlock()
	h := http.Header{}
	if err := json.Unmarshal([]byte(headerJSON), &h); err != nil {
		return `{"status": -1, "body": "bad header JSON"}`
	}
	path, query, _ := strings.Cut(target, "?")
	d := e.Check(context.Background(), edge.Request{
		Method: method, Host: "edge.test", Path: path, RawQuery: query, Header: h,
		Peer: netip.MustParseAddr(peer), ContentLength: bodyBytes,
	})
	res := result{Header: map[string][]string{}}
	if !d.Allow {
		return reply(d, res)
	}
	res.Forwarded = true
	up := h.Clone()
	d.SetUpstreamHeaders(up)
	res.UpstreamHeader = up
	res.UpstreamPath = d.Path
	o := edge.Outcome{Status: upStatus}
	if o.Status == 0 {
		o.Status = 200
	}
	if upDown {
		o = edge.Outcome{Connection: true}
	} else if time.Duration(upDelayMillis)*time.Millisecond > d.Timeout {
		o = edge.Outcome{Timeout: true}
	}
	e.Observe(&d, o)
	if o.Timeout || o.Connection {
		return reply(e.UpstreamFailure(d, o), res)
	}
	res.Status = o.Status
	hdr := http.Header{}
	d.SetResponseHeaders(hdr)
	res.Header = hdr
	return encode(res)
}

func reply(d edge.Decision, res result) string {
	res.Status = d.Status
	hdr := http.Header{}
	d.SetResponseHeaders(hdr)
	if d.ContentType != "" && len(d.Body) > 0 {
		hdr.Set("Content-Type", d.ContentType)
	}
	res.Header = hdr
	res.Body = string(d.Body)
	return encode(res)
}

func encode(res result) string {
	b, err := json.Marshal(res)
	if err != nil {
		return `{"status": -1, "body": "encode"}`
	}
	return string(b)
}
