package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// ErrQueueFull is returned by Send and Publish when the delivery queue is
// full; the delivery is dropped and counted.
var ErrQueueFull = errors.New("webhook: delivery queue full")

// ErrClosed is returned by Send and Publish after Close.
var ErrClosed = errors.New("webhook: deliverer closed")

// Target is where one delivery goes.
type Target struct {
	URL    string
	Secret string
	// EndpointID names the registered endpoint, for statistics; empty for
	// a per-job webhook URL.
	EndpointID string
}

// Message is one event ready to deliver: its body is fixed, so every retry
// sends (and signs) the same bytes under the same ID.
type Message struct {
	ID        string
	Event     string
	CreatedAt time.Time
	Body      []byte
}

// envelope is the JSON body of a delivery.
type envelope struct {
	ID        string    `json:"id"`
	Event     string    `json:"event"`
	CreatedAt time.Time `json:"created_at"`
	Data      any       `json:"data"`
}

// NewMessage builds the body {"id","event","created_at","data"} with a fresh
// delivery ID. created_at is inside the signed body, so receivers can
// reject replays of old deliveries.
func NewMessage(event string, data any, now time.Time) (Message, error) {
	m := Message{ID: "evt_" + randomHex(16), Event: event, CreatedAt: now.UTC()}
	body, err := json.Marshal(envelope{ID: m.ID, Event: event, CreatedAt: m.CreatedAt, Data: data})
	if err != nil {
		return Message{}, fmt.Errorf("webhook: encoding %s event: %w", event, err)
	}
	m.Body = body
	return m, nil
}

// DelivererOptions configure a Deliverer. Zero values take the defaults in
// brackets.
type DelivererOptions struct {
	Guard       Guard         // SSRF policy enforced at connect time
	MaxAttempts int           // attempts per delivery, first included [5]
	BaseDelay   time.Duration // backoff before the 2nd attempt, doubling [500ms]
	MaxDelay    time.Duration // backoff cap, also caps Retry-After [30s]
	Timeout     time.Duration // per attempt, connect to body read [10s]
	QueueSize   int           // pending deliveries [1000]
	Workers     int           // concurrent deliveries [4]
	Now         func() time.Time
}

// Deliverer sends webhook messages from a bounded queue with a fixed number
// of workers. Safe for concurrent use.
type Deliverer struct {
	reg    *Registry
	opts   DelivererOptions
	client *http.Client

	baseCtx context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu     sync.RWMutex // guards closed against sends on queue
	closed bool
	queue  chan job
}

// job is one queued delivery.
type job struct {
	target Target
	msg    Message
}

// maxResponseBytes bounds how much of a receiver's answer is read (to reuse
// the connection) before it is closed.
const maxResponseBytes = 64 << 10

// NewDeliverer starts the delivery workers. Statistics are recorded in reg;
// a nil reg gets a private empty registry. Call Close to stop.
func NewDeliverer(reg *Registry, opts DelivererOptions) *Deliverer {
	if reg == nil {
		reg = NewRegistry(RegistryOptions{Guard: opts.Guard})
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.BaseDelay <= 0 {
		opts.BaseDelay = 500 * time.Millisecond
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 30 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1000
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := &Deliverer{reg: reg, opts: opts, queue: make(chan job, opts.QueueSize)}
	d.client = &http.Client{
		Transport: d.transport(),
		Timeout:   opts.Timeout,
		// A redirect could point anywhere; the guard would stop private
		// targets, but receivers have no reason to redirect, so don't.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	d.baseCtx, d.cancel = context.WithCancel(context.Background())
	for i := 0; i < opts.Workers; i++ {
		d.wg.Add(1)
		go d.work()
	}
	return d
}

// transport dials through the guard: names are resolved here, and every
// resolved address is checked again by the dialer's Control function.
// Proxies are not used: a proxy would connect on our behalf, unchecked.
func (d *Deliverer) transport() *http.Transport {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: d.opts.Guard.Control}
	var resolver Resolver = net.DefaultResolver
	if d.opts.Guard.Resolver != nil {
		resolver = d.opts.Guard.Resolver
	}
	dial := func(ctx context.Context, network, address string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(address)
		if err != nil {
			return nil, fmt.Errorf("webhook: dial %q: %w", address, err)
		}
		var addrs []netip.Addr
		if a, err := netip.ParseAddr(host); err == nil {
			addrs = []netip.Addr{a}
		} else if addrs, err = resolver.LookupNetIP(ctx, "ip", host); err != nil {
			return nil, fmt.Errorf("webhook: resolving %q: %w", host, err)
		}
		var lastErr error = fmt.Errorf("webhook: %q has no addresses", host)
		for _, a := range addrs {
			conn, err := dialer.DialContext(ctx, network, net.JoinHostPort(a.Unmap().String(), port))
			if err == nil {
				return conn, nil
			}
			lastErr = err
			if errors.Is(err, ErrForbiddenAddress) {
				break // one forbidden address condemns the name
			}
		}
		return nil, lastErr
	}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dial,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: d.opts.Timeout,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       60 * time.Second,
	}
}

// CheckURL applies the deliverer's SSRF policy to a URL (used to validate a
// per-job webhook URL when the job is submitted).
func (d *Deliverer) CheckURL(ctx context.Context, raw string) error {
	_, err := d.opts.Guard.CheckURL(ctx, raw)
	return err
}

// Send queues one delivery of event with data to target without blocking.
// It returns the delivery ID.
func (d *Deliverer) Send(target Target, event string, data any) (string, error) {
	if _, err := parseWebhookURL(target.URL); err != nil {
		return "", err
	}
	msg, err := NewMessage(event, data, d.opts.Now())
	if err != nil {
		return "", err
	}
	return msg.ID, d.enqueue(job{target: target, msg: msg})
}

// Publish queues a delivery of event to every registered endpoint subscribed
// to it and returns how many were queued. Each endpoint gets its own
// delivery ID.
func (d *Deliverer) Publish(event string, data any) (int, error) {
	n := 0
	for _, t := range d.reg.subscribers(event) {
		if _, err := d.Send(t, event, data); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func (d *Deliverer) enqueue(j job) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return ErrClosed
	}
	select {
	case d.queue <- j:
		return nil
	default:
		d.reg.recordDropped()
		return fmt.Errorf("%w: %d pending", ErrQueueFull, cap(d.queue))
	}
}

func (d *Deliverer) work() {
	defer d.wg.Done()
	for j := range d.queue {
		_ = d.Deliver(d.baseCtx, j.target, j.msg)
	}
}

// Close stops accepting deliveries and waits for queued ones to finish.
// When ctx ends first, in-flight deliveries are abandoned and ctx's error
// is returned.
func (d *Deliverer) Close(ctx context.Context) error {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		close(d.queue)
	}
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		d.cancel()
		return nil
	case <-ctx.Done():
		d.cancel()
		<-done
		return fmt.Errorf("webhook: closing deliverer: %w", ctx.Err())
	}
}

// AttemptError describes why a delivery failed for good.
type AttemptError struct {
	Attempts int
	Status   int   // last HTTP status, 0 if none
	Err      error // last transport error, nil if an HTTP answer came
}

func (e *AttemptError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("webhook: delivery failed after %d attempt(s): %v", e.Attempts, e.Err)
	}
	return fmt.Sprintf("webhook: delivery failed after %d attempt(s): HTTP %d", e.Attempts, e.Status)
}

func (e *AttemptError) Unwrap() error { return e.Err }

// Deliver sends msg to target now, retrying with backoff, and returns nil
// once a 2xx answer came. It records statistics in the registry.
func (d *Deliverer) Deliver(ctx context.Context, target Target, msg Message) error {
	sig := Sign([]byte(target.Secret), msg.Body)
	var last AttemptError
	for attempt := 1; attempt <= d.opts.MaxAttempts; attempt++ {
		status, retryAfter, err := d.attempt(ctx, target, msg, sig)
		d.reg.recordAttempt(target.EndpointID, status, err, d.opts.Now())
		last = AttemptError{Attempts: attempt, Status: status, Err: err}
		if err == nil && status >= 200 && status < 300 {
			d.reg.recordOutcome(target.EndpointID, true)
			return nil
		}
		if !retryable(status, err) || attempt == d.opts.MaxAttempts {
			break
		}
		wait := d.backoff(attempt, retryAfter)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			last.Err = fmt.Errorf("giving up while waiting to retry: %w", ctx.Err())
			d.reg.recordOutcome(target.EndpointID, false)
			return &last
		case <-timer.C:
		}
	}
	d.reg.recordOutcome(target.EndpointID, false)
	return &last
}

// attempt makes one POST and returns the status (0 on transport error) and
// any Retry-After the receiver asked for.
func (d *Deliverer) attempt(ctx context.Context, target Target, msg Message, sig string) (int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.URL, bytes.NewReader(msg.Body))
	if err != nil {
		return 0, 0, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "contentguard-webhook/1")
	ts := strconv.FormatInt(d.opts.Now().Unix(), 10)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignatureV2, SignTimestamped([]byte(target.Secret), ts, msg.Body))
	req.Header.Set(HeaderSignature, sig)
	req.Header.Set(HeaderEvent, msg.Event)
	req.Header.Set(HeaderID, msg.ID)
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
	_ = resp.Body.Close()
	return resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After")), nil
}

// retryable: transport errors (except an SSRF refusal, which will not
// change), 408 Request Timeout, 429 Too Many Requests and 5xx.
func retryable(status int, err error) bool {
	if err != nil {
		return !errors.Is(err, ErrForbiddenAddress)
	}
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// backoff returns the wait after the n-th failed attempt: "full jitter",
// uniform in [0, min(MaxDelay, BaseDelay·2^(n-1))], which spreads retries of
// many failed deliveries instead of synchronising them. A Retry-After from
// the receiver raises the wait to at least that, capped at MaxDelay.
func (d *Deliverer) backoff(n int, retryAfter time.Duration) time.Duration {
	ceiling := d.opts.MaxDelay
	if shift := n - 1; shift < 32 {
		if c := d.opts.BaseDelay << shift; c > 0 && c < ceiling {
			ceiling = c
		}
	}
	wait := time.Duration(rand.Int64N(int64(ceiling) + 1))
	if retryAfter > wait {
		wait = retryAfter
		if wait > d.opts.MaxDelay {
			wait = d.opts.MaxDelay
		}
	}
	return wait
}

// parseRetryAfter reads delay-seconds; the HTTP-date form is ignored.
func parseRetryAfter(v string) time.Duration {
	secs, err := strconv.Atoi(v)
	if err != nil || secs < 0 {
		return 0
	}
	if secs > 3600 {
		secs = 3600
	}
	return time.Duration(secs) * time.Second
}
