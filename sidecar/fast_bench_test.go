package sidecar_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/contentguard/contentguard/conformance"
	"github.com/contentguard/contentguard/internal/tcptest"
	"github.com/contentguard/contentguard/sidecar"
)

// benchUpstream answers every request with a fixed small response, reading
// heads and Content-Length bodies without allocating, so that a
// benchmark's allocations are the sidecar's.
func benchUpstream(b *testing.B) string {
	reply := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"success\":true}")
	return "http://" + tcptest.Serve(b, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReaderSize(c, 16<<10)
		for {
			length := 0
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(line) == 2 {
					break
				}
				if len(line) > 16 && bytes.EqualFold(line[:15], []byte("Content-Length:")) {
					length, _ = strconv.Atoi(string(bytes.TrimSpace(line[15:])))
				}
			}
			if _, err := br.Discard(length); err != nil {
				return
			}
			if _, err := c.Write(reply); err != nil {
				return
			}
		}
	})
}

// benchPolicy is scripts/bench-sidecar.sh's full policy on the conformance
// suite's keys, for POST /api/v1/analyze.
const benchPolicy = `
apiVersion: contentguard.dev/v1
kind: EdgePolicy
metadata: {name: bench}
spec:
  upstream: {url: http://127.0.0.1:9, timeout: 10s}
  requestID: {header: X-Request-ID, alsoHeaders: [X-Correlation-ID], trustIncoming: true, format: uuidv7}
  auth:
    jwt:
      providers:
        - name: main
          issuer: https://auth.contentguard.test
          audiences: [content-api]
          algorithms: [ES256]
          jwks: {file: %s}
          forwardClaims: {sub: X-Auth-Subject, scope: X-Auth-Scopes}
  rateLimit: {store: {type: memory}, headers: ietf}
  circuitBreaker: {consecutiveFailures: 5, openFor: 10s}
  securityHeaders: strict
  routes:
    - name: analyze
      match: {path: /api/v1/analyze, methods: [POST]}
      auth: {anyOf: [jwt], scopes: [write]}
      rateLimit: {key: subject, rate: 1000000, per: 1s}
`

// BenchmarkSidecar sends keep-alive requests through a sidecar on loopback,
// 16 connections per core, on the fast path and with
// --no-fast-path: a POST of a small JSON document with an ES256 JWT (verified
// once, then cached), scopes, rate limit, request IDs, strict security
// headers, forwarded claims, breaker and metrics (the full
// policy of scripts/bench-sidecar.sh, without the access log). Time and allocations per request include the
// in-process client and upstream, which are lean.
//
//	go test -run '^$' -bench BenchmarkSidecar -benchmem ./sidecar
func BenchmarkSidecar(b *testing.B) {
	for _, mode := range []struct {
		name    string
		netHTTP bool
	}{{"fast", false}, {"nethttp", true}} {
		b.Run(mode.name, func(b *testing.B) {
			up := benchUpstream(b)
			jwks := filepath.Join(conformance.Dir(), "testdata", "keys", "jwks.json")
			sc := startSidecar(b, sidecar.Options{
				Policy: parsePolicy(b, fmt.Sprintf(benchPolicy, jwks)), Upstream: up,
				DisableAccessLog: true, DisableFastPath: mode.netHTTP,
			})
			m, err := conformance.NewMinter(filepath.Join(conformance.Dir(), "testdata", "keys"))
			if err != nil {
				b.Fatal(err)
			}
			tok, err := m.Mint(conformance.Token{Scope: "read write"})
			if err != nil {
				b.Fatal(err)
			}
			body := `{"text":"The quick brown fox jumps over the lazy dog."}`
			req := []byte("POST /api/v1/analyze HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench/1\r\n" +
				"Accept: application/json\r\nContent-Type: application/json\r\nAuthorization: Bearer " + tok + "\r\n" +
				"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
			b.ReportAllocs()
			// 16 connections per core keep the two paths busy, so the
			// time per request is CPU, not waiting.
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				c, err := net.Dial("tcp", sc.addr)
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close()
				br := bufio.NewReaderSize(c, 16<<10)
				for pb.Next() {
					if _, err := c.Write(req); err != nil {
						b.Error(err)
						return
					}
					status, length := 0, -1
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							b.Error(err)
							return
						}
						if status == 0 {
							status, _ = strconv.Atoi(string(line[9:12]))
						}
						if len(line) == 2 {
							break
						}
						if len(line) > 16 && bytes.EqualFold(line[:15], []byte("Content-Length:")) {
							length, _ = strconv.Atoi(string(bytes.TrimSpace(line[15:])))
						}
					}
					if status != 200 || length < 0 {
						rest, _ := br.Peek(length)
						b.Errorf("status %d length %d: %s", status, length, rest)
						return
					}
					if _, err := io.CopyN(io.Discard, br, int64(length)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
