package auth

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// provider is one configured issuer with its current key set.
type provider struct {
	name       string
	issuer     string
	audiences  []string
	allowed    map[string]bool
	secret     []byte // HS* providers only
	url        string // JWKS URL providers only
	refresh    time.Duration
	skew       time.Duration
	scopeClaim string

	mu   sync.RWMutex
	keys map[string]JWK // nil until a key set is loaded; replaced, never mutated
	fp   string         // fingerprint of keys, to detect rotation
	// gen counts key-set changes. Cache entries remember the gen they were
	// verified under, so a rotation invalidates them without a flush.
	gen atomic.Int64

	// Refetch coordination: one fetch at a time, rate-limited.
	fetchMu     sync.Mutex
	lastAttempt time.Time
	inflight    chan struct{} // closed when the running fetch ends; nil when idle
	closed      bool          // set by Verifier.Close: start no more fetches
}

// install makes keys the provider's key set, bumping gen when it changed.
func (p *provider) install(keys map[string]JWK) {
	fp := fingerprint(keys)
	p.mu.Lock()
	if p.keys == nil || fp != p.fp {
		p.keys, p.fp = keys, fp
		p.gen.Add(1)
	}
	p.mu.Unlock()
}

// fingerprint identifies a key set by its kids, algs and thumbprints.
func fingerprint(keys map[string]JWK) string {
	kids := make([]string, 0, len(keys))
	for kid := range keys {
		kids = append(kids, kid)
	}
	sort.Strings(kids)
	fp := ""
	for i := 0; i < len(kids); i++ {
		k := keys[kids[i]]
		tp, err := Thumbprint(k.Key)
		if err != nil {
			tp = "?"
		}
		fp += kids[i] + "|" + k.Algorithm + "|" + tp + "\n"
	}
	return fp
}

// checkKeysUsable refuses a key set in which no key verifies any allowed
// algorithm (a configuration mistake better caught at startup).
func (p *provider) checkKeysUsable(keys map[string]JWK) error {
	for _, k := range keys {
		for alg := range p.allowed {
			if keyFits(k, alg) {
				return nil
			}
		}
	}
	return fmt.Errorf("no key in the set verifies any allowed algorithm")
}

// keyFits reports whether the JWK may verify alg. Symmetric keys from a JWKS
// are never used: HMAC secrets come only from Provider.Secret.
func keyFits(k JWK, alg string) bool {
	if k.Algorithm != "" && k.Algorithm != alg {
		return false
	}
	if algorithmFamily(alg) == "oct" {
		return false
	}
	return algorithmFits(alg, k.Key)
}

// lookup picks the verification key for alg and kid. Without a kid, the key
// must be the only one in the set that fits alg.
func (p *provider) lookup(alg, kid string, hasKid bool) (int64, any, Reason) {
	p.mu.RLock()
	keys := p.keys
	gen := p.gen.Load()
	p.mu.RUnlock()
	if keys == nil {
		return gen, nil, ReasonNoKeys
	}
	if hasKid {
		k, ok := keys[kid]
		if !ok {
			return gen, nil, ReasonUnknownKey
		}
		if !keyFits(k, alg) {
			return gen, nil, ReasonAlgorithm
		}
		return gen, k.Key, ReasonOK
	}
	var found any
	n := 0
	for _, k := range keys {
		if keyFits(k, alg) {
			found = k.Key
			n++
		}
	}
	if n != 1 {
		return gen, nil, ReasonUnknownKey
	}
	return gen, found, ReasonOK
}

// refetch runs an on-demand JWKS fetch for an unknown kid, at most once per
// minRefetch per provider; callers arriving while a fetch runs wait for it
// instead of starting another. It reports whether a fetch finished (so a
// second lookup is worth it). Waiting ends early if ctx ends.
func (v *Verifier) refetch(ctx context.Context, p *provider) bool {
	now := v.now()
	p.fetchMu.Lock()
	done := p.inflight
	if done == nil {
		if !p.lastAttempt.IsZero() && now.Sub(p.lastAttempt) < v.minRefetch {
			p.fetchMu.Unlock()
			return false
		}
		done = v.startFetchLocked(p, now)
	}
	p.fetchMu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	case <-v.ctx.Done():
		return false
	}
}

// startFetchLocked starts a fetch in the background (bounded by the fetch
// timeout and the verifier's lifetime, not by any one request) and returns
// the channel closed when it ends, or nil once the verifier is closed.
// p.fetchMu must be held.
func (v *Verifier) startFetchLocked(p *provider, now time.Time) chan struct{} {
	if p.closed {
		return nil
	}
	done := make(chan struct{})
	p.inflight = done
	p.lastAttempt = now
	v.wg.Add(1)
	go v.runFetch(p, done)
	return done
}

func (v *Verifier) runFetch(p *provider, done chan struct{}) {
	defer v.wg.Done()
	if err := v.fetchNow(v.ctx, p); err != nil {
		v.warnf("auth: provider %q: key refresh failed, keeping the last good keys: %v", p.name, err)
	}
	p.fetchMu.Lock()
	p.inflight = nil
	p.fetchMu.Unlock()
	close(done)
}

// minRetryWait floors the background retry period of a provider with no keys.
const minRetryWait = time.Second

// refreshLoop refreshes a URL provider's keys every refresh period, or every
// minRefetch while it has none. Periodic refreshes join a running fetch
// rather than starting a second one.
func (v *Verifier) refreshLoop(p *provider) {
	defer v.wg.Done()
	for {
		wait := p.refresh
		if !p.hasKeys() && v.minRefetch < wait {
			// Retry sooner while failing closed, but never spin.
			wait = v.minRefetch
			if wait < minRetryWait {
				wait = minRetryWait
			}
		}
		timer := time.NewTimer(wait)
		select {
		case <-v.ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		p.fetchMu.Lock()
		done := p.inflight
		if done == nil {
			done = v.startFetchLocked(p, v.now())
		}
		p.fetchMu.Unlock()
		if done == nil {
			return
		}
		select {
		case <-done:
		case <-v.ctx.Done():
			return
		}
	}
}

func (p *provider) hasKeys() bool {
	p.mu.RLock()
	has := p.keys != nil
	p.mu.RUnlock()
	return has
}

// fetchNow fetches and installs the provider's JWKS. On any failure the
// current keys stay.
func (v *Verifier) fetchNow(ctx context.Context, p *provider) error {
	ctx, cancel := context.WithTimeout(ctx, v.fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return fmt.Errorf("jwks request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return fmt.Errorf("jwks fetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("jwks fetch %s: status %d", p.url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return fmt.Errorf("jwks read: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return fmt.Errorf("jwks body exceeds %d bytes", maxJWKSBytes)
	}
	keys, err := ParseJWKS(body)
	if err != nil {
		return err
	}
	if err := p.checkKeysUsable(keys); err != nil {
		return fmt.Errorf("jwks from %s: %w", p.url, err)
	}
	p.install(keys)
	return nil
}
