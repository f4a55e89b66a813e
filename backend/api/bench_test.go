package api

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// benchText is ~1 KiB of prose.
var benchText = strings.Repeat("The quick brown fox jumps over the lazy dog near the river bank. ", 16)

// BenchmarkAnalyzeHandler runs the full middleware chain in process (no
// sockets): "cached" repeats one body (cache hit path), "uncached" makes
// every body unique so each request analyses ~1 KiB of text.
func BenchmarkAnalyzeHandler(b *testing.B) {
	for _, mode := range []string{"cached", "uncached"} {
		b.Run(mode, func(b *testing.B) {
			s, err := New(Config{})
			if err != nil {
				b.Fatal(err)
			}
			h := s.Handler()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				text := benchText
				if mode == "uncached" {
					text = fmt.Sprintf("%s %d", benchText, i)
				}
				req := httptest.NewRequest("POST", "/api/v1/analyze", strings.NewReader(`{"content":"`+text+`"}`))
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("status %d", rec.Code)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

// BenchmarkAnalyzeHTTP is end-to-end over loopback TCP with keep-alive
// clients in parallel (GOMAXPROCS × -cpu goroutines), unique bodies.
func BenchmarkAnalyzeHTTP(b *testing.B) {
	s, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var n atomic.Int64
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var buf bytes.Buffer
		for pb.Next() {
			buf.Reset()
			fmt.Fprintf(&buf, `{"content":"%s %d"}`, benchText, n.Add(1))
			resp, err := client.Post(srv.URL+"/api/v1/analyze", "application/json", &buf)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
