package main

import (
	"strings"
	"testing"
	"time"
)

func TestScheduleIsFixedFromStart(t *testing.T) {
	start := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		rate float64
		i    int64
		want time.Duration
	}{
		{1000, 0, 0},
		{1000, 1, time.Millisecond},
		{1000, 2500, 2500 * time.Millisecond},
		{3, 1, 333333333 * time.Nanosecond},
		{3, 3, time.Second}, // no drift from summing rounded intervals
		{3, 3000, 1000 * time.Second},
		{6543.5, 6543500, 1000 * time.Second},
	}
	for _, c := range cases {
		if got := scheduledAt(start, c.rate, c.i).Sub(start); got != c.want {
			t.Errorf("scheduledAt(rate %v, i %d) = start+%v, want start+%v", c.rate, c.i, got, c.want)
		}
	}
	if got := interval(4000); got != 250*time.Microsecond {
		t.Errorf("interval(4000) = %v, want 250µs", got)
	}
}

func TestPlannedCount(t *testing.T) {
	cases := []struct {
		rate float64
		d    time.Duration
		want int64
	}{
		{1000, time.Second, 1000},          // i = 0..999 are due before 1 s
		{1000, 1500 * time.Microsecond, 2}, // i = 0, 1
		{3, time.Second, 3},                // 0, 1/3, 2/3
		{2.5, time.Second, 3},              // 0, 0.4, 0.8
		{5000, 6 * time.Second, 30000},     // warm-up 1 s + 5 s
		{1, 0, 0},
	}
	for _, c := range cases {
		if got := plannedCount(c.rate, c.d); got != c.want {
			t.Errorf("plannedCount(%v, %v) = %d, want %d", c.rate, c.d, got, c.want)
		}
	}
}

func TestPercentileNearestRank(t *testing.T) {
	var hundred []time.Duration
	for i := 1; i <= 100; i++ {
		hundred = append(hundred, time.Duration(i)*time.Millisecond)
	}
	cases := []struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{nil, 99, 0},
		{[]time.Duration{7}, 50, 7},
		{[]time.Duration{7}, 100, 7},
		{hundred, 50, 50 * time.Millisecond},
		{hundred, 99, 99 * time.Millisecond},
		{hundred, 99.9, 100 * time.Millisecond}, // rank ceil(99.9) = 100
		{hundred, 100, 100 * time.Millisecond},
		{hundred, 0.001, time.Millisecond}, // never below the first
		{[]time.Duration{1, 2, 3, 4}, 50, 2},
		{[]time.Duration{1, 2, 3, 4}, 51, 3},
	}
	for _, c := range cases {
		if got := percentile(c.sorted, c.p); got != c.want {
			t.Errorf("percentile(%d samples, %v) = %v, want %v", len(c.sorted), c.p, got, c.want)
		}
	}
}

func TestSummarizeSortsAndRates(t *testing.T) {
	// 1000 samples, latencies 1000..1 µs in reverse order, one slow outlier
	// in the send lag.
	var samples []sample
	for i := 1000; i >= 1; i-- {
		samples = append(samples, sample{latency: time.Duration(i) * time.Microsecond, sendLag: time.Microsecond})
	}
	samples[0].sendLag = time.Second
	s := summarize(samples, 3, 2, 2*time.Second)
	want := summary{Requests: 1000, Errors: 3, Unsent: 2, AchievedRate: 500,
		P50: 0.5, P90: 0.9, P99: 0.99, P999: 0.999, Max: 1, SendLagP99: 0.001}
	if s != want {
		t.Errorf("summarize = %+v\nwant        %+v", s, want)
	}
	if line := s.String(); !strings.Contains(line, "p99 0.990") || !strings.Contains(line, "errors 3") {
		t.Errorf("String() = %q", line)
	}
	if empty := summarize(nil, 0, 0, 0); empty.P99 != 0 || empty.AchievedRate != 0 {
		t.Errorf("summarize(nil) = %+v, want zeros", empty)
	}
}

func TestParseHeaders(t *testing.T) {
	h, err := parseHeaders([]string{"Authorization: Bearer a.b.c", "x-one:1", "X-One: 2"})
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Get("Authorization"); got != "Bearer a.b.c" {
		t.Errorf("Authorization = %q", got)
	}
	if got := h.Values("X-One"); len(got) != 2 || got[0] != "1" || got[1] != "2" {
		t.Errorf("X-One = %q", got)
	}
	for _, bad := range []string{"no colon", ": empty key", "Bad Key: v"} {
		if _, err := parseHeaders([]string{bad}); err == nil {
			t.Errorf("parseHeaders(%q): no error", bad)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := config{url: "http://127.0.0.1:1/", rate: 100, duration: time.Second, conns: 1, maxQueue: 10, timeout: time.Second}
	if err := ok.validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	bad := map[string]func(*config){
		"url":      func(c *config) { c.url = "127.0.0.1:1" },
		"rate 0":   func(c *config) { c.rate = 0 },
		"rate NaN": func(c *config) { c.rate = nan() },
		"duration": func(c *config) { c.duration = 0 },
		"warmup":   func(c *config) { c.warmup = -time.Second },
		"conns":    func(c *config) { c.conns = 0 },
		"queue":    func(c *config) { c.maxQueue = 0 },
		"timeout":  func(c *config) { c.timeout = 0 },
		"samples":  func(c *config) { c.rate, c.duration = 1e6, time.Hour },
	}
	for name, mutate := range bad {
		c := ok
		mutate(&c)
		if err := c.validate(); err == nil {
			t.Errorf("%s: no error for %+v", name, c)
		}
	}
}

func nan() float64 { zero := 0.0; return zero / zero }

func TestBuildRequest(t *testing.T) {
	h, err := parseHeaders([]string{"Authorization: Bearer t0k"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := buildRequest("http://127.0.0.1:8080/health?x=1", h)
	if err != nil {
		t.Fatal(err)
	}
	text := string(r.bytes)
	for _, want := range []string{"GET /health?x=1 HTTP/1.1\r\n", "Host: 127.0.0.1:8080\r\n", "Authorization: Bearer t0k\r\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("request %q lacks %q", text, want)
		}
	}
	if !strings.HasSuffix(text, "\r\n\r\n") || r.addr != "127.0.0.1:8080" {
		t.Errorf("request %q to %q", text, r.addr)
	}
	if r, err := buildRequest("http://localhost/", nil); err != nil || r.addr != "localhost:80" {
		t.Errorf("default port: %q, %v", r.addr, err)
	}
	for _, bad := range []string{"https://127.0.0.1/", "http:///nohost", "http://[::1/"} {
		if _, err := buildRequest(bad, nil); err == nil {
			t.Errorf("buildRequest(%q): no error", bad)
		}
	}
}

// FuzzRequest: any -url and -header never panic, and whatever is accepted
// renders one complete request head.
func FuzzRequest(f *testing.F) {
	f.Add("http://127.0.0.1:8080/health", "Authorization: Bearer a.b.c")
	f.Add("http://localhost/", "X-Empty:")
	f.Add("http://[::1]:9/x?y=z", "K: v\r\nInjected: 1")
	f.Add("https://example.com/", "no colon")
	f.Fuzz(func(t *testing.T, rawURL, header string) {
		h, err := parseHeaders([]string{header})
		if err != nil {
			return
		}
		r, err := buildRequest(rawURL, h)
		if err != nil {
			return
		}
		text := string(r.bytes)
		if !strings.HasPrefix(text, "GET ") || !strings.HasSuffix(text, "\r\n\r\n") ||
			strings.Count(text, "\r\n\r\n") != 1 || r.addr == "" {
			t.Fatalf("buildRequest(%q, %q) = %q to %q", rawURL, header, text, r.addr)
		}
	})
}
