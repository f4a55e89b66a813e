package webhook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
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

// Stats are the store's delivery counters. Totals include deliveries to
// per-job webhook URLs that are not registered endpoints.
type Stats struct {
	Endpoints []EndpointStats `json:"endpoints"`
	Totals    Totals          `json:"totals"`
}

// Totals are delivery counters over all targets, since the store began.
type Totals struct {
	Attempts  int64 `json:"attempts"`
	Succeeded int64 `json:"succeeded"`
	Failed    int64 `json:"failed"`  // failed for good: dead letters
	Dropped   int64 `json:"dropped"` // never sent: queue full, or endpoint deleted first
}

// RegistryOptions configure a Registry.
type RegistryOptions struct {
	// MaxEndpoints bounds the registry; 0 means 1000.
	MaxEndpoints int
	// Guard is the SSRF policy applied at registration.
	Guard Guard
	// Store keeps the endpoints, their statistics and the delivery queue;
	// nil means a fresh MemoryStore (one process, forgotten on exit). Give
	// every replica the same redisstore to share them.
	Store Store
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Registry registers webhook endpoints in a Store and reads their delivery
// statistics. It is safe for concurrent use.
type Registry struct {
	opts  RegistryOptions
	store Store
}

// NewRegistry returns a registry over opts.Store.
func NewRegistry(opts RegistryOptions) *Registry {
	if opts.MaxEndpoints <= 0 {
		opts.MaxEndpoints = 1000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Store == nil {
		opts.Store = NewMemoryStore(MemoryStoreOptions{})
	}
	return &Registry{opts: opts, store: opts.Store}
}

// Store returns the store the registry keeps its endpoints in.
func (r *Registry) Store() Store { return r.store }

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
	e := EndpointRecord{
		Endpoint: Endpoint{ID: "wh_" + randomHex(12), URL: u.String(), Events: evs, CreatedAt: r.opts.Now().UTC()},
		Secret:   secret,
	}
	if err := r.store.AddEndpoint(ctx, e, r.opts.MaxEndpoints); err != nil {
		return Endpoint{}, "", err
	}
	return e.Endpoint, secret, nil
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

// List returns all endpoints, oldest first, without secrets.
func (r *Registry) List(ctx context.Context) ([]Endpoint, error) {
	recs, err := r.store.Endpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("webhook: listing endpoints: %w", err)
	}
	out := make([]Endpoint, len(recs))
	for i, e := range recs {
		out[i] = e.Endpoint
	}
	return out, nil
}

// Get returns one endpoint without its secret (ErrNotFound if unknown).
func (r *Registry) Get(ctx context.Context, id string) (Endpoint, error) {
	eps, err := r.List(ctx)
	if err != nil {
		return Endpoint{}, err
	}
	for _, e := range eps {
		if e.ID == id {
			return e, nil
		}
	}
	return Endpoint{}, fmt.Errorf("%w: %q", ErrNotFound, id)
}

// Delete removes an endpoint; it reports ErrNotFound for an unknown id.
func (r *Registry) Delete(ctx context.Context, id string) error {
	return r.store.DeleteEndpoint(ctx, id)
}

// Stats returns per-endpoint counters (oldest endpoint first) and totals,
// over every process sharing the store.
func (r *Registry) Stats(ctx context.Context) (Stats, error) {
	st, err := r.store.Stats(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("webhook: reading statistics: %w", err)
	}
	return st, nil
}

// subscribers returns delivery targets for every endpoint subscribed to
// event, by endpoint ID. The secret is read when a delivery is claimed.
func (r *Registry) subscribers(ctx context.Context, event string) ([]Target, error) {
	recs, err := r.store.Endpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("webhook: listing endpoints: %w", err)
	}
	var out []Target
	for _, e := range recs {
		if slices.Contains(e.Events, event) {
			out = append(out, Target{URL: e.URL, EndpointID: e.ID})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].EndpointID < out[j].EndpointID })
	return out, nil
}

// randomHex returns n random bytes as hex. crypto/rand.Read never fails on
// supported platforms (it panics inside if the OS source is broken).
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
