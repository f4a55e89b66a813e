package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/contentguard/contentguard/edge/internal/alarm"
	"github.com/contentguard/contentguard/internal/keyfile"
)

// Provider configures one JWT issuer (from the policy's auth.jwt.providers[]).
type Provider struct {
	Name      string
	Issuer    string
	Audiences []string
	// Algorithms is the allow-list: ES256 ES384 ES512 RS256 RS384 RS512
	// PS256 PS384 PS512 EdDSA HS256 HS384 HS512; never "none". HS* requires
	// Secret, and a Secret provider allows HS* only.
	Algorithms []string
	// Exactly one key source: JWKSFile, JWKSURL, JWKSInline (JSON text), or
	// Secret (HS*).
	JWKSFile   string
	JWKSURL    string
	JWKSInline string
	// Refresh is the JWKS URL background refresh period (default 5m).
	Refresh time.Duration
	// Secret is the shared HMAC secret, at least as long as the hash
	// (32 bytes for HS256, 48 for HS384, 64 for HS512; RFC 7518 §3.2).
	Secret    []byte
	ClockSkew time.Duration
	// ScopeClaim names the scope claim (default "scope"): a space-separated
	// string or an array. When the token lacks it, "scp" (array or string) is
	// read instead.
	ScopeClaim string
}

// Options tunes a Verifier. The zero value is usable.
type Options struct {
	// HTTPClient fetches JWKS URLs. Default: a client with a 5s timeout. Each
	// fetch also gets a context deadline of the client's timeout (5s when the
	// client has none) and its body is capped at 1 MiB.
	HTTPClient *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
	// CacheSize bounds the verified-token cache (default 10000 entries; a
	// negative value disables the cache).
	CacheSize int
	// MinRefetchInterval rate-limits JWKS refetches triggered by unknown key
	// ids, per provider (default 30s).
	MinRefetchInterval time.Duration
	// MaxTokenBytes bounds token length (default 8192); longer tokens are
	// refused as malformed before any parsing.
	MaxTokenBytes int
	// Logf, if set, receives key-refresh failures and warnings.
	Logf func(format string, args ...any)
	// OnFetch, if set, is called after every JWKS fetch of a URL provider
	// with the provider's name, the URL and the error (nil on success), and
	// failed fetches are then reported there instead of to Logf: the engine
	// passes them to its Observer to log and count.
	OnFetch func(provider, url string, err error)
	// NewTimer, if set, makes the timer of each URL provider's background
	// refresh: a stopped timer that calls f when it fires after Reset
	// (default: a *time.Timer from time.AfterFunc). Tests fire their own.
	NewTimer func(f func()) Timer
	// InProcessJWKS holds, by issuer, the key sets of issuers that sign in
	// this process (the sidecar's token issuer). A provider of such an
	// issuer verifies with these keys from the start, besides the keys of
	// its file or inline set; its JWKS URL, if any, is not fetched (it would
	// name this process, whose listener may not be up yet).
	InProcessJWKS map[string][]byte
}

// Timer is the part of *time.Timer a Verifier's background refresh uses
// (Options.NewTimer): Reset(d time.Duration) bool and Stop() bool.
type Timer = alarm.Timer

// Identity is the verified caller. It is shared read-only with the cache: do
// not modify Scopes or Claims.
type Identity struct {
	Provider, Subject string
	Scopes            []string
	// ScopeText is Scopes joined by single spaces (what X-Auth-Scopes
	// forwards); "" when not computed — join Scopes then.
	ScopeText string
	Claims    map[string]any
	ExpiresAt time.Time
}

// Reason says why a token was refused; ReasonOK ("") means valid.
type Reason string

// The reasons Verify returns.
const (
	ReasonOK          Reason = ""
	ReasonMalformed   Reason = "token_malformed"       // bad base64/JSON/segments/too large; exp missing or not a number
	ReasonAlgorithm   Reason = "algorithm_not_allowed" // none, not in allow-list, alg/key type mismatch
	ReasonUnknownKey  Reason = "unknown_kid"           // no key with that kid (after a rate-limited refetch)
	ReasonSignature   Reason = "bad_signature"
	ReasonExpired     Reason = "token_expired"
	ReasonNotYetValid Reason = "token_not_yet_valid"
	ReasonIssuer      Reason = "bad_issuer"
	ReasonAudience    Reason = "bad_audience"
	ReasonNoKeys      Reason = "no_keys" // provider has no usable key set yet (fail closed)
)

const (
	defaultRefresh      = 5 * time.Minute
	defaultFetchTimeout = 5 * time.Second
	defaultCacheSize    = 10000
	defaultMinRefetch   = 30 * time.Second
	// firstRetry is the wait after a failed JWKS fetch (Envoy's
	// failed_refetch_duration); it doubles with each failure in a row, up
	// to the provider's refresh period.
	firstRetry           = time.Second
	defaultMaxTokenBytes = 8192
	defaultScopeClaim    = "scope"
	maxJWKSBytes         = 1 << 20
	// maxNumericDate is 9999-12-31T23:59:59Z; larger exp/nbf values are
	// refused rather than converted with overflow.
	maxNumericDate = 253402300799
)

// errRefused is returned from the key function to abort parsing; the reason
// travels in keySelection, never through error identity.
var errRefused = errors.New("auth: token refused")

// Verifier verifies JWTs against a fixed set of providers. It is safe for
// concurrent use. Close stops its background JWKS refreshes.
type Verifier struct {
	providers     []*provider
	byIssuer      map[string]*provider
	allowedAny    map[string]bool // union of the providers' allow-lists
	parser        *jwt.Parser
	cache         *tokenCache // nil when disabled
	client        *http.Client
	fetchTimeout  time.Duration
	now           func() time.Time
	minRefetch    time.Duration
	maxTokenBytes int
	logf          func(format string, args ...any)
	onFetch       func(provider, url string, err error)
	newTimer      alarm.NewTimer

	ctx       context.Context // lives until Close; parent of every fetch
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// NewVerifier validates the providers and loads their keys: file and inline
// key sets now (an invalid one is an error), URL key sets with a first fetch
// whose failure is only logged — that provider refuses with ReasonNoKeys
// until a background retry succeeds.
func NewVerifier(ctx context.Context, providers []Provider, opts Options) (*Verifier, error) {
	if len(providers) == 0 {
		return nil, fmt.Errorf("auth: no JWT providers configured")
	}
	v := &Verifier{
		byIssuer:      make(map[string]*provider, len(providers)),
		allowedAny:    make(map[string]bool),
		client:        opts.HTTPClient,
		now:           opts.Now,
		minRefetch:    opts.MinRefetchInterval,
		maxTokenBytes: opts.MaxTokenBytes,
		logf:          opts.Logf,
		onFetch:       opts.OnFetch,
	}
	if opts.NewTimer != nil {
		v.newTimer = alarm.NewTimer(opts.NewTimer)
	}
	if v.client == nil {
		v.client = &http.Client{Timeout: defaultFetchTimeout}
	}
	v.fetchTimeout = v.client.Timeout
	if v.fetchTimeout <= 0 {
		v.fetchTimeout = defaultFetchTimeout
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.minRefetch <= 0 {
		v.minRefetch = defaultMinRefetch
	}
	if v.maxTokenBytes <= 0 {
		v.maxTokenBytes = defaultMaxTokenBytes
	}
	if v.logf == nil {
		v.logf = discardLogf
	}
	switch {
	case opts.CacheSize == 0:
		v.cache = newTokenCache(defaultCacheSize)
	case opts.CacheSize > 0:
		v.cache = newTokenCache(opts.CacheSize)
	}

	names := make(map[string]bool, len(providers))
	for i := 0; i < len(providers); i++ {
		p, err := newProvider(providers[i])
		if err != nil {
			return nil, fmt.Errorf("auth: provider %d (%q): %w", i, providers[i].Name, err)
		}
		if names[p.name] {
			return nil, fmt.Errorf("auth: duplicate provider name %q", p.name)
		}
		names[p.name] = true
		if _, dup := v.byIssuer[p.issuer]; dup {
			return nil, fmt.Errorf("auth: providers %q and another share issuer %q", p.name, p.issuer)
		}
		v.byIssuer[p.issuer] = p
		for alg := range p.allowed {
			v.allowedAny[alg] = true
		}
		v.providers = append(v.providers, p)
	}
	methods := make([]string, 0, len(v.allowedAny))
	for alg := range v.allowedAny {
		methods = append(methods, alg)
	}
	v.parser = jwt.NewParser(jwt.WithValidMethods(methods), jwt.WithoutClaimsValidation(), jwt.WithStrictDecoding())

	// Static key sets, and those of issuers in this process: loaded now, an
	// error stops startup.
	for i := 0; i < len(v.providers); i++ {
		if err := v.loadStatic(v.providers[i], providers[i], opts.InProcessJWKS); err != nil {
			return nil, fmt.Errorf("auth: provider %q: %w", v.providers[i].name, err)
		}
	}

	v.ctx, v.cancel = context.WithCancel(context.Background())
	for i := 0; i < len(v.providers); i++ {
		p := v.providers[i]
		if p.url == "" {
			continue
		}
		if strings.HasPrefix(p.url, "http://") {
			v.warnf("auth: provider %q fetches keys over plain http (%s); use https outside a trusted network", p.name, p.url)
		}
		p.lastAttempt = v.now()
		if err := v.fetch(ctx, p); err != nil && v.onFetch == nil {
			v.warnf("auth: provider %q: first key fetch failed, refusing its tokens until keys arrive (retry in %s): %v", p.name, firstRetry, err)
		}
		p.alarm = alarm.New(v.newTimer)
		v.wg.Add(1)
		go v.refreshLoop(p)
	}
	return v, nil
}

func discardLogf(format string, args ...any) {}

// loadStatic installs a provider's file or inline key set and the key set
// of its issuer when that issuer signs in this process; a URL provider of
// such an issuer stops being one.
func (v *Verifier) loadStatic(p *provider, src Provider, inProcess map[string][]byte) error {
	var keys map[string]JWK
	switch {
	case src.JWKSFile != "":
		b, err := keyfile.Read(src.JWKSFile)
		if err != nil {
			return fmt.Errorf("read JWKS file: %w", err)
		}
		if keys, err = ParseJWKS(b); err != nil {
			return err
		}
	case src.JWKSInline != "":
		var err error
		if keys, err = ParseJWKS([]byte(src.JWKSInline)); err != nil {
			return err
		}
	}
	if doc, ok := inProcess[p.issuer]; ok && p.secret == nil {
		own, err := ParseJWKS(doc)
		if err != nil {
			return fmt.Errorf("keys of the in-process issuer %q: %w", p.issuer, err)
		}
		if keys == nil {
			keys = make(map[string]JWK, len(own))
		}
		for kid, k := range own {
			if _, dup := keys[kid]; !dup {
				keys[kid] = k
			}
		}
		if p.url != "" {
			v.warnf("auth: provider %q: keys of issuer %q come from this process; %s is not fetched", p.name, p.issuer, p.url)
			p.url = ""
		}
	}
	if keys == nil {
		return nil
	}
	if err := p.checkKeysUsable(keys); err != nil {
		return err
	}
	p.install(keys)
	return nil
}

// WithoutKeys lists the providers that have no key set yet (URL providers
// whose first fetch has not succeeded): they refuse every token with
// ReasonNoKeys until one does.
func (v *Verifier) WithoutKeys() []string {
	var names []string
	for i := 0; i < len(v.providers); i++ {
		p := v.providers[i]
		if p.secret == nil && !p.hasKeys() {
			names = append(names, p.name)
		}
	}
	return names
}

// warnf formats before calling Logf so Logf always receives exactly one
// argument: Yaegi v0.16.1 panics when an interpreted call passes two or more
// variadic arguments to a func-typed value supplied by the host.
func (v *Verifier) warnf(format string, args ...any) {
	v.logf("%s", fmt.Sprintf(format, args...))
}

// Close stops background refreshes and waits for them. Verify keeps working
// with the last keys.
func (v *Verifier) Close() {
	v.closeOnce.Do(v.stop)
}

func (v *Verifier) stop() {
	v.cancel()
	for i := 0; i < len(v.providers); i++ {
		p := v.providers[i]
		p.fetchMu.Lock()
		p.closed = true
		p.fetched.Broadcast() // callers waiting for a fetch give up
		p.fetchMu.Unlock()
		if p.alarm != nil {
			p.alarm.Stop()
		}
	}
	v.wg.Wait()
}

// Verify checks a compact JWS token and returns the caller's identity, or the
// reason it is refused. Passing tokens are cached (by hash) until they expire
// or their provider's keys change.
func (v *Verifier) Verify(ctx context.Context, token string) (Identity, Reason) {
	if len(token) == 0 || len(token) > v.maxTokenBytes {
		return Identity{}, ReasonMalformed
	}
	if v.cache == nil {
		id, _, reason := verifyToken(v, ctx, token)
		return id, reason
	}
	// A cache hit is the common case: a function call and compiled calls
	// (hash, lock, clock) under the Traefik plugin's interpreter; the
	// verification is in a function of its own.
	sum := sha256.Sum256([]byte(token))
	if e := cached(v.cache, &sum, v.now()); e != nil {
		return e.id, ReasonOK
	}
	return verifyAndCache(v, ctx, token, &sum)
}

// verifyAndCache verifies a token the cache does not hold, and caches it.
func verifyAndCache(v *Verifier, ctx context.Context, token string, sum *[32]byte) (Identity, Reason) {
	id, entry, reason := verifyToken(v, ctx, token)
	if reason == ReasonOK {
		cachePut(v.cache, sum, entry, v.now())
	}
	return id, reason
}

// keySelection carries what the key function learnt out of jwt's Parse.
type keySelection struct {
	called bool
	reason Reason
	prov   *provider
	gen    int64
}

// verifyToken is Verify without the cache.
func verifyToken(v *Verifier, ctx context.Context, token string) (Identity, *cacheEntry, Reason) {
	sel := &keySelection{}
	keyFunc := func(t *jwt.Token) (any, error) {
		return selectKey(v, ctx, t, sel)
	}
	tok, err := v.parser.Parse(token, keyFunc)
	if err != nil {
		switch {
		case sel.reason != ReasonOK:
			return Identity{}, nil, sel.reason
		case !sel.called:
			return Identity{}, nil, classifyEarlyFailure(v, token)
		}
		return Identity{}, nil, ReasonSignature
	}
	if tok == nil || !tok.Valid || sel.prov == nil {
		return Identity{}, nil, ReasonSignature
	}
	claims, ok := tok.Claims.(jwt.MapClaims)
	if !ok {
		return Identity{}, nil, ReasonMalformed
	}
	id, notAfter, reason := checkClaims(sel.prov, claims, v.now())
	if reason != ReasonOK {
		return Identity{}, nil, reason
	}
	return id, &cacheEntry{id: id, notAfter: notAfter, prov: sel.prov, gen: sel.gen}, ReasonOK
}

// selectKey is the jwt.Keyfunc: it picks the provider by the (not yet
// verified) issuer, enforces that provider's allow-list, and picks a key
// whose type fits the algorithm.
func selectKey(v *Verifier, ctx context.Context, t *jwt.Token, sel *keySelection) (any, error) {
	sel.called = true
	claims, ok := t.Claims.(jwt.MapClaims)
	if !ok {
		sel.reason = ReasonMalformed
		return nil, errRefused
	}
	iss, _ := claims["iss"].(string)
	p := v.byIssuer[iss]
	if p == nil {
		sel.reason = ReasonIssuer
		return nil, errRefused
	}
	alg, _ := t.Header["alg"].(string)
	if !p.allowed[alg] {
		sel.reason = ReasonAlgorithm
		return nil, errRefused
	}
	// RFC 7515 §4.1.11: a token naming critical extensions must be refused
	// by a verifier that implements none of them.
	if _, present := t.Header["crit"]; present {
		sel.reason = ReasonMalformed
		return nil, errRefused
	}
	kid := ""
	hasKid := false
	if raw, present := t.Header["kid"]; present {
		s, isString := raw.(string)
		if !isString {
			sel.reason = ReasonMalformed
			return nil, errRefused
		}
		kid, hasKid = s, true
	}
	if p.secret != nil {
		sel.prov = p
		sel.gen = p.gen.Load()
		return p.secret, nil
	}
	gen, key, reason := lookupKey(p, alg, kid, hasKid)
	if reason == ReasonUnknownKey || reason == ReasonNoKeys {
		if p.url != "" && refetch(v, ctx, p) {
			gen, key, reason = lookupKey(p, alg, kid, hasKid)
		}
	}
	if reason != ReasonOK {
		sel.reason = reason
		return nil, errRefused
	}
	sel.prov, sel.gen = p, gen
	return key, nil
}

// classifyEarlyFailure explains a parse that failed before a key was chosen:
// an algorithm outside every allow-list (including "none" and names jwt does
// not know), or else a malformed token.
func classifyEarlyFailure(v *Verifier, token string) Reason {
	dot := strings.IndexByte(token, '.')
	if dot < 0 {
		return ReasonMalformed
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token[:dot])
	if err != nil {
		return ReasonMalformed
	}
	var header map[string]any
	if err := json.Unmarshal(raw, &header); err != nil {
		return ReasonMalformed
	}
	alg, isString := header["alg"].(string)
	if !isString {
		return ReasonMalformed
	}
	if !v.allowedAny[alg] {
		return ReasonAlgorithm
	}
	return ReasonMalformed
}

// newProvider validates one provider's configuration.
func newProvider(cfg Provider) (*provider, error) {
	p := &provider{
		name:       cfg.Name,
		issuer:     cfg.Issuer,
		audiences:  append([]string(nil), cfg.Audiences...),
		allowed:    make(map[string]bool, len(cfg.Algorithms)),
		url:        cfg.JWKSURL,
		refresh:    cfg.Refresh,
		skew:       cfg.ClockSkew,
		scopeClaim: cfg.ScopeClaim,
	}
	p.fetched = sync.NewCond(&p.fetchMu)
	if p.name == "" {
		return nil, fmt.Errorf("name is required")
	}
	if p.issuer == "" {
		return nil, fmt.Errorf("issuer is required")
	}
	// Without an audience check, any token the issuer mints for any other
	// service would be accepted here.
	if len(p.audiences) == 0 {
		return nil, fmt.Errorf("at least one audience is required")
	}
	for i := 0; i < len(p.audiences); i++ {
		if p.audiences[i] == "" {
			return nil, fmt.Errorf("empty audience")
		}
	}
	if p.skew < 0 {
		return nil, fmt.Errorf("negative clock skew %v", p.skew)
	}
	if p.refresh < 0 {
		return nil, fmt.Errorf("negative refresh period %v", p.refresh)
	}
	if p.refresh == 0 {
		p.refresh = defaultRefresh
	}
	if p.scopeClaim == "" {
		p.scopeClaim = defaultScopeClaim
	}
	sources := 0
	if cfg.JWKSFile != "" {
		sources++
	}
	if cfg.JWKSURL != "" {
		sources++
		u, err := url.Parse(cfg.JWKSURL)
		if err != nil {
			return nil, fmt.Errorf("jwks url: %w", err)
		}
		if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("jwks url %q: want an absolute http(s) URL", cfg.JWKSURL)
		}
	}
	if cfg.JWKSInline != "" {
		sources++
	}
	if len(cfg.Secret) > 0 {
		sources++
	}
	if sources != 1 {
		return nil, fmt.Errorf("exactly one key source (jwks file, url, inline, or secret) is required, got %d", sources)
	}
	if len(cfg.Algorithms) == 0 {
		return nil, fmt.Errorf("algorithms allow-list is empty")
	}
	for i := 0; i < len(cfg.Algorithms); i++ {
		alg := cfg.Algorithms[i]
		family := algorithmFamily(alg)
		if family == "" {
			return nil, fmt.Errorf("algorithm %q is not supported", alg)
		}
		if family == "oct" {
			if len(cfg.Secret) == 0 {
				return nil, fmt.Errorf("algorithm %s needs a shared secret", alg)
			}
			if need := hmacKeyBytes(alg); len(cfg.Secret) < need {
				return nil, fmt.Errorf("secret of %d bytes is too short for %s (at least %d)", len(cfg.Secret), alg, need)
			}
		} else if len(cfg.Secret) > 0 {
			return nil, fmt.Errorf("algorithm %s cannot verify with a shared secret", alg)
		}
		p.allowed[alg] = true
	}
	if len(cfg.Secret) > 0 {
		p.secret = append([]byte(nil), cfg.Secret...)
	}
	return p, nil
}

// hmacKeyBytes is the minimum HMAC key length: the hash output size.
func hmacKeyBytes(alg string) int {
	switch alg {
	case "HS384":
		return 48
	case "HS512":
		return 64
	}
	return 32
}
