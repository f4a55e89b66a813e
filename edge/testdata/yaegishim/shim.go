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
	"github.com/contentguard/contentguard/policy/yamlnode"
)

var (
	mu      sync.Mutex
	engines = map[int]*edge.Engine{}
	next    = 0
)

// Start reads a policy document inside the interpreter, with the reader the
// Traefik plugin uses, and builds an engine whose clock is now.
func Start(name, document, baseDir string, now func() time.Time) (int, string) {
	p, err := yamlnode.Decode(name, []byte(document))
	if err != nil {
		return 0, err.Error()
	}
	p.BaseDir = baseDir
	e, err := edge.New(context.Background(), p, edge.Options{Now: now})
	if err != nil {
		return 0, err.Error()
	}
	mu.Lock()
	next++
	id := next
	engines[id] = e
	mu.Unlock()
	return id, ""
}

// Close stops an engine.
func Close(id int) {
	mu.Lock()
	e := engines[id]
	delete(engines, id)
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
