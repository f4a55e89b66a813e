package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/contentguard/contentguard/backend/internal/backoff"
)

// Target is where one delivery goes.
type Target struct {
	URL    string
	Secret string
	// EndpointID names the registered endpoint; its URL and secret are
	// read from the store when the delivery is sent. Empty for a per-job
	// webhook URL, which carries its own URL and Secret.
	EndpointID string
	// JobID names the job whose own webhook URL this is, if any: the
	// job's dead letters are listed under it.
	JobID string
}

// Observer receives delivery metrics events (package webhookmetrics turns
// them into Prometheus metrics). Methods must be cheap and safe for
// concurrent use.
type Observer interface {
	// Attempted counts one HTTP attempt; status is 0 without an answer.
	Attempted(status int)
	// Delivered counts a delivery acknowledged with 2xx, latency after its
	// event was recorded.
	Delivered(latency time.Duration)
	// Retried counts a failed attempt rescheduled for later.
	Retried()
	// Failed counts a delivery failed for good (a new dead letter).
	Failed()
	// Dropped counts n deliveries never sent, for reason (Drop*).
	Dropped(reason string, n int)
}

// DelivererOptions configure a Deliverer. Zero values take the defaults in
// brackets.
type DelivererOptions struct {
	Guard       Guard         // SSRF policy enforced at connect time
	MaxAttempts int           // attempts per delivery, first included [5]
	BaseDelay   time.Duration // backoff ceiling before the 2nd attempt, doubling [500ms]
	MaxDelay    time.Duration // backoff cap, also caps Retry-After [30s]
	Timeout     time.Duration // per attempt, connect to body read [10s]
	// QueueSize bounds the pending deliveries in the store, over every
	// process sharing it; beyond it new deliveries are dropped, logged
	// and counted [10000].
	QueueSize int
	// Workers is how many attempts this process makes at once [16].
	Workers int
	// Lease hides a delivery being attempted from other processes; if
	// its process dies, another one attempts it again after this long
	// [Timeout + max(Timeout, 5s): 20s].
	Lease time.Duration
	// PollInterval is how often the store is asked for due deliveries
	// when none was recorded by this process meanwhile [200ms].
	PollInterval time.Duration
	// NoDispatch records deliveries without sending any from this process
	// (other processes sharing the store send them).
	NoDispatch bool
	// OmitBodySignature stops sending the deprecated body-only
	// X-Webhook-Signature; X-Webhook-Signature-V2 is always sent.
	OmitBodySignature bool
	Observer          Observer     // metrics; nil means none
	Logger            *slog.Logger // drops and dead letters [discarded]
	Now               func() time.Time
}

// Deliverer records webhook deliveries in the registry's Store and sends
// them: a dispatcher claims due deliveries, attempts each once with a
// bounded number of workers, and records the outcome; a failed attempt is
// rescheduled in the store (exponential backoff, full jitter), never slept
// on. With a shared store, any process may send any delivery, and one that
// dies mid-attempt only delays it by the Lease. Safe for concurrent use.
type Deliverer struct {
	reg     *Registry
	store   Store
	opts    DelivererOptions
	client  *http.Client
	backoff backoff.FullJitter

	wake     chan struct{} // a delivery was recorded or a slot freed
	stop     chan struct{} // closed by Close: claim no more
	loopDone chan struct{}
	sendCtx  context.Context // cancelled when Close gives up on attempts
	cancel   context.CancelFunc

	mu     sync.RWMutex
	closed bool

	observer atomic.Pointer[observerBox] // opts.Observer, or the one given to Observe

	pendingMu   sync.Mutex
	pendingRead QueueStats // the last reading for Saturated
	pendingAt   time.Time
}

// maxResponseBytes bounds how much of a receiver's answer is read (to reuse
// the connection) before it is closed.
const maxResponseBytes = 64 << 10

// NewDeliverer starts sending the deliveries recorded in reg's store (unless
// opts.NoDispatch); a nil reg gets a private registry with a MemoryStore.
// Call Close to stop.
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
	if opts.MaxDelay < opts.BaseDelay {
		opts.MaxDelay = max(30*time.Second, opts.BaseDelay)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 10000
	}
	if opts.Workers <= 0 {
		opts.Workers = 16
	}
	if opts.Lease <= 0 {
		opts.Lease = opts.Timeout + max(opts.Timeout, 5*time.Second)
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 200 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := &Deliverer{
		reg: reg, store: reg.store, opts: opts,
		backoff:  backoff.FullJitter{Base: opts.BaseDelay, Cap: opts.MaxDelay},
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	d.Observe(opts.Observer)
	d.client = &http.Client{
		Transport: d.transport(),
		Timeout:   opts.Timeout,
		// A redirect could point anywhere; the guard would stop private
		// targets, but receivers have no reason to redirect, so don't.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	d.sendCtx, d.cancel = context.WithCancel(context.Background())
	if opts.NoDispatch {
		close(d.loopDone)
	} else {
		go d.dispatch()
	}
	return d
}

// Observe makes o the deliverer's observer unless it has one already
// (api.Server.MountWebhooks gives its metrics to a deliverer built
// without).
func (d *Deliverer) Observe(o Observer) {
	if o != nil {
		d.observer.CompareAndSwap(nil, &observerBox{o})
	}
}

// observerBox holds an Observer for atomic.Pointer.
type observerBox struct{ Observer }

// observerNow returns the observer, or nil.
func (d *Deliverer) observerNow() Observer {
	if b := d.observer.Load(); b != nil {
		return b.Observer
	}
	return nil
}

// Store returns the store deliveries are recorded in.
func (d *Deliverer) Store() Store { return d.store }

// QueueSize returns the bound on pending deliveries.
func (d *Deliverer) QueueSize() int { return d.opts.QueueSize }

// CheckURL applies the deliverer's SSRF policy to a URL (used to validate a
// per-job webhook URL when the job is submitted).
func (d *Deliverer) CheckURL(ctx context.Context, raw string) error {
	_, err := d.opts.Guard.CheckURL(ctx, raw)
	return err
}

// Prepare builds the deliveries of ev: one to each of own (a job's own
// webhook URL) and one to each registered endpoint subscribed to ev.Name.
// Record them with Enqueue, or inside a store transaction followed by
// Recorded.
func (d *Deliverer) Prepare(ctx context.Context, ev Event, own ...Target) ([]Delivery, error) {
	subs, err := d.reg.subscribers(ctx, ev.Name)
	if err != nil {
		return nil, err
	}
	if ev.At.IsZero() {
		ev.At = d.opts.Now()
	}
	return newDeliveries(ev, append(own, subs...))
}

// Enqueue records deliveries in the store. Those beyond QueueSize are
// dropped (logged, counted) and ErrQueueFull is returned.
func (d *Deliverer) Enqueue(ctx context.Context, ds []Delivery) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return ErrClosed
	}
	if len(ds) == 0 {
		return nil
	}
	res, err := d.store.Enqueue(ctx, ds, d.opts.QueueSize)
	if err != nil {
		return fmt.Errorf("webhook: recording %d %s deliveries: %w", len(ds), ds[0].Event, err)
	}
	return d.Recorded(ctx, res, ds)
}

// Recorded reports deliveries that were recorded (by Enqueue or by a
// caller's store transaction): it logs and counts drops, returning
// ErrQueueFull if there were any, and wakes the dispatcher.
func (d *Deliverer) Recorded(ctx context.Context, res EnqueueResult, ds []Delivery) error {
	if res.Added > 0 {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
	if res.Dropped == 0 {
		return nil
	}
	if o := d.observerNow(); o != nil {
		o.Dropped(DropQueueFull, res.Dropped)
	}
	event := ""
	if len(ds) > 0 {
		event = ds[0].Event
	}
	d.opts.Logger.WarnContext(ctx, "webhook deliveries dropped: queue full",
		"reason", DropQueueFull, "event", event, "dropped", res.Dropped, "queue_size", d.opts.QueueSize)
	return fmt.Errorf("%w: %d of %d deliveries dropped (%d pending at most)", ErrQueueFull, res.Dropped, len(ds), d.opts.QueueSize)
}

// Publish records a delivery of event with data to every registered
// endpoint subscribed to it and returns how many were recorded.
func (d *Deliverer) Publish(ctx context.Context, event string, data any) (int, error) {
	ds, err := d.Prepare(ctx, Event{ID: NewEventID(), Name: event, Data: data})
	if err != nil {
		return 0, err
	}
	if err := d.Enqueue(ctx, ds); err != nil {
		return 0, err
	}
	return len(ds), nil
}

// Send records one delivery of event with data to target and returns its
// ID.
func (d *Deliverer) Send(ctx context.Context, target Target, event string, data any) (string, error) {
	ds, err := newDeliveries(Event{ID: NewEventID(), Name: event, At: d.opts.Now(), Data: data}, []Target{target})
	if err != nil {
		return "", err
	}
	return ds[0].ID, d.Enqueue(ctx, ds)
}

// DeadLetters lists the deliveries to owner (an endpoint or job ID) that
// failed for good, newest first, at most limit.
func (d *Deliverer) DeadLetters(ctx context.Context, owner string, limit int) ([]Delivery, error) {
	return d.store.DeadLetters(ctx, owner, limit)
}

// Redeliver schedules owner's dead letter id again, now, with a fresh set
// of attempts and the same delivery ID and body.
func (d *Deliverer) Redeliver(ctx context.Context, owner, id string) (Delivery, error) {
	del, err := d.store.Redeliver(ctx, owner, id, d.opts.Now(), d.opts.QueueSize)
	if err == nil {
		_ = d.Recorded(ctx, EnqueueResult{Added: 1}, nil)
	}
	return del, err
}

// saturation is the share of QueueSize from which Saturated refuses new
// work: the rest is headroom for events of work already accepted.
const saturation = 0.9

// saturatedTTL is how long one reading of the queue serves Saturated.
const saturatedTTL = 100 * time.Millisecond

// Saturated returns an error wrapping ErrQueueFull when the pending
// deliveries reach 90 % of QueueSize, so that a producer (the job API)
// refuses new work with 503 and Retry-After before deliveries of work it
// already accepted would be dropped. It reads the store at most every
// 100 ms.
func (d *Deliverer) Saturated(ctx context.Context) error {
	now := time.Now()
	d.pendingMu.Lock()
	defer d.pendingMu.Unlock()
	if d.pendingAt.IsZero() || now.Sub(d.pendingAt) >= saturatedTTL || now.Before(d.pendingAt) {
		st, err := d.store.QueueStats(ctx)
		if err != nil {
			return fmt.Errorf("webhook: reading the delivery queue: %w", err)
		}
		d.pendingRead, d.pendingAt = st, now
	}
	if limit := int(float64(d.opts.QueueSize) * saturation); d.pendingRead.Pending >= limit {
		return fmt.Errorf("%w: %d deliveries pending, new work refused from %d", ErrQueueFull, d.pendingRead.Pending, limit)
	}
	return nil
}

// QueueStats reports the store's delivery queue.
func (d *Deliverer) QueueStats(ctx context.Context) (QueueStats, error) {
	return d.store.QueueStats(ctx)
}

// Close stops recording and claiming deliveries and waits for the attempts
// in flight; when ctx ends first they are abandoned (their leases run out
// and another process, or this one restarted, attempts them again) and
// ctx's error is returned. With a MemoryStore, deliveries already due are
// attempted once first, and those still pending after that are lost:
// logged and counted as dropped ("shutdown").
func (d *Deliverer) Close(ctx context.Context) error {
	d.mu.Lock()
	first := !d.closed
	if first {
		d.closed = true
		close(d.stop)
	}
	d.mu.Unlock()
	var err error
	select {
	case <-d.loopDone:
	case <-ctx.Done():
		err = fmt.Errorf("webhook: closing deliverer: %w", ctx.Err())
	}
	d.cancel()
	<-d.loopDone
	if _, mem := d.store.(*MemoryStore); mem && first && !d.opts.NoDispatch {
		if st, _ := d.store.QueueStats(context.Background()); st.Pending > 0 {
			d.opts.Logger.Warn("webhook deliveries lost at shutdown: the memory store does not outlive the process",
				"reason", DropShutdown, "dropped", st.Pending)
			if o := d.observerNow(); o != nil {
				o.Dropped(DropShutdown, st.Pending)
			}
		}
	}
	return err
}

// dispatch claims due deliveries whenever a worker slot is free and
// attempts them, until Close.
func (d *Deliverer) dispatch() {
	defer close(d.loopDone)
	_, drain := d.store.(*MemoryStore)
	free := d.opts.Workers
	done := make(chan struct{}, d.opts.Workers)
	timer := time.NewTimer(0)
	defer timer.Stop()
	stopping := false
	var errLogged time.Time // the store's errors are logged every 10 s at most
	for {
		claimed := 0
		if free > 0 && (!stopping || drain) {
			ctx, cancel := context.WithTimeout(d.sendCtx, d.opts.Timeout)
			ds, dropped, err := d.store.Claim(ctx, d.opts.Now(), free, d.opts.Lease)
			cancel()
			if err != nil && d.sendCtx.Err() == nil && time.Since(errLogged) >= 10*time.Second {
				errLogged = time.Now()
				d.opts.Logger.Warn("webhook: claiming due deliveries", "err", err)
			}
			d.reportEndpointDrops(dropped)
			for _, del := range ds {
				free--
				go func() {
					d.attempt(del)
					done <- struct{}{}
				}()
			}
			claimed = len(ds)
		}
		if stopping && free == d.opts.Workers && (claimed == 0 || !drain) {
			return
		}
		if claimed > 0 && free > 0 {
			continue // more may be due
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(d.opts.PollInterval)
		select {
		case <-done:
			free++
		case <-d.wake:
		case <-timer.C:
		case <-d.stopCh(stopping):
			stopping = true
		}
	}
}

// stopCh returns the stop channel until it has been seen, then nil.
func (d *Deliverer) stopCh(seen bool) <-chan struct{} {
	if seen {
		return nil
	}
	return d.stop
}

func (d *Deliverer) reportEndpointDrops(n int) {
	if n == 0 {
		return
	}
	if o := d.observerNow(); o != nil {
		o.Dropped(DropEndpointDeleted, n)
	}
	d.opts.Logger.Info("webhook deliveries dropped: endpoint deleted", "reason", DropEndpointDeleted, "dropped", n)
}

// attempt makes one attempt of a claimed delivery and records its outcome.
func (d *Deliverer) attempt(del Delivery) {
	status, retryAfter, err := d.post(d.sendCtx, del)
	if d.sendCtx.Err() != nil {
		return // abandoned by Close: the lease will run out
	}
	now := d.opts.Now()
	o := Outcome{At: now, Status: status, Delivered: err == nil && status >= 200 && status < 300}
	if !o.Delivered {
		o.Error = describeFailure(status, err)
		if retryable(status, err) && del.Attempts < d.opts.MaxAttempts {
			o.RetryAt = now.Add(d.retryDelay(del.Attempts, retryAfter))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.store.Settle(ctx, del, o); err != nil {
		if !errors.Is(err, ErrLeaseLost) {
			d.opts.Logger.Warn("webhook: recording a delivery attempt", "delivery", del.ID, "err", err)
		}
		return
	}
	obs := d.observerNow()
	if obs != nil {
		obs.Attempted(status)
	}
	switch {
	case o.Delivered:
		if obs != nil {
			obs.Delivered(now.Sub(del.CreatedAt))
		}
	case !o.RetryAt.IsZero():
		if obs != nil {
			obs.Retried()
		}
	default:
		if obs != nil {
			obs.Failed()
		}
		d.opts.Logger.Warn("webhook delivery failed for good", "delivery", del.ID, "event", del.Event,
			"endpoint", del.EndpointID, "job", del.JobID, "attempts", del.Attempts, "error", o.Error)
	}
}

// retryDelay is the wait after the n-th failed attempt: full jitter,
// uniform in [0, min(MaxDelay, BaseDelay·2^(n−1))], raised to a receiver's
// Retry-After, capped at MaxDelay.
func (d *Deliverer) retryDelay(n int, retryAfter time.Duration) time.Duration {
	wait := d.backoff.Delay(n)
	if retryAfter > wait {
		wait = min(retryAfter, d.opts.MaxDelay)
	}
	return wait
}

// post makes one POST and returns the status (0 on transport error) and
// any Retry-After the receiver asked for.
func (d *Deliverer) post(ctx context.Context, del Delivery) (int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, del.URL, bytes.NewReader(del.Body))
	if err != nil {
		return 0, 0, fmt.Errorf("building request: %w", err)
	}
	secret := []byte(del.Secret)
	ts := strconv.FormatInt(d.opts.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "contentguard-webhook/1")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignatureV2, SignTimestamped(secret, ts, del.Body))
	if !d.opts.OmitBodySignature {
		req.Header.Set(HeaderSignature, Sign(secret, del.Body))
	}
	req.Header.Set(HeaderEvent, del.Event)
	req.Header.Set(HeaderID, del.ID)
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
	_ = resp.Body.Close()
	return resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After")), nil
}

// describeFailure says why an attempt failed in words fit for the
// endpoint's owner: an HTTP status, or the kind of failure (Describe),
// never an address.
func describeFailure(status int, err error) string {
	if err == nil {
		return "HTTP " + strconv.Itoa(status)
	}
	return Describe(err)
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

// retryable: transport errors (except an SSRF refusal, which will not
// change), 408 Request Timeout, 429 Too Many Requests and 5xx.
func retryable(status int, err error) bool {
	if err != nil {
		return !errors.Is(err, ErrForbiddenAddress)
	}
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
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
