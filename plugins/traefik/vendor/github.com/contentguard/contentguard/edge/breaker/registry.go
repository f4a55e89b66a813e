package breaker

import (
	"sort"
	"sync"
)

// Registry holds one breaker per name (per upstream), all with the same
// settings, created on first use. Names must come from configuration, not
// from requests: the registry does not bound how many it holds.
type Registry struct {
	settings Settings

	mu       sync.Mutex
	breakers map[string]*Breaker
}

// NewRegistry returns an empty registry whose breakers use s.
func NewRegistry(s Settings) *Registry {
	return &Registry{settings: s, breakers: make(map[string]*Breaker)}
}

// Get returns the breaker called name, creating it closed on first use.
func (r *Registry) Get(name string) *Breaker {
	r.mu.Lock()
	b := r.breakers[name]
	if b == nil {
		b = New(name, r.settings)
		r.breakers[name] = b
	}
	r.mu.Unlock() // not deferred: see Breaker.Allow
	return b
}

// Reconfigure gives every breaker, and those created later, the settings s
// (a reloaded policy): each keeps its state and counts, so a reload neither
// closes an open breaker nor forgets recent failures. A changed Window
// starts the rolling window afresh.
func (r *Registry) Reconfigure(s Settings) {
	r.mu.Lock()
	r.settings = s
	r.mu.Unlock()
	for _, b := range r.sorted() {
		b.reconfigure(s)
	}
}

// Reset closes the breaker called name; false if there is none.
func (r *Registry) Reset(name string) bool {
	r.mu.Lock()
	b, ok := r.breakers[name]
	r.mu.Unlock()
	if ok {
		b.Reset()
	}
	return ok
}

// ResetAll closes every breaker (the original service's
// reset_all_circuit_breakers), in name order.
func (r *Registry) ResetAll() {
	for _, b := range r.sorted() {
		b.Reset()
	}
}

// Snapshot returns every breaker's status, sorted by name.
func (r *Registry) Snapshot() []Status {
	breakers := r.sorted()
	out := make([]Status, 0, len(breakers))
	for _, b := range breakers {
		out = append(out, b.Status())
	}
	return out
}

// sorted lists the breakers by name. Breakers are locked one at a time by
// the caller afterwards, never under the registry's lock.
func (r *Registry) sorted() []*Breaker {
	r.mu.Lock()
	out := make([]*Breaker, 0, len(r.breakers))
	for _, b := range r.breakers {
		out = append(out, b)
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}
