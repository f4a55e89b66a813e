// Command rateload is an open-loop, fixed-rate HTTP load generator for the
// latency part of scripts/bench-sidecar.sh: it sends GET requests at a fixed
// rate over a fixed pool of keep-alive connections and reports latency
// percentiles measured from each request's SCHEDULED send time.
//
// Why the scheduled time (coordinated omission). A closed-loop generator
// such as wrk sends the next request on a connection only when the previous
// answer has arrived. When the server stalls for 50 ms, the generator stalls
// with it: the requests that a real client population would have sent during
// the stall are never sent, so never measured, and the stall shows up as ONE
// slow sample instead of the hundreds of slow experiences it caused. The
// generator has coordinated with the server to omit exactly the bad samples,
// and the high percentiles come out far too good.
//
// An open-loop generator fixes the send times in advance — request i is due
// at start + i/rate, whatever happened before — and measures latency from
// that due time. If the connections are all busy, or the generator itself is
// late, a request waits, and the wait counts against the server, as it would
// for a user (this is what wrk2 does; wrk2 is not packaged in Debian).
// The report also gives the generator's own send lag (actual send time minus
// scheduled time) so a generator that cannot keep up is visible.
//
// Everything is bounded: the run stops by itself at warmup+duration plus one
// request timeout, the queue of scheduled-but-unsent requests has a cap, and
// the recorded samples have a cap. It is a benchmark tool, not a product.
//
// Usage:
//
//	rateload -url http://127.0.0.1:8080/health -rate 5000 -duration 5s -conns 16 \
//	    -warmup 1s -header 'Authorization: Bearer ...' [-json]
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// maxSamples bounds the memory for recorded latencies (two durations each).
const maxSamples = 20_000_000

// config is the validated command line.
type config struct {
	url      string
	rate     float64 // requests per second
	duration time.Duration
	warmup   time.Duration
	conns    int
	maxQueue int
	timeout  time.Duration
	headers  http.Header
	json     bool
}

// headerFlags collects repeated -header 'Key: Value' flags.
type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

// parseHeaders turns "Key: Value" lines into a header map.
func parseHeaders(lines []string) (http.Header, error) {
	h := http.Header{}
	for _, line := range lines {
		key, value, ok := strings.Cut(line, ":")
		key = strings.TrimSpace(key)
		if !ok || key == "" || strings.ContainsAny(key, " \t") {
			return nil, fmt.Errorf("header %q: want 'Key: Value'", line)
		}
		h.Add(key, strings.TrimSpace(value))
	}
	return h, nil
}

func (c config) validate() error {
	switch {
	case !strings.HasPrefix(c.url, "http://"):
		return fmt.Errorf("-url %q: want an http:// URL", c.url)
	case !(c.rate > 0) || math.IsInf(c.rate, 0):
		return fmt.Errorf("-rate %v: want a positive number of requests per second", c.rate)
	case c.duration <= 0 || c.duration > time.Hour:
		return fmt.Errorf("-duration %v: want more than 0 and at most 1h", c.duration)
	case c.warmup < 0 || c.warmup > time.Hour:
		return fmt.Errorf("-warmup %v: want 0 to 1h", c.warmup)
	case c.conns < 1 || c.conns > 10_000:
		return fmt.Errorf("-conns %d: want 1 to 10000", c.conns)
	case c.maxQueue < 1 || c.maxQueue > 1_000_000:
		return fmt.Errorf("-max-queue %d: want 1 to 1000000", c.maxQueue)
	case c.timeout <= 0:
		return fmt.Errorf("-timeout %v: want more than 0", c.timeout)
	}
	if n := plannedCount(c.rate, c.warmup+c.duration); n > maxSamples {
		return fmt.Errorf("-rate × (-warmup + -duration) = %d requests: at most %d", n, maxSamples)
	}
	return nil
}

// interval is the gap between two scheduled sends at rate requests/s.
func interval(rate float64) time.Duration {
	return time.Duration(float64(time.Second) / rate)
}

// scheduledAt is the due time of request i (0-based). It is computed from
// the start, never from the previous send, so lateness does not accumulate
// into a lower rate: a late generator catches up instead.
func scheduledAt(start time.Time, rate float64, i int64) time.Time {
	return start.Add(time.Duration(float64(i) * float64(time.Second) / rate))
}

// plannedCount is how many requests are due in [0, d): those with
// i/rate < d.
func plannedCount(rate float64, d time.Duration) int64 {
	return int64(math.Ceil(d.Seconds() * rate))
}

// percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of
// sorted: the smallest sample with at least p% of the samples at or below
// it. Zero for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// The epsilon keeps binary rounding (99.9/100*1000 = 999.0000000000001)
	// from pushing the rank one sample up.
	rank := int(math.Ceil(p/100*float64(len(sorted)) - 1e-9))
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return sorted[rank-1]
}

// sample is one measured request.
type sample struct {
	latency time.Duration // answer complete − scheduled send time
	sendLag time.Duration // actual send − scheduled send time (the generator's own lateness)
}

// summary is the report; durations in milliseconds.
type summary struct {
	URL          string  `json:"url"`
	TargetRate   float64 `json:"target_rate"`
	AchievedRate float64 `json:"achieved_rate"`
	Requests     int     `json:"requests"`
	Errors       int     `json:"errors"`
	Unsent       int64   `json:"unsent"`
	P50          float64 `json:"p50_ms"`
	P90          float64 `json:"p90_ms"`
	P99          float64 `json:"p99_ms"`
	P999         float64 `json:"p99_9_ms"`
	Max          float64 `json:"max_ms"`
	SendLagP99   float64 `json:"send_lag_p99_ms"`
	FirstError   string  `json:"first_error,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// summarize computes the percentiles of the successful samples. window is
// the measured span (from the end of the warm-up to the last answer).
func summarize(samples []sample, errs int, unsent int64, window time.Duration) summary {
	lat := make([]time.Duration, len(samples))
	lag := make([]time.Duration, len(samples))
	for i, s := range samples {
		lat[i], lag[i] = s.latency, s.sendLag
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	sort.Slice(lag, func(i, j int) bool { return lag[i] < lag[j] })
	s := summary{
		Requests:   len(samples),
		Errors:     errs,
		Unsent:     unsent,
		P50:        ms(percentile(lat, 50)),
		P90:        ms(percentile(lat, 90)),
		P99:        ms(percentile(lat, 99)),
		P999:       ms(percentile(lat, 99.9)),
		Max:        ms(percentile(lat, 100)),
		SendLagP99: ms(percentile(lag, 99)),
	}
	if window > 0 {
		s.AchievedRate = float64(len(samples)) / window.Seconds()
	}
	return s
}

// String is the one-line report.
func (s summary) String() string {
	line := fmt.Sprintf("rate %.0f/%.0f req/s  requests %d  errors %d  unsent %d  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f ms  send-lag p99 %.3f ms",
		s.AchievedRate, s.TargetRate, s.Requests, s.Errors, s.Unsent, s.P50, s.P90, s.P99, s.P999, s.Max, s.SendLagP99)
	if s.FirstError != "" {
		line += "  first error: " + s.FirstError
	}
	return line
}

// workerResult is what one connection's worker measured.
type workerResult struct {
	samples  []sample
	errs     int
	firstErr error
	lastEnd  time.Time
}

// run sends the scheduled requests and returns the summary. Requests due
// during the warm-up are sent but not recorded.
func run(ctx context.Context, cfg config) (summary, error) {
	request, err := buildRequest(cfg.url, cfg.headers)
	if err != nil {
		return summary{}, err
	}
	total := cfg.warmup + cfg.duration
	start := time.Now().Add(10 * time.Millisecond) // let the workers start first
	measureFrom := start.Add(cfg.warmup)
	// Hard stop: the schedule's end plus one request timeout.
	ctx, cancel := context.WithDeadline(ctx, start.Add(total+cfg.timeout))
	defer cancel()

	due := make(chan time.Time, cfg.maxQueue)
	results := make([]workerResult, cfg.conns)
	var wg sync.WaitGroup
	for w := 0; w < cfg.conns; w++ {
		wg.Add(1)
		go func(res *workerResult) {
			defer wg.Done()
			conn := &keepAlive{addr: request.addr, request: request.bytes, timeout: cfg.timeout}
			defer conn.close()
			for at := range due {
				if ctx.Err() != nil {
					return
				}
				sent := time.Now()
				err := conn.get(ctx)
				end := time.Now()
				if !at.Before(measureFrom) {
					res.lastEnd = end
					if err != nil {
						res.errs++
						if res.firstErr == nil {
							res.firstErr = err
						}
						continue
					}
					res.samples = append(res.samples, sample{latency: end.Sub(at), sendLag: sent.Sub(at)})
				}
			}
		}(&results[w])
	}

	// The scheduler: request i is due at scheduledAt(start, rate, i). It
	// sleeps until then and hands the due time to a free worker; when all
	// are busy it blocks (up to maxQueue queued), and the waiting is
	// charged to the requests since latency counts from the due time. It
	// runs on its own goroutine because precise locks it to a thread.
	planned := plannedCount(cfg.rate, total)
	go func() {
		defer close(due)
		sleep := precise()
		for i := int64(0); i < planned; i++ {
			at := scheduledAt(start, cfg.rate, i)
			if d := time.Until(at); d > 0 {
				sleep(d)
			}
			select {
			case due <- at:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()

	var all []sample
	errs := 0
	var firstErr error
	lastEnd := measureFrom
	for _, r := range results {
		all = append(all, r.samples...)
		errs += r.errs
		if firstErr == nil {
			firstErr = r.firstErr
		}
		if r.lastEnd.After(lastEnd) {
			lastEnd = r.lastEnd
		}
	}
	// Requests never handed out, or handed out after the hard stop.
	unsent := planned - int64(len(all)+errs) - plannedCount(cfg.rate, cfg.warmup)
	if unsent < 0 {
		unsent = 0
	}
	window := lastEnd.Sub(measureFrom)
	if window < cfg.duration {
		window = cfg.duration
	}
	s := summarize(all, errs, unsent, window)
	s.URL, s.TargetRate = cfg.url, cfg.rate
	if firstErr != nil {
		s.FirstError = firstErr.Error()
	}
	return s, nil
}

// rawRequest is the GET request rendered once: every send writes the same
// bytes to the connection.
type rawRequest struct {
	addr  string // host:port to dial
	bytes []byte
}

// buildRequest renders a GET of rawURL with the extra headers. Only plain
// http: this is a loopback benchmark tool, and TLS would measure TLS.
func buildRequest(rawURL string, headers http.Header) (rawRequest, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawRequest{}, fmt.Errorf("parse -url: %w", err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return rawRequest{}, fmt.Errorf("-url %q: want http://host[:port]/path", rawURL)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	req := &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: headers.Clone(),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	var b bytes.Buffer
	if err := req.Write(&b); err != nil {
		return rawRequest{}, fmt.Errorf("render request: %w", err)
	}
	return rawRequest{addr: addr, bytes: b.Bytes()}, nil
}

// keepAlive is one worker's connection: the request is written and the
// answer read on the worker's own goroutine (no http.Transport goroutines
// and hand-offs, so the generator costs little CPU on a shared machine).
// After any error the connection is dropped and the next request redials.
type keepAlive struct {
	addr    string
	request []byte
	timeout time.Duration
	conn    net.Conn
	reader  *bufio.Reader
}

// get sends the request and reads the answer to the end; a non-2xx status
// is an error.
func (k *keepAlive) get(ctx context.Context) error {
	deadline := time.Now().Add(k.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if k.conn == nil {
		dialer := net.Dialer{Deadline: deadline}
		conn, err := dialer.DialContext(ctx, "tcp", k.addr)
		if err != nil {
			return fmt.Errorf("dial %s: %w", k.addr, err)
		}
		k.conn, k.reader = conn, bufio.NewReaderSize(conn, 16<<10)
	}
	if err := k.conn.SetDeadline(deadline); err != nil {
		k.close()
		return fmt.Errorf("set deadline: %w", err)
	}
	if _, err := k.conn.Write(k.request); err != nil {
		k.close()
		return fmt.Errorf("write: %w", err)
	}
	resp, err := http.ReadResponse(k.reader, nil)
	if err != nil {
		k.close()
		return fmt.Errorf("read response: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		k.close()
	}
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func (k *keepAlive) close() {
	if k.conn != nil {
		k.conn.Close()
		k.conn, k.reader = nil, nil
	}
}

func main() {
	var cfg config
	var headers headerFlags
	flag.StringVar(&cfg.url, "url", "", "URL to GET")
	flag.Float64Var(&cfg.rate, "rate", 1000, "requests per second (fixed, open loop)")
	flag.DurationVar(&cfg.duration, "duration", 5*time.Second, "measured duration")
	flag.DurationVar(&cfg.warmup, "warmup", time.Second, "warm-up before measuring (sent at the same rate, not recorded)")
	flag.IntVar(&cfg.conns, "conns", 16, "keep-alive connections, one worker each (the most requests in flight)")
	flag.IntVar(&cfg.maxQueue, "max-queue", 10_000, "cap on scheduled requests waiting for a free connection")
	flag.DurationVar(&cfg.timeout, "timeout", 5*time.Second, "per-request timeout; the run also stops at warmup+duration+timeout")
	flag.Var(&headers, "header", "request header 'Key: Value' (repeatable)")
	flag.BoolVar(&cfg.json, "json", false, "print the report as one JSON object")
	flag.Parse()

	h, err := parseHeaders(headers)
	if err == nil {
		cfg.headers = h
		err = cfg.validate()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rateload:", err)
		os.Exit(2)
	}
	s, err := run(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rateload:", err)
		os.Exit(2)
	}
	if cfg.json {
		if err := json.NewEncoder(os.Stdout).Encode(s); err != nil {
			fmt.Fprintln(os.Stderr, "rateload:", err)
			os.Exit(1)
		}
		return
	}
	fmt.Println(s)
}
