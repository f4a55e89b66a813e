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

	"github.com/contentguard/contentguard/edge/internal/alarm"
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

	// Refetch coordination: one fetch at a time, rate-limited. Waiting is
	// on a sync.Cond, not a select: under Yaegi v0.16.1 concurrent runs of
	// one select statement share its cases (see package alarm).
	fetchMu     sync.Mutex
	fetched     *sync.Cond // on fetchMu: a fetch ended, or the verifier closed
	lastAttempt time.Time
	fetching    bool         // a fetch is running
	fetches     uint64       // fetches ended
	closed      bool         // set by Verifier.Close: start no more fetches
	failures    int          // fetches failed in a row: the retry backs off
	alarm       *alarm.Alarm // the background refresh's sleep (URL providers)
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
func lookupKey(p *provider, alg, kid string, hasKid bool) (int64, any, Reason) {
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
func refetch(v *Verifier, ctx context.Context, p *provider) bool {
	now := v.now()
	p.fetchMu.Lock()
	if !p.fetching {
		if p.closed || !p.lastAttempt.IsZero() && now.Sub(p.lastAttempt) < v.minRefetch {
			p.fetchMu.Unlock()
			return false
		}
		v.startFetchLocked(p, now)
	}
	ended := v.waitFetchLocked(ctx, p)
	p.fetchMu.Unlock()
	return ended
}

// waitFetchLocked waits (p.fetchMu held) until the running fetch ends, ctx
// ends or the verifier closes, and reports whether the fetch ended.
func (v *Verifier) waitFetchLocked(ctx context.Context, p *provider) bool {
	seen := p.fetches
	if done := ctx.Done(); done != nil {
		// A plain goroutine, not context.AfterFunc: under Yaegi, request
		// goroutines handing the same interpreted func to the host for the
		// first time at once race inside the interpreter. It ends with the
		// caller's context.
		go func() {
			<-done
			p.wake()
		}()
	}
	for p.fetches == seen && !p.closed && ctx.Err() == nil {
		p.fetched.Wait()
	}
	return p.fetches != seen
}

// wake wakes the callers waiting for a fetch, to look at their contexts.
func (p *provider) wake() {
	p.fetchMu.Lock()
	p.fetched.Broadcast()
	p.fetchMu.Unlock()
}

// startFetchLocked starts a fetch in the background (bounded by the fetch
// timeout and the verifier's lifetime, not by any one request). p.fetchMu
// must be held and no fetch running.
func (v *Verifier) startFetchLocked(p *provider, now time.Time) {
	p.fetching = true
	p.lastAttempt = now
	v.wg.Add(1)
	go v.runFetch(p)
}

func (v *Verifier) runFetch(p *provider) {
	defer v.wg.Done()
	if err := v.fetch(v.ctx, p); err != nil && v.onFetch == nil {
		v.warnf("auth: provider %q: key refresh failed, keeping the last good keys (retry in %s): %v", p.name, p.retryWait(), err)
	}
	p.fetchMu.Lock()
	p.fetching = false
	p.fetches++
	p.fetched.Broadcast()
	p.fetchMu.Unlock()
}

// fetch is fetchNow, counted: a failure backs the next background attempt
// off, a success resets it, and OnFetch hears of either.
func (v *Verifier) fetch(ctx context.Context, p *provider) error {
	err := v.fetchNow(ctx, p)
	p.fetchMu.Lock()
	if err != nil {
		p.failures++
	} else {
		p.failures = 0
	}
	p.fetchMu.Unlock()
	if v.onFetch != nil {
		v.onFetch(p.name, p.url, err)
	}
	return err
}

// retryWait is how long the background loop waits before its next fetch:
// the refresh period after a success; after n failures in a row,
// firstRetry·2^(n−1), at most the refresh period.
func (p *provider) retryWait() time.Duration {
	p.fetchMu.Lock()
	n := p.failures
	p.fetchMu.Unlock()
	if n == 0 {
		return p.refresh
	}
	wait := firstRetry
	for i := 1; i < n && wait < p.refresh; i++ {
		wait *= 2
	}
	if wait > p.refresh {
		wait = p.refresh
	}
	return wait
}

// refreshLoop refreshes a URL provider's keys every refresh period, and
// after a failed fetch retries with backoff (retryWait), until Close.
// Periodic refreshes join a running fetch rather than starting a second
// one.
func (v *Verifier) refreshLoop(p *provider) {
	defer v.wg.Done()
	for p.alarm.Sleep(p.retryWait()) {
		p.fetchMu.Lock()
		if p.closed {
			p.fetchMu.Unlock()
			return
		}
		if !p.fetching {
			v.startFetchLocked(p, v.now())
		}
		v.waitFetchLocked(context.Background(), p)
		p.fetchMu.Unlock()
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
