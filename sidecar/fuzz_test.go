package sidecar_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/contentguard/contentguard/sidecar"
)

// FuzzHandler feeds arbitrary requests (whatever net/http's parser accepts)
// to the public handler in front of a real upstream: it must never panic,
// always answer with a real status, and every answer the edge itself makes
// must be a problem document carrying the request ID.
func FuzzHandler(f *testing.F) {
	for _, seed := range []string{
		"GET /api/v1/x HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /api/v1/analyze?q=1 HTTP/1.1\r\nHost: a\r\nX-API-Key: cg-conformance-rw-key\r\nContent-Length: 3\r\n\r\nabc",
		"GET /a/%2e%2e/admin/ HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer x.y.z\r\n\r\n",
		"OPTIONS /api/v1/x HTTP/1.1\r\nHost: a\r\nOrigin: https://app.example.com\r\nAccess-Control-Request-Method: POST\r\n\r\n",
		"GET http://other/healthz HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4, ::1\r\n\r\n",
		"PUT //x//..//y HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	} {
		f.Add([]byte(seed), "127.0.0.10:5555")
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	defer up.Close()
	srv, err := sidecar.New(context.Background(), sidecar.Options{
		Policy:           loadPolicy(f, conformancePolicy("standard.yaml")),
		Upstream:         up.URL,
		DisableAccessLog: true,
	})
	if err != nil {
		f.Fatal(err)
	}
	defer srv.Close()
	h := srv.Handler()
	f.Fuzz(func(t *testing.T, raw []byte, remote string) {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return
		}
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code < 100 || rec.Code > 599 {
			t.Fatalf("status %d", rec.Code)
		}
		if rec.Header().Get("X-Request-ID") == "" {
			t.Fatalf("status %d without a request ID", rec.Code)
		}
		if rec.Code >= 400 { // the upstream always answers 200: this is the edge
			if !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/problem+json") {
				t.Fatalf("status %d is not a problem: %q %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body.Bytes())
			}
			var p struct {
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.RequestID != rec.Header().Get("X-Request-ID") {
				t.Fatalf("problem %s: %v", rec.Body.Bytes(), err)
			}
		}
	})
}
