package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/contentguard/contentguard/internal/clocktest"
	"github.com/contentguard/contentguard/internal/polltest"
	"github.com/contentguard/contentguard/internal/syncbuf"
)

// receiver is a real HTTP server that records deliveries and answers with
// the scripted statuses in turn (200 once the script runs out).
type receiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	script   []int
	headers  map[string]string // sent with every answer
	requests []received
}

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, script ...int) *receiver {
	rc := &receiver{script: script}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.requests = append(rc.requests, received{header: r.Header.Clone(), body: body})
		status := http.StatusOK
		if len(rc.script) > 0 {
			status, rc.script = rc.script[0], rc.script[1:]
		}
		for k, v := range rc.headers {
			w.Header().Set(k, v)
		}
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) got() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.requests...)
}

// waitRequests waits until the receiver has seen n requests.
func (rc *receiver) waitRequests(t *testing.T, n int) []received {
	t.Helper()
	if !polltest.Until(10*time.Second, func() bool { return len(rc.got()) >= n }) {
		t.Fatalf("receiver saw %d requests, want %d", len(rc.got()), n)
	}
	return rc.got()
}

// countingObserver records Observer calls.
type countingObserver struct {
	mu                                   sync.Mutex
	attempts, delivered, retried, failed int
	dropped                              map[string]int
	latencies                            []time.Duration
}

func (o *countingObserver) Attempted(int) { o.mu.Lock(); o.attempts++; o.mu.Unlock() }
func (o *countingObserver) Delivered(d time.Duration) {
	o.mu.Lock()
	o.delivered++
	o.latencies = append(o.latencies, d)
	o.mu.Unlock()
}
func (o *countingObserver) Retried() { o.mu.Lock(); o.retried++; o.mu.Unlock() }
func (o *countingObserver) Failed()  { o.mu.Lock(); o.failed++; o.mu.Unlock() }
func (o *countingObserver) Dropped(reason string, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.dropped == nil {
		o.dropped = map[string]int{}
	}
	o.dropped[reason] += n
}

func (o *countingObserver) snapshot() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return fmt.Sprintf("attempts=%d delivered=%d retried=%d failed=%d dropped=%v", o.attempts, o.delivered, o.retried, o.failed, o.dropped)
}

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// harness is a deliverer on a fake clock whose backoff always draws its
// ceiling, so retry times are exact.
type harness struct {
	clock *clocktest.Clock
	reg   *Registry
	d     *Deliverer
	obs   *countingObserver
	log   *syncbuf.Buffer
}

func newHarness(t *testing.T, opts DelivererOptions) *harness {
	h := &harness{clock: clocktest.New(t0), obs: &countingObserver{}, log: &syncbuf.Buffer{}}
	if opts.Guard == (Guard{}) {
		opts.Guard = Guard{AllowPrivate: true}
	}
	h.reg = NewRegistry(RegistryOptions{Guard: opts.Guard, Now: h.clock.Now})
	opts.Now, opts.Observer = h.clock.Now, h.obs
	opts.Logger = slog.New(slog.NewJSONHandler(h.log, nil))
	if opts.PollInterval == 0 {
		opts.PollInterval = 5 * time.Millisecond
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	h.d = NewDeliverer(h.reg, opts)
	h.d.backoff.Rand = func(n int64) int64 { return n }
	closeDeliverer(t, h.d)
	return h
}

// pending waits for the only pending delivery to have had n attempts
// settled, and returns its record.
func (h *harness) settled(t *testing.T, id string, attempts int) Delivery {
	t.Helper()
	var got Delivery
	if !polltest.Until(10*time.Second, func() bool {
		ms := h.d.store.(*MemoryStore)
		ms.mu.Lock()
		defer ms.mu.Unlock()
		r, ok := ms.records[id]
		if ok {
			got = cloneDelivery(r.d)
		}
		return ok && r.d.Attempts == attempts && r.d.Lease == ""
	}) {
		t.Fatalf("delivery %s never settled after %d attempts; last %+v", id, attempts, got)
	}
	return got
}

func TestDeliverySignedAndVerifiedByReceiver(t *testing.T) {
	const secret = "receiver-shared-secret"
	h := newHarness(t, DelivererOptions{})
	type verdict struct {
		v2, legacy bool
		event, id  string
		ts         int64
		payload    map[string]any
	}
	verdicts := make(chan verdict, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		v := verdict{
			v2:     VerifyRequest([]byte(secret), body, r.Header, h.clock.Now(), DefaultTolerance) == nil,
			legacy: Verify([]byte(secret), body, r.Header.Get(HeaderSignature)),
			event:  r.Header.Get(HeaderEvent), id: r.Header.Get(HeaderID),
		}
		v.ts, _ = strconv.ParseInt(r.Header.Get(HeaderTimestamp), 10, 64)
		_ = json.Unmarshal(body, &v.payload)
		verdicts <- v
	}))
	defer srv.Close()

	ep, _, err := h.reg.Register(context.Background(), srv.URL+"/hook", []string{EventBatchCompleted}, secret)
	if err != nil {
		t.Fatal(err)
	}
	n, err := h.d.Publish(context.Background(), EventBatchCompleted, map[string]any{"job": "job_1", "total": 3})
	if err != nil || n != 1 {
		t.Fatalf("Publish = %d, %v; want 1 delivery", n, err)
	}
	if n, _ := h.d.Publish(context.Background(), EventAnalysisCompleted, nil); n != 0 {
		t.Fatalf("endpoint not subscribed to analysis_completed got %d deliveries", n)
	}
	v := <-verdicts
	if !v.v2 || !v.legacy {
		t.Fatalf("receiver verified V2 %v, body-only %v; want both", v.v2, v.legacy)
	}
	if v.event != EventBatchCompleted || v.payload["event"] != EventBatchCompleted {
		t.Errorf("event header %q / body %v, want batch_completed", v.event, v.payload["event"])
	}
	if !strings.HasPrefix(v.id, "dlv_") || v.payload["id"] != v.id {
		t.Errorf("X-Webhook-Id %q must be a delivery id equal to the body's id %v", v.id, v.payload["id"])
	}
	if v.ts != t0.Unix() {
		t.Errorf("X-Webhook-Timestamp %d, want the clock's %d", v.ts, t0.Unix())
	}
	if data, _ := v.payload["data"].(map[string]any); data["job"] != "job_1" {
		t.Errorf("data = %v", v.payload["data"])
	}
	var st Stats
	if !polltest.Until(10*time.Second, func() bool { st, _ = h.reg.Stats(context.Background()); return st.Totals.Succeeded == 1 }) {
		t.Fatalf("stats totals = %+v, want 1 succeeded", st.Totals)
	}
	if e := st.Endpoints[0]; e.ID != ep.ID || e.Attempts != 1 || e.Succeeded != 1 || e.LastStatus != 200 || e.LastAttemptAt == nil {
		t.Errorf("stats = %+v", e)
	}
	if q, _ := h.d.QueueStats(context.Background()); q.Pending != 0 {
		t.Errorf("delivered, yet %d pending", q.Pending)
	}
}

func TestOmitBodySignature(t *testing.T) {
	rc := newReceiver(t)
	h := newHarness(t, DelivererOptions{OmitBodySignature: true})
	if _, err := h.d.Send(context.Background(), Target{URL: rc.srv.URL, Secret: "0123456789abcdef"}, EventBatchFailed, 1); err != nil {
		t.Fatal(err)
	}
	r := rc.waitRequests(t, 1)[0]
	if r.header.Get(HeaderSignature) != "" || r.header.Get(HeaderSignatureV2) == "" {
		t.Fatalf("headers %v: want V2 only", r.header)
	}
}

// TestRetriesAreScheduledNotSlept: with one worker, a delivery that failed
// waits in the store for its retry time while the worker sends another
// one; the retry goes out only when the clock reaches its time, with the
// same id and body and a freshly signed timestamp.
func TestRetriesAreScheduledNotSlept(t *testing.T) {
	const secret = "0123456789abcdef"
	flaky := newReceiver(t, 503)
	healthy := newReceiver(t)
	h := newHarness(t, DelivererOptions{Workers: 1, BaseDelay: time.Second, MaxDelay: time.Minute})
	id, err := h.d.Send(context.Background(), Target{URL: flaky.srv.URL, Secret: secret}, EventBatchCompleted, 1)
	if err != nil {
		t.Fatal(err)
	}
	rec := h.settled(t, id, 1)
	if rec.LastStatus != 503 || rec.LastError != "HTTP 503" || !rec.NextAttemptAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("after a 503: %+v, want the retry scheduled at the first ceiling (1s)", rec)
	}
	// The single worker is free: another delivery goes out at once.
	if _, err := h.d.Send(context.Background(), Target{URL: healthy.srv.URL, Secret: secret}, EventBatchCompleted, 2); err != nil {
		t.Fatal(err)
	}
	healthy.waitRequests(t, 1)
	if n := len(flaky.got()); n != 1 {
		t.Fatalf("the flaky receiver saw %d requests before the retry time", n)
	}
	h.clock.Advance(time.Second)
	got := flaky.waitRequests(t, 2)
	first, second := got[0], got[1]
	if second.header.Get(HeaderID) != id || first.header.Get(HeaderID) != id || !bytes.Equal(first.body, second.body) {
		t.Fatalf("retry sent id %q body %s; first id %q body %s: want the same delivery", second.header.Get(HeaderID), second.body, first.header.Get(HeaderID), first.body)
	}
	if second.header.Get(HeaderTimestamp) != strconv.FormatInt(t0.Add(time.Second).Unix(), 10) {
		t.Fatalf("retry timestamp %s, want the time of the retry", second.header.Get(HeaderTimestamp))
	}
	if VerifyRequest([]byte(secret), second.body, second.header, h.clock.Now(), DefaultTolerance) != nil {
		t.Fatal("the retry's V2 signature does not verify")
	}
	if !polltest.Until(10*time.Second, func() bool { return strings.Contains(h.obs.snapshot(), "delivered=2") }) {
		t.Fatalf("observer: %s", h.obs.snapshot())
	}
	if got := h.obs.snapshot(); got != "attempts=3 delivered=2 retried=1 failed=0 dropped=map[]" {
		t.Fatalf("observer: %s", got)
	}
}

func TestRetryAfterRaisesTheDelay(t *testing.T) {
	rc := newReceiver(t, 429, 503)
	rc.headers = map[string]string{"Retry-After": "7"}
	h := newHarness(t, DelivererOptions{BaseDelay: time.Second, MaxDelay: 5 * time.Second})
	id, _ := h.d.Send(context.Background(), Target{URL: rc.srv.URL, Secret: "0123456789abcdef"}, EventBatchCompleted, 1)
	// Retry-After 7 is capped at MaxDelay (5s), above the 1s ceiling.
	if rec := h.settled(t, id, 1); !rec.NextAttemptAt.Equal(t0.Add(5 * time.Second)) {
		t.Fatalf("next attempt at %v, want t0+5s", rec.NextAttemptAt)
	}
	if w := h.d.retryDelay(1, 700*time.Millisecond); w != time.Second {
		t.Fatalf("retryDelay(1, 700ms) = %v; the 1s ceiling drawn is larger", w)
	}
}

func TestDeliveryGivesUp(t *testing.T) {
	cases := []struct {
		name     string
		script   []int
		attempts int
		status   int
	}{
		{"4xx is final", []int{400}, 1, 400},
		{"404 is final", []int{404}, 1, 404},
		{"redirect is not followed", []int{302}, 1, 302},
		{"5xx until max attempts", []int{500, 502, 503, 504, 500}, 4, 504},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rc := newReceiver(t, c.script...)
			h := newHarness(t, DelivererOptions{MaxAttempts: 4, BaseDelay: time.Second, MaxDelay: time.Minute})
			id, err := h.d.Send(context.Background(), Target{URL: rc.srv.URL, Secret: "0123456789abcdef", JobID: "job_1"}, EventBatchFailed, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i < c.attempts; i++ {
				h.settled(t, id, i)
				h.clock.Advance(time.Minute)
			}
			var dead []Delivery
			if !polltest.Until(10*time.Second, func() bool {
				dead, _ = h.d.DeadLetters(context.Background(), "job_1", 10)
				return len(dead) == 1
			}) {
				t.Fatalf("no dead letter; observer %s", h.obs.snapshot())
			}
			if d := dead[0]; d.ID != id || d.Attempts != c.attempts || d.LastStatus != c.status || d.Status != StatusFailed {
				t.Fatalf("dead letter %+v, want %d attempts ending in %d", d, c.attempts, c.status)
			}
			if n := len(rc.got()); n != c.attempts {
				t.Fatalf("receiver saw %d attempts, want %d", n, c.attempts)
			}
			// The outcome is recorded first, then counted and logged.
			want := fmt.Sprintf("attempts=%d delivered=0 retried=%d failed=1 dropped=map[]", c.attempts, c.attempts-1)
			if !polltest.Until(10*time.Second, func() bool { return strings.Contains(h.log.String(), id) }) || h.obs.snapshot() != want {
				t.Errorf("observer %s, want %s", h.obs.snapshot(), want)
			}
			if !strings.Contains(h.log.String(), "webhook delivery failed for good") {
				t.Errorf("the dead letter was not logged: %s", h.log.String())
			}
		})
	}
}

// TestNetworkErrorsRetriedWithoutAddresses: a refused connection is retried
// and recorded as "connection refused", without the address.
func TestNetworkErrorsRetriedWithoutAddresses(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	dead := srv.URL
	srv.Close()
	h := newHarness(t, DelivererOptions{MaxAttempts: 2, BaseDelay: time.Second})
	id, _ := h.d.Send(context.Background(), Target{URL: dead, Secret: "0123456789abcdef", JobID: "job_1"}, EventBatchFailed, nil)
	rec := h.settled(t, id, 1)
	if rec.LastError != "connection refused" || rec.LastStatus != 0 {
		t.Fatalf("after a refused connection: %+v", rec)
	}
	u, _ := url.Parse(dead)
	if strings.Contains(rec.LastError, u.Hostname()) {
		t.Fatalf("last_error %q shows an address", rec.LastError)
	}
}

func TestDescribeFailureShowsNoAddresses(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&net.DNSError{Err: "no such host", Name: "nope.example", Server: "10.0.0.2:53", IsNotFound: true}, "the host name does not resolve"},
		{fmt.Errorf("webhook: resolving %q: %w", "x.example", &net.DNSError{Err: "i/o timeout", Name: "x.example", Server: "10.0.0.2:53", IsTimeout: true}), "the host name lookup timed out"},
		{fmt.Errorf("%w: refusing to connect to 10.1.2.3", ErrForbiddenAddress), "the address is not allowed (private, loopback or reserved)"},
		{context.DeadlineExceeded, "timed out"},
		{errors.New("dial tcp 192.168.7.7:443: something odd"), "the request failed"},
	} {
		got := describeFailure(0, c.err)
		if got != c.want {
			t.Errorf("describeFailure(%v) = %q, want %q", c.err, got, c.want)
		}
		if strings.ContainsAny(got, "0123456789") {
			t.Errorf("describeFailure(%v) = %q shows digits", c.err, got)
		}
	}
	if got := describeFailure(503, nil); got != "HTTP 503" {
		t.Errorf("describeFailure(503) = %q", got)
	}
}

func TestDialTimeGuardDefeatsRebinding(t *testing.T) {
	rc := newReceiver(t)
	u, _ := url.Parse(rc.srv.URL)
	// rebind.example is public when registered, loopback when dialled.
	res := &staticResolver{answers: map[string][][]netip.Addr{
		"rebind.example": {addrs("93.184.216.34"), addrs("127.0.0.1")},
	}}
	h := newHarness(t, DelivererOptions{Guard: Guard{Resolver: res}, MaxAttempts: 3})
	ep, _, err := h.reg.Register(context.Background(), "http://rebind.example:"+u.Port()+"/hook", []string{EventBatchCompleted}, "0123456789abcdef")
	if err != nil {
		t.Fatalf("registration saw a public address and must pass: %v", err)
	}
	if _, err := h.d.Publish(context.Background(), EventBatchCompleted, nil); err != nil {
		t.Fatal(err)
	}
	var dead []Delivery
	if !polltest.Until(10*time.Second, func() bool { dead, _ = h.d.DeadLetters(context.Background(), ep.ID, 10); return len(dead) == 1 }) {
		t.Fatalf("no dead letter for the rebinding endpoint; observer %s", h.obs.snapshot())
	}
	if d := dead[0]; d.Attempts != 1 || !strings.Contains(d.LastError, "not allowed") || strings.Contains(d.LastError, "127.0.0.1") {
		t.Fatalf("dead letter %+v: a refused address is final, and its error names no address", d)
	}
	if n := len(rc.got()); n != 0 {
		t.Fatalf("the loopback receiver got %d requests", n)
	}
	// A literal private URL that skipped the check at submission is
	// refused at connect time too.
	if _, err := h.d.Send(context.Background(), Target{URL: rc.srv.URL, Secret: "0123456789abcdef", JobID: "job_x"}, EventBatchFailed, nil); err != nil {
		t.Fatal(err)
	}
	if !polltest.Until(10*time.Second, func() bool { dead, _ = h.d.DeadLetters(context.Background(), "job_x", 10); return len(dead) == 1 }) || len(rc.got()) != 0 {
		t.Fatalf("literal loopback URL: dead letters %+v, %d requests", dead, len(rc.got()))
	}
}

func TestQueueIsBoundedAndDropsAreCounted(t *testing.T) {
	h := newHarness(t, DelivererOptions{QueueSize: 2, NoDispatch: true})
	target := Target{URL: "http://127.0.0.1:9/", Secret: "0123456789abcdef"}
	for i := range 2 {
		if _, err := h.d.Send(context.Background(), target, EventBatchCompleted, i); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.d.Send(context.Background(), target, EventBatchCompleted, 3); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Send beyond QueueSize = %v, want ErrQueueFull", err)
	}
	if st, _ := h.reg.Stats(context.Background()); st.Totals.Dropped != 1 {
		t.Errorf("totals %+v, want 1 dropped", st.Totals)
	}
	if h.obs.snapshot() != "attempts=0 delivered=0 retried=0 failed=0 dropped=map[queue_full:1]" {
		t.Errorf("observer %s", h.obs.snapshot())
	}
	if !strings.Contains(h.log.String(), `"reason":"queue_full"`) {
		t.Errorf("the drop was not logged with its reason: %s", h.log.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := h.d.Send(context.Background(), target, EventBatchCompleted, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close = %v, want ErrClosed", err)
	}
}

// TestStableDeliveryIDs: the same event prepared twice gives the same IDs,
// one per target, and recording it twice records each delivery once.
func TestStableDeliveryIDs(t *testing.T) {
	h := newHarness(t, DelivererOptions{NoDispatch: true})
	for _, u := range []string{"https://a.example/", "https://b.example/"} {
		if _, _, err := h.reg.Register(context.Background(), u, []string{EventBatchCompleted}, ""); err != nil {
			t.Fatal(err)
		}
	}
	ev := Event{ID: "evt_job_1", Name: EventBatchCompleted, At: t0, Data: map[string]int{"n": 1}}
	own := Target{URL: "https://own.example/", Secret: "0123456789abcdef", JobID: "job_1"}
	first, err := h.d.Prepare(context.Background(), ev, own)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := h.d.Prepare(context.Background(), ev, own)
	if len(first) != 3 || ids(first) != ids(again) {
		t.Fatalf("prepared %s then %s: want the same 3 ids", ids(first), ids(again))
	}
	seen := map[string]bool{}
	for _, d := range first {
		seen[d.ID] = true
	}
	if len(seen) != 3 {
		t.Fatalf("ids %s are not distinct per target", ids(first))
	}
	if err := h.d.Enqueue(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	if err := h.d.Enqueue(context.Background(), again); err != nil {
		t.Fatal(err)
	}
	if q, _ := h.d.QueueStats(context.Background()); q.Pending != 3 {
		t.Fatalf("%d pending after recording the event twice, want 3", q.Pending)
	}
}

func ids(ds []Delivery) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.ID + " ")
	}
	return b.String()
}

// TestEndpointDeletedBeforeSending: its pending delivery is dropped and
// counted, not sent.
func TestEndpointDeletedBeforeSending(t *testing.T) {
	rc := newReceiver(t)
	h := newHarness(t, DelivererOptions{NoDispatch: true})
	ep, _, _ := h.reg.Register(context.Background(), rc.srv.URL, []string{EventBatchFailed}, "")
	if n, err := h.d.Publish(context.Background(), EventBatchFailed, nil); n != 1 || err != nil {
		t.Fatalf("Publish = %d, %v", n, err)
	}
	if err := h.reg.Delete(context.Background(), ep.ID); err != nil {
		t.Fatal(err)
	}
	sender := NewDeliverer(h.reg, DelivererOptions{Guard: Guard{AllowPrivate: true}, Observer: h.obs, Now: h.clock.Now, PollInterval: 5 * time.Millisecond})
	closeDeliverer(t, sender)
	if !polltest.Until(10*time.Second, func() bool { return strings.Contains(h.obs.snapshot(), "endpoint_deleted:1") }) {
		t.Fatalf("observer %s", h.obs.snapshot())
	}
	if len(rc.got()) != 0 {
		t.Fatal("a deleted endpoint received a delivery")
	}
}

// TestCloseDrainsDueDeliveriesOfAMemoryStore: what is due is attempted
// before Close returns; a retry scheduled later is lost, counted and logged.
func TestCloseDrainsDueDeliveriesOfAMemoryStore(t *testing.T) {
	rc := newReceiver(t, 503)
	h := newHarness(t, DelivererOptions{BaseDelay: time.Hour, MaxDelay: time.Hour})
	retried, _ := h.d.Send(context.Background(), Target{URL: rc.srv.URL + "/a", Secret: "0123456789abcdef"}, EventBatchCompleted, 1)
	h.settled(t, retried, 1)
	if _, err := h.d.Send(context.Background(), Target{URL: rc.srv.URL + "/b", Secret: "0123456789abcdef"}, EventBatchCompleted, 2); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(rc.got()); n != 2 {
		t.Fatalf("%d requests by the end of Close, want 2 (the due one was sent)", n)
	}
	if !strings.Contains(h.obs.snapshot(), "shutdown:1") || !strings.Contains(h.log.String(), "lost at shutdown") {
		t.Fatalf("the lost retry was not counted and logged: %s / %s", h.obs.snapshot(), h.log.String())
	}
	if err := h.d.Close(ctx); err != nil || !strings.Contains(h.obs.snapshot(), "shutdown:1]") {
		t.Fatalf("closing again: %v, observer %s: the loss is counted once", err, h.obs.snapshot())
	}
}
