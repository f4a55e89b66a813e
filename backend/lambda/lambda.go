// Package lambda serves an http.Handler from AWS Lambda behind API Gateway:
// it turns REST API (payload v1) and HTTP API (payload v2) proxy events into
// an *http.Request, runs the handler in memory, and turns the response back
// into the matching response event. It is deliberately small: no framework,
// no copies of the request beyond what net/http needs.
package lambda

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/contentguard/contentguard/edge/problem"
)

// MaxResponseBytes is API Gateway's own payload limit; a larger response
// becomes a 502-style error event instead of being cut.
const MaxResponseBytes = 6 << 20

// Handler is the function given to lambda.Start.
type Handler func(ctx context.Context, event json.RawMessage) (any, error)

// probe is just enough of either payload version to tell them apart.
type probe struct {
	Version    string `json:"version"`
	RawPath    string `json:"rawPath"`
	HTTPMethod string `json:"httpMethod"`
}

// New adapts h. An event that is neither payload version is an error
// returned to the Lambda runtime (it is not an HTTP request at all).
func New(h http.Handler) Handler {
	return func(ctx context.Context, event json.RawMessage) (any, error) {
		var p probe
		if err := json.Unmarshal(event, &p); err != nil {
			return nil, fmt.Errorf("lambda: event is not a JSON object: %w", err)
		}
		switch {
		case p.Version == "2.0" || (p.RawPath != "" && p.HTTPMethod == ""):
			var ev events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(event, &ev); err != nil {
				return nil, fmt.Errorf("lambda: HTTP API v2 event: %w", err)
			}
			return serveV2(ctx, h, &ev), nil
		case p.HTTPMethod != "":
			var ev events.APIGatewayProxyRequest
			if err := json.Unmarshal(event, &ev); err != nil {
				return nil, fmt.Errorf("lambda: REST API v1 event: %w", err)
			}
			return serveV1(ctx, h, &ev), nil
		}
		return nil, fmt.Errorf("lambda: unsupported event: neither an API Gateway v1 (httpMethod) nor v2 (version 2.0) proxy event")
	}
}

func decodeBody(body string, b64 bool) ([]byte, error) {
	if !b64 {
		return []byte(body), nil
	}
	out, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("lambda: base64 body: %w", err)
	}
	return out, nil
}

func newRequest(ctx context.Context, method, path, rawQuery string, body []byte) (*http.Request, error) {
	if path == "" {
		path = "/"
	}
	u := &url.URL{Path: path, RawQuery: rawQuery}
	if unescaped, err := url.PathUnescape(path); err == nil && unescaped != path {
		u.Path, u.RawPath = unescaped, path
	}
	r, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("lambda: build request: %w", err)
	}
	r.RequestURI = u.RequestURI()
	r.ContentLength = int64(len(body))
	return r, nil
}

func serveV1(ctx context.Context, h http.Handler, ev *events.APIGatewayProxyRequest) events.APIGatewayProxyResponse {
	body, err := decodeBody(ev.Body, ev.IsBase64Encoded)
	if err != nil {
		return v1Error(http.StatusBadRequest, err.Error())
	}
	q := url.Values{}
	for k, vs := range ev.MultiValueQueryStringParameters {
		q[k] = append(q[k], vs...)
	}
	for k, v := range ev.QueryStringParameters {
		if _, ok := q[k]; !ok {
			q.Set(k, v)
		}
	}
	r, err := newRequest(ctx, ev.HTTPMethod, ev.Path, q.Encode(), body)
	if err != nil {
		return v1Error(http.StatusBadRequest, err.Error())
	}
	for k, vs := range ev.MultiValueHeaders {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	for k, v := range ev.Headers {
		if r.Header.Get(k) == "" {
			r.Header.Set(k, v)
		}
	}
	finish(r, ev.RequestContext.RequestID, ev.RequestContext.Identity.SourceIP)
	rec := serve(h, r)
	if len(rec.body) > MaxResponseBytes {
		return v1Error(http.StatusBadGateway, "response exceeds the API Gateway payload limit")
	}
	resp := events.APIGatewayProxyResponse{StatusCode: rec.status, Headers: map[string]string{}, MultiValueHeaders: map[string][]string{}}
	for k, vs := range rec.header {
		resp.MultiValueHeaders[k] = vs
		resp.Headers[k] = strings.Join(vs, ",")
	}
	resp.Body, resp.IsBase64Encoded = encodeBody(rec)
	return resp
}

func serveV2(ctx context.Context, h http.Handler, ev *events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	body, err := decodeBody(ev.Body, ev.IsBase64Encoded)
	if err != nil {
		return v2Error(http.StatusBadRequest, err.Error())
	}
	path := ev.RawPath
	// A named stage prefixes rawPath ("/prod/analyze"); the routes do not.
	if st := ev.RequestContext.Stage; st != "" && st != "$default" && strings.HasPrefix(path, "/"+st+"/") {
		path = path[len(st)+1:]
	}
	method := ev.RequestContext.HTTP.Method
	r, err := newRequest(ctx, method, path, ev.RawQueryString, body)
	if err != nil {
		return v2Error(http.StatusBadRequest, err.Error())
	}
	for k, v := range ev.Headers {
		r.Header.Set(k, v) // v2 joins repeated headers with commas already
	}
	if len(ev.Cookies) > 0 {
		r.Header.Set("Cookie", strings.Join(ev.Cookies, "; "))
	}
	finish(r, ev.RequestContext.RequestID, ev.RequestContext.HTTP.SourceIP)
	rec := serve(h, r)
	if len(rec.body) > MaxResponseBytes {
		return v2Error(http.StatusBadGateway, "response exceeds the API Gateway payload limit")
	}
	resp := events.APIGatewayV2HTTPResponse{StatusCode: rec.status, Headers: map[string]string{}}
	keys := make([]string, 0, len(rec.header))
	for k := range rec.header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "Set-Cookie" {
			resp.Cookies = append(resp.Cookies, rec.header[k]...)
			continue
		}
		resp.Headers[k] = strings.Join(rec.header[k], ",")
	}
	resp.Body, resp.IsBase64Encoded = encodeBody(rec)
	return resp
}

// finish sets what a real server would: Host, RemoteAddr, and the gateway's
// request ID as X-Request-ID when the client sent none, so logs correlate
// with API Gateway's.
func finish(r *http.Request, gatewayRequestID, sourceIP string) {
	if host := r.Header.Get("Host"); host != "" {
		r.Host = host
	}
	if sourceIP != "" {
		r.RemoteAddr = sourceIP + ":0"
	}
	if r.Header.Get("X-Request-ID") == "" && gatewayRequestID != "" {
		r.Header.Set("X-Request-ID", gatewayRequestID)
	}
}

// recorder is a minimal in-memory http.ResponseWriter.
type recorder struct {
	header      http.Header
	status      int
	body        bytes.Buffer
	wroteHeader bool
}

func (rec *recorder) Header() http.Header { return rec.header }

func (rec *recorder) WriteHeader(code int) {
	if rec.wroteHeader || code < 200 {
		return
	}
	rec.status, rec.wroteHeader = code, true
}

func (rec *recorder) Write(p []byte) (int, error) {
	rec.WriteHeader(http.StatusOK)
	n := len(p)
	if rec.body.Len()+len(p) > MaxResponseBytes+1 {
		// Keep just enough to know it is too big; the handler is told all
		// was written so it does not fail half-way through.
		p = p[:MaxResponseBytes+1-rec.body.Len()]
	}
	rec.body.Write(p)
	return n, nil
}

type result struct {
	header http.Header
	status int
	body   []byte
}

func serve(h http.Handler, r *http.Request) result {
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	h.ServeHTTP(rec, r)
	if rec.header.Get("Content-Type") == "" && rec.body.Len() > 0 {
		rec.header.Set("Content-Type", http.DetectContentType(rec.body.Bytes()))
	}
	return result{header: rec.header, status: rec.status, body: rec.body.Bytes()}
}

// encodeBody returns text bodies as they are and anything else in base64,
// as API Gateway expects.
func encodeBody(rec result) (string, bool) {
	if isText(rec.header.Get("Content-Type")) {
		return string(rec.body), false
	}
	return base64.StdEncoding.EncodeToString(rec.body), true
}

func isText(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "text/"),
		mt == "application/json", strings.HasSuffix(mt, "+json"),
		mt == "application/xml", strings.HasSuffix(mt, "+xml"),
		mt == "application/javascript", mt == "application/x-www-form-urlencoded":
		return true
	}
	return false
}

func errorBody(status int, detail string) string {
	// The adapter's own answers: an event it cannot read (400, as the
	// backend's malformed requests) and a response too large for API
	// Gateway (502). docs/problems.md lists both.
	typ := problem.TypeURI("malformed-request")
	if status == http.StatusBadGateway {
		typ = problem.TypeURI("response-too-large")
	}
	b, _ := json.Marshal(map[string]any{"type": typ, "title": http.StatusText(status), "status": status, "detail": detail, "success": false, "error": detail})
	return string(b)
}

func v1Error(status int, detail string) events.APIGatewayProxyResponse {
	return events.APIGatewayProxyResponse{StatusCode: status, Headers: map[string]string{"Content-Type": "application/problem+json"}, Body: errorBody(status, detail)}
}

func v2Error(status int, detail string) events.APIGatewayV2HTTPResponse {
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: map[string]string{"Content-Type": "application/problem+json"}, Body: errorBody(status, detail)}
}
