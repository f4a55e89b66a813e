// Package breaker implements circuit breakers: per-upstream state machines
// that stop sending requests to an upstream that keeps failing, and probe it
// carefully before trusting it again.
//
//	Closed ──(too many failures)──► Open ──(OpenFor elapsed, next Allow)──► HalfOpen
//	   ▲                             ▲                                         │
//	   └──(all probes succeed)───────┼─────────────────────────────────────────┤
//	                                 └──(any probe fails)──────────────────────┘
//
// Closed admits everything and counts outcomes; it trips to Open after
// ConsecutiveFailures failures in a row, or when the failure ratio over a
// rolling Window reaches FailureRatio with at least MinRequests requests seen.
// Open refuses everything for OpenFor. The first Allow after that moves to
// HalfOpen, which admits up to HalfOpenRequests probes at a time: when that
// many have succeeded the breaker closes, and one failure re-opens it.
//
// Every transition starts a new generation. A [Ticket] remembers the
// generation that admitted its request, and [Breaker.Done] ignores outcomes
// from an older generation: a slow request admitted before the breaker
// tripped cannot close or re-trip it later.
//
// The package imports only the standard library and avoids generics and
// newer builtins because the Traefik plugin runs it under the Yaegi
// interpreter.
package breaker

import (
	"sync"
	"time"
)

// State is a breaker's state. The values are those of the
// circuit_breaker_state metric.
type State int

const (
	Closed   State = 0
	HalfOpen State = 1
	Open     State = 2
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case HalfOpen:
		return "half-open"
	case Open:
		return "open"
	}
	return "unknown"
}

// Settings configures a breaker. Zero values: no trip rule is on unless set;
// OpenFor defaults to 60s, HalfOpenRequests to 1, Window to 10s, Now to
// time.Now.
type Settings struct {
	ConsecutiveFailures int           // trip after this many failures in a row (0 = off)
	FailureRatio        float64       // trip when failures/requests ≥ ratio over Window (0 = off)…
	MinRequests         int           // …once at least MinRequests outcomes were seen in Window
	Window              time.Duration // the rolling window, kept as windowBuckets buckets
	OpenFor             time.Duration // how long Open refuses before probing
	HalfOpenRequests    int           // probes admitted at a time while half-open
	Now                 func() time.Time
	// OnStateChange, when set, is called on every transition, in order, with
	// the breaker's lock held: it must not call back into the breaker.
	OnStateChange func(name string, from, to State)
}

const (
	windowBuckets    = 10
	defaultOpenFor   = 60 * time.Second
	defaultWindow    = 10 * time.Second
	halfOpenBusyWait = time.Second // Retry-After for requests beyond the probes
)

func (s Settings) withDefaults() Settings {
	if s.OpenFor <= 0 {
		s.OpenFor = defaultOpenFor
	}
	if s.HalfOpenRequests <= 0 {
		s.HalfOpenRequests = 1
	}
	if s.Window < windowBuckets {
		s.Window = defaultWindow
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	return s
}

// Ticket is the permission for one request, returned by [Breaker.Allow] and
// handed back with the outcome to [Breaker.Done].
type Ticket struct {
	generation uint64
}

// Breaker is one circuit breaker. It is safe for concurrent use.
type Breaker struct {
	name string
	s    Settings

	mu            sync.Mutex
	state         State
	generation    uint64
	consecutive   int       // failures in a row while closed
	window        window    // outcomes while closed
	openUntil     time.Time // while open
	halfOpenSince time.Time // while half-open
	probes        int       // half-open: admitted and not yet done
	probeSuccess  int       // half-open: succeeded
}

// New returns a closed breaker.
func New(name string, s Settings) *Breaker {
	s = s.withDefaults()
	// Generations start at 1 so that the zero Ticket (what a refused Allow
	// returns) never matches.
	b := &Breaker{name: name, s: s, generation: 1}
	b.window.width = s.Window / windowBuckets
	return b
}

// reconfigure replaces the settings, keeping state and counts (see
// Registry.Reconfigure). A half-open breaker keeps the probes it admitted;
// an open one stays open until the instant it was given.
func (b *Breaker) reconfigure(s Settings) {
	s = s.withDefaults()
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.Window != b.s.Window {
		b.window.clear()
		b.window.lastSlot = 0
		b.window.width = s.Window / windowBuckets
	}
	b.s = s
}

// Name is the breaker's name.
func (b *Breaker) Name() string { return b.name }

// State is the current state. An Open breaker whose OpenFor has passed still
// reports Open until the next Allow moves it to HalfOpen.
func (b *Breaker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// Allow asks to send one request. When ok, send it and report the outcome
// with Done(t, success) — always, or a half-open probe slot stays taken
// until OpenFor passes. When !ok, do not send it: answer 503 with
// Retry-After retryAfter (rounded up to whole seconds, at least 1).
//
// (Its results are unnamed, like those of every method the engine calls
// as a method expression: Yaegi v0.16.1 returns a named result assigned
// in the body as zero to such a call.)
func (b *Breaker) Allow() (Ticket, bool, time.Duration) {
	b.mu.Lock()
	if b.state == Closed {
		// The hot path reads no clock. (Unlocks are explicit, not
		// deferred, here and in Done: a defer costs the Traefik plugin's
		// interpreter a function wrapper per call.)
		t := Ticket{generation: b.generation}
		b.mu.Unlock()
		return t, true, 0
	}
	t, ok, wait := allowSlow(b)
	b.mu.Unlock()
	return t, ok, wait
}

// allowSlow is Allow for a breaker that is not closed, under b.mu.
func allowSlow(b *Breaker) (Ticket, bool, time.Duration) {
	now := b.s.Now()
	switch b.state {
	case Open:
		if now.Before(b.openUntil) {
			return Ticket{}, false, b.openUntil.Sub(now)
		}
		setState(b, HalfOpen, now)
	case HalfOpen:
		if b.probes >= b.s.HalfOpenRequests && now.Sub(b.halfOpenSince) >= b.s.OpenFor {
			// The probes never reported back (a caller forgot Done). Forget
			// them and start a fresh round rather than stay stuck.
			setState(b, HalfOpen, now)
		}
	}
	if b.state == HalfOpen {
		if b.probes >= b.s.HalfOpenRequests {
			return Ticket{}, false, halfOpenBusyWait
		}
		b.probes++
	}
	return Ticket{generation: b.generation}, true, 0
}

// Done reports the outcome of a request admitted by Allow. Outcomes whose
// ticket is from an older generation (issued before a transition) are
// ignored.
func (b *Breaker) Done(t Ticket, success bool) {
	b.mu.Lock()
	if t.generation == b.generation {
		done(b, success)
	}
	b.mu.Unlock()
}

// done is Done for a current ticket, under b.mu.
func done(b *Breaker, success bool) {
	switch b.state {
	case Closed:
		if success {
			b.consecutive = 0
		} else {
			b.consecutive++
		}
		now := b.s.Now()
		windowAdd(&b.window, now, success)
		if shouldTrip(b) {
			setState(b, Open, now)
		}
	case HalfOpen:
		now := b.s.Now()
		b.probes--
		if !success {
			setState(b, Open, now)
			return
		}
		b.probeSuccess++
		if b.probeSuccess >= b.s.HalfOpenRequests {
			setState(b, Closed, now)
		}
	}
}

// Release gives back the slot of a request admitted by Allow whose outcome
// says nothing about the upstream (the client sent a malformed body, was too
// slow, or went away). A closed breaker counts nothing; a half-open one frees
// the probe slot for the next request without moving toward open or closed.
// Tickets from an older generation are ignored, as in Done.
func (b *Breaker) Release(t Ticket) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.generation != b.generation {
		return
	}
	if b.state == HalfOpen && b.probes > 0 {
		b.probes--
	}
}

// shouldTrip applies the trip rules to the closed breaker's counts, with
// the window just advanced by add.
func shouldTrip(b *Breaker) bool {
	if b.s.ConsecutiveFailures > 0 && b.consecutive >= b.s.ConsecutiveFailures {
		return true
	}
	w := &b.window
	return b.s.FailureRatio > 0 && w.requests > 0 && w.requests >= b.s.MinRequests &&
		float64(w.failures) >= b.s.FailureRatio*float64(w.requests)
}

// Reset closes the breaker and forgets its counts.
func (b *Breaker) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	setState(b, Closed, b.s.Now())
}

// Status is a snapshot of one breaker, for admin endpoints and metrics.
type Status struct {
	Name                string
	State               State
	Failures, Requests  int       // closed: outcomes in the rolling window; half-open: probe results
	ConsecutiveFailures int       // closed: failures in a row
	OpenUntil           time.Time // open: when probing may start
}

// Status returns a snapshot of b.
func (b *Breaker) Status() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := Status{Name: b.name, State: b.state}
	switch b.state {
	case Closed:
		st.Requests, st.Failures = b.window.totals(b.s.Now())
		st.ConsecutiveFailures = b.consecutive
	case HalfOpen:
		st.Requests = b.probeSuccess
	case Open:
		st.OpenUntil = b.openUntil
	}
	return st
}

// setState moves b (locked) to a new generation in state to, with fresh
// counts, and reports a change of state to OnStateChange. Moving to the same
// state (Reset of a closed breaker, a fresh half-open round) still starts a
// new generation but reports nothing.
func setState(b *Breaker, to State, now time.Time) {
	from := b.state
	b.state = to
	b.generation++
	b.consecutive = 0
	b.window.clear()
	b.probes, b.probeSuccess = 0, 0
	b.openUntil, b.halfOpenSince = time.Time{}, time.Time{}
	switch to {
	case Open:
		b.openUntil = now.Add(b.s.OpenFor)
	case HalfOpen:
		b.halfOpenSince = now
	}
	if from != to && b.s.OnStateChange != nil {
		b.s.OnStateChange(b.name, from, to)
	}
}

// window counts outcomes over the last windowBuckets buckets of width each;
// time slot k (Unix time divided by width) is counted in
// slots[k mod windowBuckets]. The window therefore covers between
// Window−width and Window of history. Running totals spare a sum over the
// buckets on every outcome (loops are slow under Yaegi).
type window struct {
	width              time.Duration
	slots              [windowBuckets]counts
	lastSlot           int64 // the slot of the newest bucket written
	requests, failures int   // sums over slots
}

type counts struct{ requests, failures int }

// advance clears the buckets that fell out of the window by now and returns
// the index of now's bucket. A clock that went backwards keeps writing into
// the newest bucket.
func windowAdvance(w *window, now time.Time) int {
	slot := now.UnixNano() / int64(w.width)
	if slot > w.lastSlot {
		windowRoll(w, slot)
	}
	i := int(w.lastSlot % windowBuckets)
	if i < 0 {
		i += windowBuckets // slots before 1970
	}
	return i
}

// windowRoll moves the window on to slot, clearing the buckets it passes.
// Apart from windowAdvance, which calls it once per bucket width: the
// Traefik plugin's interpreter allocates a slot per expression of a
// function on every call, and most outcomes land in the current bucket.
func windowRoll(w *window, slot int64) {
	if slot-w.lastSlot >= windowBuckets {
		w.clear()
	} else {
		for k := w.lastSlot + 1; k <= slot; k++ {
			i := int(k % windowBuckets)
			if i < 0 {
				i += windowBuckets
			}
			c := &w.slots[i]
			w.requests -= c.requests
			w.failures -= c.failures
			*c = counts{}
		}
	}
	w.lastSlot = slot
}

func windowAdd(w *window, now time.Time, success bool) {
	c := &w.slots[windowAdvance(w, now)]
	c.requests++
	w.requests++
	if !success {
		c.failures++
		w.failures++
	}
}

func (w *window) totals(now time.Time) (requests, failures int) {
	windowAdvance(w, now)
	return w.requests, w.failures
}

func (w *window) clear() {
	w.slots = [windowBuckets]counts{}
	w.requests, w.failures = 0, 0
}
