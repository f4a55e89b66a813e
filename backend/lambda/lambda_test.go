package lambda

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/contentguard/contentguard/backend/api"
)

func backend(t *testing.T) http.Handler {
	t.Helper()
	s, err := api.New(api.Config{Version: "lambda-test"})
	if err != nil {
		t.Fatal(err)
	}
	return s.Handler()
}

func invoke(t *testing.T, h Handler, event []byte) any {
	t.Helper()
	out, err := h(context.Background(), event)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRESTv1Event(t *testing.T) {
	ev, err := os.ReadFile("testdata/rest-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	resp, ok := invoke(t, New(backend(t)), ev).(events.APIGatewayProxyResponse)
	if !ok {
		t.Fatal("not a v1 response")
	}
	if resp.StatusCode != 200 || resp.IsBase64Encoded || resp.Headers["Content-Type"] != "application/json" {
		t.Fatalf("resp %+v", resp)
	}
	var body struct {
		Success bool
		Data    map[string]any
	}
	if err := json.Unmarshal([]byte(resp.Body), &body); err != nil || !body.Success || body.Data["word_count"] != 3.0 {
		t.Fatalf("body %s (%v)", resp.Body, err)
	}
	// API Gateway's request ID becomes the request ID when the client sent none.
	if resp.Headers["X-Request-Id"] != "c6af9ac6-7b61-11e6-9a41-93e8deadbeef" {
		t.Fatalf("request id %q", resp.Headers["X-Request-Id"])
	}
	// The same response travels through the Lambda runtime as JSON.
	raw, _ := json.Marshal(resp)
	if !strings.Contains(string(raw), `"statusCode":200`) {
		t.Fatalf("encoded %s", raw)
	}
}

func TestHTTPv2EventWithBase64BodyAndStage(t *testing.T) {
	ev, err := os.ReadFile("testdata/http-v2.json")
	if err != nil {
		t.Fatal(err)
	}
	var seen *http.Request
	h := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r
		backend(t).ServeHTTP(w, r)
	}))
	resp, ok := invoke(t, h, ev).(events.APIGatewayV2HTTPResponse)
	if !ok {
		t.Fatal("not a v2 response")
	}
	if resp.StatusCode != 200 {
		t.Fatalf("resp %+v", resp)
	}
	if seen.URL.Path != "/similarity" || seen.URL.Query()["a"][1] != "2" || seen.Header.Get("Cookie") != "session=abc; theme=dark" ||
		seen.RemoteAddr != "203.0.113.9:0" || seen.Host != "xyz789.execute-api.us-east-1.amazonaws.com" {
		t.Fatalf("request %s %v %q %q %q", seen.URL, seen.URL.Query(), seen.Header.Get("Cookie"), seen.RemoteAddr, seen.Host)
	}
	if resp.Headers["X-Request-Id"] != "client-supplied-7" {
		t.Fatalf("client request id lost: %v", resp.Headers)
	}
	if !strings.Contains(resp.Body, `"common_words":["hello"]`) {
		t.Fatalf("body %s", resp.Body)
	}
}

func TestErrorsAndBinaryAndUnknownEvents(t *testing.T) {
	h := New(backend(t))
	v2 := func(method, path, body string, b64 bool) events.APIGatewayV2HTTPResponse {
		ev := events.APIGatewayV2HTTPRequest{Version: "2.0", RawPath: path, Body: body, IsBase64Encoded: b64}
		ev.RequestContext.HTTP.Method = method
		ev.RequestContext.Stage = "$default"
		raw, _ := json.Marshal(ev)
		return invoke(t, h, raw).(events.APIGatewayV2HTTPResponse)
	}
	if r := v2("POST", "/analyze", `{"content": 1}`, false); r.StatusCode != 422 || r.Headers["Content-Type"] != "application/problem+json" {
		t.Fatalf("422: %+v", r)
	}
	if r := v2("POST", "/analyze", "%%%not base64", true); r.StatusCode != 400 {
		t.Fatalf("bad base64: %+v", r)
	}
	if r := v2("GET", "/nope", "", false); r.StatusCode != 404 {
		t.Fatalf("404: %+v", r)
	}
	if r := v2("GET", "/docs", "", false); r.StatusCode != 200 || r.IsBase64Encoded || !strings.Contains(r.Body, "swagger-ui") {
		t.Fatalf("docs: %d %v", r.StatusCode, r.IsBase64Encoded)
	}
	// A binary response goes back base64-encoded.
	bin := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write([]byte{0, 1, 2, 255})
	}))
	raw, _ := json.Marshal(events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/bin"})
	r1 := invoke(t, bin, raw).(events.APIGatewayProxyResponse)
	if got, _ := base64.StdEncoding.DecodeString(r1.Body); !r1.IsBase64Encoded || string(got) != "\x00\x01\x02\xff" {
		t.Fatalf("binary: %+v", r1)
	}
	for _, bad := range []string{`[]`, `{"source":"aws.events"}`, `not json`} {
		if _, err := h(context.Background(), json.RawMessage(bad)); err == nil {
			t.Fatalf("event %s accepted", bad)
		}
	}
}

func TestV1Base64Body(t *testing.T) {
	var got string
	h := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = string(b)
	}))
	raw, _ := json.Marshal(events.APIGatewayProxyRequest{HTTPMethod: "POST", Path: "/x", Body: base64.StdEncoding.EncodeToString([]byte("héllo")), IsBase64Encoded: true})
	invoke(t, h, raw)
	if got != "héllo" {
		t.Fatalf("body %q", got)
	}
}

// FuzzEvent feeds arbitrary event JSON to the adapter: it must never panic,
// and any event it accepts must produce a response with a real status.
func FuzzEvent(f *testing.F) {
	for _, name := range []string{"testdata/rest-v1.json", "testdata/http-v2.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"version":"2.0","rawPath":"/%zz","requestContext":{"http":{"method":"GET"}}}`))
	f.Add([]byte(`{"httpMethod":"BAD METHOD","path":"relative"}`))
	s, err := api.New(api.Config{})
	if err != nil {
		f.Fatal(err)
	}
	h := New(s.Handler())
	f.Fuzz(func(t *testing.T, event []byte) {
		type res struct {
			out any
			err error
		}
		ch := make(chan res, 1)
		go func() { o, e := h(context.Background(), event); ch <- res{o, e} }()
		var out any
		var err error
		select {
		case r := <-ch:
			out, err = r.out, r.err
		case <-time.After(30 * time.Second): // a hang, not a slow machine
			t.Fatalf("hang on %q", event)
		}
		if err != nil {
			return
		}
		var status int
		switch r := out.(type) {
		case events.APIGatewayProxyResponse:
			status = r.StatusCode
		case events.APIGatewayV2HTTPResponse:
			status = r.StatusCode
		default:
			t.Fatalf("unexpected response type %T", out)
		}
		if status < 200 || status > 599 || status >= 500 && status != 502 {
			t.Fatalf("status %d for %q", status, event)
		}
	})
}

func TestOversizedResponseIsBadGateway(t *testing.T) {
	h := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		chunk := []byte(strings.Repeat("x", 1<<20))
		for i := 0; i < 8; i++ {
			if n, err := w.Write(chunk); n != len(chunk) || err != nil {
				t.Errorf("short write %d %v", n, err)
			}
		}
	}))
	raw, _ := json.Marshal(events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/big"})
	if r := invoke(t, h, raw).(events.APIGatewayProxyResponse); r.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d", r.StatusCode)
	}
}
