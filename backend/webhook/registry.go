package webhook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// ErrRegistryFull is returned by Register when MaxEndpoints are registered.
var ErrRegistryFull = errors.New("webhook: registry full")

// ErrInvalidEvent is returned for an unknown or missing event name.
var ErrInvalidEvent = errors.New("webhook: invalid events")

// ErrInvalidSecret is returned for a secret that is too short or too long.
var ErrInvalidSecret = errors.New("webhook: invalid secret")

// ErrNotFound is returned for an unknown endpoint id.
var ErrNotFound = errors.New("webhook: endpoint not found")

// Secret length bounds. A generated secret has 32 random bytes (64 hex).
const (
	MinSecretLength = 16
	MaxSecretLength = 256
)

// Endpoint is a registered receiver as the API shows it: never with its
// secret.
type Endpoint struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	CreatedAt time.Time `json:"created_at"`
}

// EndpointStats counts deliveries to one endpoint. Attempts counts HTTP
// tries; Succeeded and Failed count deliveries (a delivery fails once its
// last attempt has failed).
type EndpointStats struct {
	ID            string     `json:"id"`
	URL           string     `json:"url"`
	Attempts      int64      `json:"attempts"`
	Succeeded     int64      `json:"succeeded"`
	Failed        int64      `json:"failed"`
	LastStatus    int        `json:"last_status"` // HTTP status of the last attempt; 0 if it got no answer
	LastError     string     `json:"last_error,omitempty"`
	LastAttemptAt *time.Time `json:"last_attempt_at"`
}

// Stats are the registry's delivery counters. Totals include deliveries to
// per-job webhook URLs that are not registered endpoints.
type Stats struct {
	Endpoints []EndpointStats `json:"endpoints"`
	Totals    Totals          `json:"totals"`
}

// Totals are delivery counters over all targets since start.
type Totals struct {
	Attempts  int64 `json:"attempts"`
	Succeeded int64 `json:"succeeded"`
	Failed    int64 `json:"failed"`
	Dropped   int64 `json:"dropped"` // refused because the delivery queue was full
}

// RegistryOptions configure a Registry.
type RegistryOptions struct {
	// MaxEndpoints bounds the registry; 0 means 1000.
	MaxEndpoints int
	// Guard is the SSRF policy applied at registration.
	Guard Guard
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Registry is an in-memory, bounded set of webhook endpoints and their
// delivery statistics. It is safe for concurrent use.
type Registry struct {
	opts RegistryOptions

	mu        sync.Mutex
	endpoints map[string]*entry
	totals    Totals
}

// entry is an endpoint with its secret and counters.
type entry struct {
	Endpoint
	secret []byte
	stats  EndpointStats
}

// NewRegistry returns an empty registry.
func NewRegistry(opts RegistryOptions) *Registry {
	if opts.MaxEndpoints <= 0 {
		opts.MaxEndpoints = 1000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Registry{opts: opts, endpoints: make(map[string]*entry)}
}

// Register validates and stores an endpoint. An empty secret is replaced by
// a generated one; the secret is returned so it can be shown exactly once.
// Duplicate event names are folded.
func (r *Registry) Register(ctx context.Context, rawURL string, events []string, secret string) (Endpoint, string, error) {
	u, err := r.opts.Guard.CheckURL(ctx, rawURL)
	if err != nil {
		return Endpoint{}, "", err
	}
	evs, err := normalizeEvents(events)
	if err != nil {
		return Endpoint{}, "", err
	}
	if secret == "" {
		secret = randomHex(32)
	}
	if len(secret) < MinSecretLength || len(secret) > MaxSecretLength {
		return Endpoint{}, "", fmt.Errorf("%w: length must be %d..%d bytes", ErrInvalidSecret, MinSecretLength, MaxSecretLength)
	}
	e := &entry{
		Endpoint: Endpoint{ID: "wh_" + randomHex(12), URL: u.String(), Events: evs, CreatedAt: r.opts.Now().UTC()},
		secret:   []byte(secret),
	}
	e.stats = EndpointStats{ID: e.ID, URL: e.URL}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.endpoints) >= r.opts.MaxEndpoints {
		return Endpoint{}, "", fmt.Errorf("%w: %d endpoints", ErrRegistryFull, r.opts.MaxEndpoints)
	}
	r.endpoints[e.ID] = e
	return e.public(), secret, nil
}

// normalizeEvents checks names and returns them sorted without duplicates.
func normalizeEvents(events []string) ([]string, error) {
	if len(events) == 0 {
		return nil, fmt.Errorf("%w: at least one of %v is required", ErrInvalidEvent, Events())
	}
	seen := make(map[string]bool, len(events))
	out := make([]string, 0, len(events))
	for _, ev := range events {
		if !KnownEvent(ev) {
			return nil, fmt.Errorf("%w: unknown event %q (known: %v)", ErrInvalidEvent, ev, Events())
		}
		if !seen[ev] {
			seen[ev] = true
			out = append(out, ev)
		}
	}
	sort.Strings(out)
	return out, nil
}

// public copies the endpoint without sharing its slice.
func (e *entry) public() Endpoint {
	p := e.Endpoint
	p.Events = append([]string(nil), e.Events...)
	return p
}

// List returns all endpoints, oldest first, without secrets.
func (r *Registry) List() []Endpoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Endpoint, 0, len(r.endpoints))
	for _, e := range r.endpoints {
		out = append(out, e.public())
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Delete removes an endpoint; it reports ErrNotFound for an unknown id.
func (r *Registry) Delete(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.endpoints[id]; !ok {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	delete(r.endpoints, id)
	return nil
}

// Stats returns per-endpoint counters (oldest endpoint first) and totals.
func (r *Registry) Stats() Stats {
	list := r.List()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Stats{Endpoints: make([]EndpointStats, 0, len(list)), Totals: r.totals}
	for _, ep := range list {
		if e, ok := r.endpoints[ep.ID]; ok {
			st := e.stats
			if st.LastAttemptAt != nil {
				t := *st.LastAttemptAt
				st.LastAttemptAt = &t
			}
			s.Endpoints = append(s.Endpoints, st)
		}
	}
	return s
}

// subscribers returns delivery targets for every endpoint subscribed to event.
func (r *Registry) subscribers(event string) []Target {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Target
	for _, e := range r.endpoints {
		for _, ev := range e.Events {
			if ev == event {
				out = append(out, Target{URL: e.URL, Secret: string(e.secret), EndpointID: e.ID})
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].EndpointID < out[j].EndpointID })
	return out
}

// recordAttempt counts one HTTP attempt; status 0 means no answer.
func (r *Registry) recordAttempt(endpointID string, status int, err error, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.totals.Attempts++
	e, ok := r.endpoints[endpointID]
	if !ok {
		return
	}
	e.stats.Attempts++
	e.stats.LastStatus = status
	e.stats.LastError = Describe(err) // shown to clients: no addresses
	t := at.UTC()
	e.stats.LastAttemptAt = &t
}

// recordOutcome counts one finished delivery.
func (r *Registry) recordOutcome(endpointID string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ok {
		r.totals.Succeeded++
	} else {
		r.totals.Failed++
	}
	e, found := r.endpoints[endpointID]
	if !found {
		return
	}
	if ok {
		e.stats.Succeeded++
	} else {
		e.stats.Failed++
	}
}

// recordDropped counts a delivery refused by a full queue.
func (r *Registry) recordDropped() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.totals.Dropped++
}

// randomHex returns n random bytes as hex. crypto/rand.Read never fails on
// supported platforms (it panics inside if the OS source is broken).
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
