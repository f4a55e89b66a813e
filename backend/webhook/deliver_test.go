package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/contentguard/contentguard/internal/polltest"
)

// receiver is a real HTTP server that records deliveries and answers with
// the scripted statuses in turn (200 once the script runs out).
type receiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	script   []int
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

// fastOptions: loopback receivers allowed, tiny backoff.
func fastOptions() DelivererOptions {
	return DelivererOptions{Guard: Guard{AllowPrivate: true}, MaxAttempts: 4, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond, Timeout: 5 * time.Second}
}

func TestDeliverySignedAndVerifiedByReceiver(t *testing.T) {
	const secret = "receiver-shared-secret"
	type verdict struct {
		ok      bool
		event   string
		id      string
		ts      int64
		payload map[string]any
	}
	verdicts := make(chan verdict, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		v := verdict{
			ok:    VerifyRequest([]byte(secret), body, r.Header, time.Now(), DefaultTolerance) == nil && Verify([]byte(secret), body, r.Header.Get(HeaderSignature)),
			event: r.Header.Get(HeaderEvent), id: r.Header.Get(HeaderID),
		}
		v.ts, _ = strconv.ParseInt(r.Header.Get(HeaderTimestamp), 10, 64)
		_ = json.Unmarshal(body, &v.payload)
		if !v.ok {
			w.WriteHeader(http.StatusUnauthorized)
		}
		verdicts <- v
	}))
	defer srv.Close()

	reg := NewRegistry(RegistryOptions{Guard: Guard{AllowPrivate: true}})
	d := NewDeliverer(reg, fastOptions())
	closeDeliverer(t, d)
	ep, _, err := reg.Register(context.Background(), srv.URL+"/hook", []string{EventBatchCompleted}, secret)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().Unix()
	n, err := d.Publish(EventBatchCompleted, map[string]any{"job": "job_1", "total": 3})
	if err != nil || n != 1 {
		t.Fatalf("Publish = %d, %v; want 1 delivery", n, err)
	}
	if n, _ := d.Publish(EventAnalysisCompleted, nil); n != 0 {
		t.Fatalf("endpoint not subscribed to analysis_completed got %d deliveries", n)
	}
	v := <-verdicts
	if !v.ok {
		t.Fatal("receiver could not verify the signature")
	}
	if v.event != EventBatchCompleted || v.payload["event"] != EventBatchCompleted {
		t.Errorf("event header %q / body %v, want batch_completed", v.event, v.payload["event"])
	}
	if v.id == "" || v.payload["id"] != v.id {
		t.Errorf("X-Webhook-Id %q must equal body id %v", v.id, v.payload["id"])
	}
	if v.ts < before || v.ts > time.Now().Unix() {
		t.Errorf("X-Webhook-Timestamp %d not the time of sending", v.ts)
	}
	if data, _ := v.payload["data"].(map[string]any); data["job"] != "job_1" {
		t.Errorf("data = %v", v.payload["data"])
	}
	if !polltest.Until(10*time.Second, func() bool { return reg.Stats().Totals.Succeeded == 1 }) {
		t.Fatalf("stats totals = %+v, want 1 succeeded", reg.Stats().Totals)
	}
	st := reg.Stats().Endpoints[0]
	if st.ID != ep.ID || st.Attempts != 1 || st.Succeeded != 1 || st.LastStatus != 200 || st.LastAttemptAt == nil {
		t.Errorf("stats = %+v", st)
	}
}

func TestDeliveryRetriesWithStableID(t *testing.T) {
	rc := newReceiver(t, 503, 429, 408, 200)
	reg := NewRegistry(RegistryOptions{})
	opts := fastOptions()
	opts.MaxAttempts = 5
	d := NewDeliverer(reg, opts)
	closeDeliverer(t, d)
	msg, err := NewMessage(EventQualityCompleted, map[string]int{"n": 1}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Deliver(context.Background(), Target{URL: rc.srv.URL, Secret: "0123456789abcdef"}, msg); err != nil {
		t.Fatalf("Deliver = %v, want success on the 4th attempt", err)
	}
	got := rc.got()
	if len(got) != 4 {
		t.Fatalf("%d attempts, want 4 (503, 429 and 408 are retried)", len(got))
	}
	for i, r := range got {
		if r.header.Get(HeaderID) != msg.ID || string(r.body) != string(msg.Body) || !Verify([]byte("0123456789abcdef"), r.body, r.header.Get(HeaderSignature)) {
			t.Errorf("attempt %d: id %q body %q: every retry must resend the same signed delivery", i+1, r.header.Get(HeaderID), r.body)
		}
	}
	if tot := reg.Stats().Totals; tot.Attempts != 4 || tot.Succeeded != 1 || tot.Failed != 0 {
		t.Errorf("totals = %+v", tot)
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
			reg := NewRegistry(RegistryOptions{})
			d := NewDeliverer(reg, fastOptions())
			closeDeliverer(t, d)
			msg, _ := NewMessage(EventBatchFailed, nil, time.Now())
			err := d.Deliver(context.Background(), Target{URL: rc.srv.URL, Secret: "0123456789abcdef"}, msg)
			var ae *AttemptError
			if !errors.As(err, &ae) || ae.Attempts != c.attempts || ae.Status != c.status {
				t.Fatalf("Deliver = %v, want AttemptError after %d attempts with status %d", err, c.attempts, c.status)
			}
			if n := len(rc.got()); n != c.attempts {
				t.Fatalf("receiver saw %d attempts, want %d", n, c.attempts)
			}
			if tot := reg.Stats().Totals; tot.Failed != 1 || tot.Succeeded != 0 {
				t.Errorf("totals = %+v", tot)
			}
		})
	}
}

func TestDeliveryRetriesNetworkErrors(t *testing.T) {
	// A port nobody listens on: take one from a server and close it.
	srv := httptest.NewServer(http.NotFoundHandler())
	dead := srv.URL
	srv.Close()
	d := NewDeliverer(nil, fastOptions())
	closeDeliverer(t, d)
	msg, _ := NewMessage(EventBatchFailed, nil, time.Now())
	err := d.Deliver(context.Background(), Target{URL: dead, Secret: "0123456789abcdef"}, msg)
	var ae *AttemptError
	if !errors.As(err, &ae) || ae.Attempts != 4 || ae.Err == nil {
		t.Fatalf("Deliver = %v, want 4 failed connection attempts", err)
	}
}

func TestBackoffFullJitterBounds(t *testing.T) {
	d := &Deliverer{opts: DelivererOptions{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}}
	for n := 1; n <= 40; n++ {
		ceiling := time.Second
		if n <= 4 {
			ceiling = 100 * time.Millisecond << (n - 1)
		}
		var sawLow bool
		for i := 0; i < 200; i++ {
			w := d.backoff(n, 0)
			if w < 0 || w > ceiling {
				t.Fatalf("backoff(%d) = %v, outside [0, %v]", n, w, ceiling)
			}
			if w < ceiling/2 {
				sawLow = true
			}
		}
		if !sawLow {
			t.Fatalf("backoff(%d) never below half the ceiling in 200 draws: not full jitter", n)
		}
	}
	if w := d.backoff(1, 700*time.Millisecond); w < 700*time.Millisecond {
		t.Errorf("Retry-After 700ms ignored: %v", w)
	}
	if w := d.backoff(1, time.Hour); w != time.Second {
		t.Errorf("Retry-After must be capped at MaxDelay, got %v", w)
	}
}

func TestDialTimeGuardDefeatsRebinding(t *testing.T) {
	rc := newReceiver(t)
	u, _ := url.Parse(rc.srv.URL)
	// rebind.example is public when registered, loopback when dialled.
	res := &staticResolver{answers: map[string][][]netip.Addr{
		"rebind.example": {addrs("93.184.216.34"), addrs("127.0.0.1")},
	}}
	guard := Guard{Resolver: res}
	reg := NewRegistry(RegistryOptions{Guard: guard})
	ep, _, err := reg.Register(context.Background(), "http://rebind.example:"+u.Port()+"/hook", []string{EventBatchCompleted}, "0123456789abcdef")
	if err != nil {
		t.Fatalf("registration saw a public address and must pass: %v", err)
	}
	d := NewDeliverer(reg, DelivererOptions{Guard: guard, MaxAttempts: 3, BaseDelay: time.Millisecond})
	closeDeliverer(t, d)
	msg, _ := NewMessage(EventBatchCompleted, nil, time.Now())
	err = d.Deliver(context.Background(), Target{URL: ep.URL, Secret: "0123456789abcdef", EndpointID: ep.ID}, msg)
	if !errors.Is(err, ErrForbiddenAddress) {
		t.Fatalf("Deliver = %v, want ErrForbiddenAddress from the dialer", err)
	}
	var ae *AttemptError
	if errors.As(err, &ae) && ae.Attempts != 1 {
		t.Errorf("a refused address is not retried; got %d attempts", ae.Attempts)
	}
	if n := len(rc.got()); n != 0 {
		t.Fatalf("the loopback receiver got %d requests", n)
	}
	// A literal private URL that skipped registration is refused too.
	err = d.Deliver(context.Background(), Target{URL: rc.srv.URL, Secret: "0123456789abcdef"}, msg)
	if !errors.Is(err, ErrForbiddenAddress) || len(rc.got()) != 0 {
		t.Fatalf("Deliver(%s) = %v with %d requests, want refusal", rc.srv.URL, err, len(rc.got()))
	}
}

func TestSendQueueIsBounded(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer once.Do(func() { close(release) })
	reg := NewRegistry(RegistryOptions{})
	opts := fastOptions()
	opts.Workers, opts.QueueSize = 1, 1
	d := NewDeliverer(reg, opts)
	target := Target{URL: srv.URL, Secret: "0123456789abcdef"}
	if _, err := d.Send(target, EventBatchCompleted, 1); err != nil {
		t.Fatal(err)
	}
	// The worker takes the first delivery and blocks; one more fits in the
	// queue; then the queue is full.
	var err error
	for i := 0; i < 3 && err == nil; i++ {
		_, err = d.Send(target, EventBatchCompleted, i)
	}
	if !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Send = %v, want ErrQueueFull", err)
	}
	if reg.Stats().Totals.Dropped == 0 {
		t.Error("dropped delivery not counted")
	}
	once.Do(func() { close(release) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Send(target, EventBatchCompleted, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close = %v, want ErrClosed", err)
	}
}
