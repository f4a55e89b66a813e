package main

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/contentguard/contentguard/backend/webhook"
	"github.com/contentguard/contentguard/internal/polltest"
	"github.com/contentguard/contentguard/internal/redistest"
	"github.com/contentguard/contentguard/internal/syncbuf"
)

// The load test: `contentguard backend` processes on a real Redis — one API
// (which also sends webhooks) and job workers, started from this test binary
// (CG_RUN_MAIN) — a generator submitting jobs, each with its own webhook
// URL, to the API, an endpoint registered for every event, a receiver that
// fails 30 % of first attempts (503) and is slow (200 ms) on 10 %, and
// workers SIGKILLed (and replaced) while it runs. Every event must reach
// every target at least once; duplicates are counted.
//
// TestJobWebhooksSurviveWorkerKills runs it small in `make test`;
// BenchmarkJobWebhooksLoad runs 10,000 jobs (docs/benchmarks-jobs.md).

// loadSpec describes one run.
type loadSpec struct {
	jobs    int
	workers int
	// kills are the shares of all expected deliveries received at which a
	// worker is SIGKILLed and a new one started.
	kills    []float64
	deadline time.Duration // for every delivery to arrive
	extra    []string      // flags for every backend process
}

// loadResult is what a run measured.
type loadResult struct {
	jobs, expected, received, missing, duplicates int
	retried503, queueFull503, kills               int
	elapsed                                       time.Duration // first submission → last first delivery
	elapsed99                                     time.Duration // first submission → 99 % of the deliveries
	p50, p99, max                                 time.Duration // job accepted → first delivery, per target
	stats                                         webhook.Totals
	deadLetters                                   int
	workerMetrics                                 []string // the live workers' /metrics at the end
}

func (r loadResult) String() string {
	return fmt.Sprintf("%d jobs, %d deliveries expected, %d missing, %d duplicates; %d kills; %d first attempts failed on purpose, %d submissions answered 503; "+
		"all delivered in %.1f s (%.0f jobs/s), 99 %% in %.1f s (%.0f jobs/s); job accepted → delivered p50 %v p99 %v max %v; store totals %+v, %d dead letters",
		r.jobs, r.expected, r.missing, r.duplicates, r.kills, r.retried503, r.queueFull503,
		r.elapsed.Seconds(), float64(r.jobs)/r.elapsed.Seconds(), r.elapsed99.Seconds(), 0.99*float64(r.jobs)/r.elapsed99.Seconds(), r.p50, r.p99, r.max, r.stats, r.deadLetters)
}

// loadReceiver records deliveries by job and target.
type loadReceiver struct {
	secret string

	mu       sync.Mutex
	attempts map[string]int       // X-Webhook-Id → requests seen
	okByID   map[string]int       // X-Webhook-Id → 2xx answers
	first    map[string]time.Time // "job_…/own" or "job_…/registered" → first 2xx answer
	ownPath  map[string]string    // job → the /own/<n> path its own delivery came to
	accepted map[string]time.Time // job → accepted by the API
	index    map[string]int       // job → n of the /own/<n> URL it was submitted with
	failed   int                  // first attempts failed on purpose
	bad      []string             // signature or payload problems
	received atomic.Int64         // distinct (job, target) pairs reached
}

func newLoadReceiver(secret string) *loadReceiver {
	return &loadReceiver{
		secret: secret, attempts: map[string]int{}, okByID: map[string]int{}, first: map[string]time.Time{},
		ownPath: map[string]string{}, accepted: map[string]time.Time{}, index: map[string]int{},
	}
}

// fate decides from the delivery id how the receiver treats it: "fail"
// for 30 % of first attempts, "slow" for 10 % of deliveries.
func fate(id string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	switch n := h.Sum32() % 10; {
	case n < 3:
		return "fail"
	case n == 9:
		return "slow"
	}
	return ""
}

func (rc *loadReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "unreadable", http.StatusBadRequest)
		return
	}
	id := r.Header.Get(webhook.HeaderID)
	var msg struct {
		ID   string `json:"id"`
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := webhook.VerifyRequest([]byte(rc.secret), body, r.Header, time.Now(), webhook.DefaultTolerance); err != nil ||
		json.Unmarshal(body, &msg) != nil || msg.ID != id || msg.Data.ID == "" {
		rc.mu.Lock()
		rc.bad = append(rc.bad, fmt.Sprintf("%s %s: %v", r.URL.Path, id, err))
		rc.mu.Unlock()
		http.Error(w, "bad delivery", http.StatusUnauthorized)
		return
	}
	target := "registered"
	if strings.HasPrefix(r.URL.Path, "/own/") {
		target = "own"
	}
	key := msg.Data.ID + "/" + target
	f := fate(id)
	rc.mu.Lock()
	rc.attempts[id]++
	firstAttempt := rc.attempts[id] == 1
	rc.mu.Unlock()
	if f == "fail" && firstAttempt {
		rc.mu.Lock()
		rc.failed++
		rc.mu.Unlock()
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	if f == "slow" {
		select {
		case <-time.After(200 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
	}
	rc.mu.Lock()
	rc.okByID[id]++
	if target == "own" {
		rc.ownPath[msg.Data.ID] = r.URL.Path
	}
	if _, seen := rc.first[key]; !seen {
		rc.first[key] = time.Now()
		rc.received.Add(1)
	}
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// backendProc is one `contentguard backend` process run from this binary.
type backendProc struct {
	cmd *exec.Cmd
	log *syncbuf.Buffer
}

func startBackend(tb testing.TB, args ...string) *backendProc {
	tb.Helper()
	p := &backendProc{log: &syncbuf.Buffer{}}
	p.cmd = exec.Command(os.Args[0], append([]string{"backend"}, args...)...)
	p.cmd.Env = append(os.Environ(), "CG_RUN_MAIN=1", "OTEL_EXPORTER_OTLP_ENDPOINT=", "REDIS_URL=", "PORT=", "AWS_LAMBDA_FUNCTION_NAME=")
	p.cmd.Stderr = p.log
	p.cmd.Stdout = io.Discard
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		_ = p.cmd.Wait()
	})
	return p
}

// kill SIGKILLs the process and waits for it.
func (p *backendProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

func runJobsLoad(tb testing.TB, spec loadSpec) loadResult {
	redisURL := "redis://" + redistest.Start(tb)
	const secret = "load-test-secret-0123456789"
	rc := newLoadReceiver(secret)
	recv := httptest.NewServer(rc)
	tb.Cleanup(recv.Close)

	common := append([]string{"--redis", redisURL, "--webhook-allow-private", "--log-level", "warn"}, spec.extra...)
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(tb))
	api := startBackend(tb, append([]string{"--listen", apiAddr, "--api-worker=false"}, common...)...)
	base := "http://" + apiAddr
	client := &http.Client{Timeout: 30 * time.Second}
	if !polltest.Until(60*time.Second, func() bool {
		resp, err := client.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	}) {
		tb.Fatalf("the API never answered:\n%s", api.log.String())
	}
	// Each worker serves its metrics on a port of its own.
	metricsAddrs := make([]string, spec.workers)
	startWorker := func(i int) *backendProc {
		metricsAddrs[i] = fmt.Sprintf("127.0.0.1:%d", freePort(tb))
		return startBackend(tb, append([]string{"--worker", "--metrics-listen", metricsAddrs[i]}, common...)...)
	}
	var workers []*backendProc
	for i := range spec.workers {
		workers = append(workers, startWorker(i))
	}
	logs := func() string {
		var b strings.Builder
		b.WriteString("api: " + tail(api.log.String()))
		for i, w := range workers {
			fmt.Fprintf(&b, "\nworker %d: %s", i, tail(w.log.String()))
		}
		return b.String()
	}

	resp, err := client.Post(base+"/api/v1/webhooks/register", "application/json",
		strings.NewReader(`{"url":"`+recv.URL+`/registered","events":["analysis_completed","batch_failed"],"secret":"`+secret+`"}`))
	if err != nil || resp.StatusCode != http.StatusCreated {
		tb.Fatalf("registering the endpoint: %v %v", err, resp)
	}
	var reg struct {
		Data struct{ ID string } `json:"data"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()

	// The generator.
	res := loadResult{jobs: spec.jobs, expected: 2 * spec.jobs}
	var queueFull atomic.Int64
	start := time.Now()
	next := make(chan int)
	var gen sync.WaitGroup
	var genErr atomic.Value
	for range 8 {
		gen.Add(1)
		go func() {
			defer gen.Done()
			for n := range next {
				if err := submitJob(client, base, recv.URL, secret, n, rc, &queueFull); err != nil {
					genErr.Store(err)
				}
			}
		}()
	}
	killed := 0
	go func() {
		for n := range spec.jobs {
			next <- n
		}
		close(next)
	}()

	// Kill workers as the deliveries come in.
	for _, share := range spec.kills {
		want := int64(share * float64(res.expected))
		if !polltest.Until(spec.deadline, func() bool { return rc.received.Load() >= want }) {
			tb.Fatalf("only %d of %d deliveries before kill %d\n%s", rc.received.Load(), want, killed+1, logs())
		}
		workers[killed%len(workers)].kill()
		workers[killed%len(workers)] = startWorker(killed % len(workers))
		killed++
	}
	gen.Wait()
	if err, _ := genErr.Load().(error); err != nil {
		tb.Fatalf("generator: %v\n%s", err, logs())
	}
	all := polltest.Until(spec.deadline, func() bool { return rc.received.Load() >= int64(res.expected) })
	// A sender killed after sending but before recording it leaves a
	// delivery pending until its lease runs out; it is then sent again (a
	// duplicate). Wait for the queue to drain, so duplicates are counted
	// and the metrics read below are final.
	drained := all && polltest.Until(spec.deadline, func() bool {
		resp, err := client.Get(base + "/metrics")
		if err != nil {
			return false
		}
		text, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(text), "\nwebhook_delivery_queue_depth 0\n")
	})

	rc.mu.Lock()
	defer rc.mu.Unlock()
	res.kills, res.retried503, res.queueFull503 = killed, rc.failed, int(queueFull.Load())
	var lat []time.Duration
	var arrivals []time.Time
	for _, at := range rc.first {
		arrivals = append(arrivals, at)
	}
	slices.SortFunc(arrivals, func(a, b time.Time) int { return a.Compare(b) })
	if n := len(arrivals); n > 0 {
		res.elapsed99 = arrivals[min(n-1, res.expected*99/100)].Sub(start)
	}
	last := start
	for job, acc := range rc.accepted {
		if p, ok := rc.ownPath[job]; ok && p != "/own/"+strconv.Itoa(rc.index[job]) {
			rc.bad = append(rc.bad, fmt.Sprintf("job %s submitted with /own/%d was delivered to %s", job, rc.index[job], p))
		}
		for _, target := range []string{"own", "registered"} {
			at, ok := rc.first[job+"/"+target]
			if !ok {
				res.missing++
				continue
			}
			lat = append(lat, at.Sub(acc))
			if at.After(last) {
				last = at
			}
		}
	}
	res.missing += 2 * (spec.jobs - len(rc.accepted))
	res.received = len(rc.first)
	for _, n := range rc.okByID {
		res.duplicates += n - 1
	}
	res.elapsed = last.Sub(start)
	slices.Sort(lat)
	if n := len(lat); n > 0 {
		res.p50, res.p99, res.max = lat[n/2], lat[min(n-1, n*99/100)], lat[n-1]
	}
	res.stats, res.deadLetters = apiStats(tb, client, base, reg.Data.ID)
	for _, addr := range metricsAddrs {
		resp, err := client.Get("http://" + addr + "/metrics")
		if err != nil {
			tb.Fatalf("worker metrics at %s: %v", addr, err)
		}
		text, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res.workerMetrics = append(res.workerMetrics, string(text))
	}
	if len(rc.bad) > 0 {
		tb.Errorf("%d bad deliveries, e.g. %s", len(rc.bad), rc.bad[0])
	}
	if !all || res.missing > 0 {
		tb.Fatalf("deliveries missing: %s\n%s", res, logs())
	}
	if !drained {
		tb.Fatalf("the delivery queue never drained: %s\n%s", res, logs())
	}
	return res
}

// submitJob posts the n-th analyze job with its own webhook URL, /own/<n>,
// retrying a 503 after its Retry-After.
func submitJob(client *http.Client, base, recvURL, secret string, n int, rc *loadReceiver, queueFull *atomic.Int64) error {
	for {
		body := `{"kind":"analyze","input":{"content":"one two two three"},"webhook_url":"` + recvURL + `/own/` + strconv.Itoa(n) + `","webhook_secret":"` + secret + `"}`
		resp, err := client.Post(base+"/api/v1/jobs", "application/json", strings.NewReader(body))
		if err != nil {
			return err
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			queueFull.Add(1)
			secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			time.Sleep(time.Duration(max(secs, 1)) * time.Second) // the client's backoff, not test ordering
			continue
		}
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("submit: %d %s", resp.StatusCode, raw)
		}
		var out struct {
			Data struct{ ID string } `json:"data"`
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			return err
		}
		rc.mu.Lock()
		rc.accepted[out.Data.ID] = time.Now()
		rc.index[out.Data.ID] = n
		rc.mu.Unlock()
		return nil
	}
}

// apiStats reads the store's totals and the endpoint's dead letters.
func apiStats(tb testing.TB, client *http.Client, base, endpoint string) (webhook.Totals, int) {
	var st struct {
		Data webhook.Stats `json:"data"`
	}
	var dl struct {
		Data struct{ Deliveries []json.RawMessage } `json:"data"`
	}
	for _, g := range []struct {
		path string
		into any
	}{{"/api/v1/webhooks/stats", &st}, {"/api/v1/webhooks/" + endpoint + "/deliveries", &dl}} {
		resp, err := client.Get(base + g.path)
		if err != nil {
			tb.Fatal(err)
		}
		_ = json.NewDecoder(resp.Body).Decode(g.into)
		resp.Body.Close()
	}
	return st.Data.Totals, len(dl.Data.Deliveries)
}

func tail(s string) string {
	if len(s) > 4000 {
		return "…" + s[len(s)-4000:]
	}
	return s
}

// TestJobWebhooksSurviveWorkerKills is the load test made small for `make
// test`: 60 jobs, two workers, one SIGKILLed (and replaced) after a third
// of the deliveries. Job takeovers and delivery leases are short (2 s
// worker TTL, 2 s attempt timeout: 7 s lease), so recovery is quick; the
// deadline is a hang guard, not a timing assertion.
func TestJobWebhooksSurviveWorkerKills(t *testing.T) {
	res := runJobsLoad(t, loadSpec{
		jobs: 60, workers: 2, kills: []float64{1.0 / 3}, deadline: 4 * time.Minute,
		extra: []string{"--worker-ttl", "2s", "--webhook-timeout", "2s"},
	})
	t.Log(res)
	if res.stats.Failed != 0 || res.stats.Dropped != 0 || res.deadLetters != 0 {
		t.Fatalf("deliveries failed for good or dropped: %s", res)
	}
	if res.retried503 == 0 {
		t.Fatalf("the receiver failed no first attempt, so no retry was tested: %s", res)
	}
	// Workers serve their metrics: the jobs they finished, the deliveries
	// they sent and retried, and the shared queue, now empty.
	for i, m := range res.workerMetrics {
		for _, want := range []string{
			`jobs_completed_total{kind="analyze",status="completed"}`, "webhook_deliveries_succeeded_total",
			`webhook_deliveries_retried_total`, "webhook_delivery_queue_depth 0", `webhook_deliveries_dropped_total{reason="queue_full"} 0`,
		} {
			if !strings.Contains(m, want) {
				t.Errorf("worker %d's /metrics lacks %q", i, want)
			}
		}
	}
}

// BenchmarkJobWebhooksLoad is the full load test: CG_LOAD_JOBS jobs
// (default 10,000), two workers with the default worker TTL and webhook
// timeout (CG_LOAD_FLAGS adds backend flags, e.g. a smaller
// --webhook-queue-size to see the 503s), three SIGKILLs (after a quarter,
// half and three quarters of the deliveries). Run it once:
//
//	go test -run '^$' -bench JobWebhooksLoad -benchtime 1x -timeout 60m ./cmd/contentguard/
func BenchmarkJobWebhooksLoad(b *testing.B) {
	jobs := 10000
	if v := os.Getenv("CG_LOAD_JOBS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("CG_LOAD_JOBS=%q", v)
		}
		jobs = n
	}
	extra := append([]string{"--job-concurrency", "4"}, strings.Fields(os.Getenv("CG_LOAD_FLAGS"))...)
	for range b.N {
		res := runJobsLoad(b, loadSpec{
			jobs: jobs, workers: 2, kills: []float64{0.25, 0.5, 0.75}, deadline: 20 * time.Minute, extra: extra,
		})
		b.Log(res)
		b.ReportMetric(float64(res.jobs)/res.elapsed.Seconds(), "jobs/s")
		b.ReportMetric(0.99*float64(res.jobs)/res.elapsed99.Seconds(), "jobs/s-to-99%")
		b.ReportMetric(float64(res.p99.Milliseconds()), "p99-ms")
		b.ReportMetric(float64(res.duplicates), "duplicates")
		b.ReportMetric(float64(res.missing), "missing")
	}
}
