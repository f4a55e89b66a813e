// Package issuer is contentguard's OAuth2 token endpoint (RFC 6749): the
// password, client_credentials and refresh_token grants against the users
// and clients of a policy's spec.tokenIssuer, ES256 access tokens that the
// same policy's JWT provider verifies, rotating refresh tokens with reuse
// detection, RFC 7009 revocation, and the JWKS and discovery documents.
//
// Access tokens are stateless JWTs: they live until exp (accessTTL) and
// revocation does not reach them. Refresh tokens are opaque 256-bit random
// strings, stored only as SHA-256 hashes, and rotate on every use; presenting
// a spent one again revokes its whole family (the token it was rotated into
// and everything after), as OAuth 2.0 Security BCP §4.14 recommends.
//
// The package is native only (bcrypt, Redis): the sidecar serves it behind
// the engine, so the token route is rate limited like any other.
package issuer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/contentguard/contentguard/edge/auth"
	"github.com/contentguard/contentguard/internal/keyfile"
	"github.com/contentguard/contentguard/policy"
)

// Well-known paths the issuer serves besides the token and revoke paths.
const (
	JWKSPath      = "/.well-known/jwks.json"
	DiscoveryPath = "/.well-known/openid-configuration"
)

// Grant types.
const (
	GrantPassword          = "password"
	GrantClientCredentials = "client_credentials"
	GrantRefreshToken      = "refresh_token"
)

// Options are the parts of an issuer that do not come from the policy.
type Options struct {
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Store keeps refresh tokens; default NewMemory(0). Replicas share one
	// Redis store (NewRedis) so that rotation and reuse detection agree.
	Store Store
	// Logger receives grant outcomes (never secrets); default slog.Default().
	Logger *slog.Logger
	// Registry, if set, receives token_grants_total and
	// refresh_token_reuse_total (the sidecar's registry, on its admin
	// /metrics).
	Registry prometheus.Registerer
	// MaxHashing bounds concurrent bcrypt comparisons (each takes tens of
	// milliseconds of CPU); others wait. Default 2×GOMAXPROCS.
	MaxHashing int
}

// Issuer serves one policy's token endpoint. It is safe for concurrent use.
type Issuer struct {
	cfg   policy.TokenIssuer
	now   func() time.Time
	store Store
	log   *slog.Logger

	key        *ecdsa.PrivateKey
	kid        string
	ephemeral  bool
	jwks       []byte
	discovery  []byte
	revokePath string

	users, clients         map[string]principal
	dummyUser, dummyClient []byte
	hashing                chan struct{}
	metrics                *metrics
}

type principal struct {
	name   string
	kind   string // "user" or "client"
	hash   []byte
	scopes []string
}

// New builds the issuer of p.Spec.TokenIssuer. It reads the signing key
// (relative to p.BaseDir) or, when the policy names none, generates an
// ephemeral one and logs a warning: tokens then die with the process, and
// only this process (given InProcessJWKS) or a JWT provider reading this
// issuer's JWKS URL can verify them.
func New(ctx context.Context, p *policy.Policy, opts Options) (*Issuer, error) {
	if p == nil || p.Spec.TokenIssuer == nil {
		return nil, errors.New("issuer: the policy has no spec.tokenIssuer")
	}
	cfg := *p.Spec.TokenIssuer
	if cfg.Path == "" {
		cfg.Path = policy.DefaultTokenPath
	}
	if cfg.AccessTTL <= 0 {
		cfg.AccessTTL = policy.DefaultAccessTTL
	}
	if cfg.RefreshTTL <= 0 {
		cfg.RefreshTTL = policy.DefaultRefreshTTL
	}
	i := &Issuer{
		cfg:        cfg,
		now:        opts.Now,
		store:      opts.Store,
		log:        opts.Logger,
		revokePath: RevokePath(cfg.Path),
		users:      map[string]principal{},
		clients:    map[string]principal{},
	}
	if i.now == nil {
		i.now = time.Now
	}
	if i.store == nil {
		i.store = NewMemory(0)
	}
	if i.log == nil {
		i.log = slog.Default()
	}
	var err error
	n := opts.MaxHashing
	if n <= 0 {
		n = 2 * runtime.GOMAXPROCS(0)
	}
	i.hashing = make(chan struct{}, n)
	if i.metrics, err = newMetrics(opts.Registry); err != nil {
		return nil, err
	}

	if i.key, i.ephemeral, err = loadSigningKey(p.BaseDir, cfg.SigningKey); err != nil {
		return nil, err
	}
	if i.ephemeral {
		i.log.Warn("issuer: no spec.tokenIssuer.signingKey: signing with an ephemeral key; tokens die with this process and only verifiers reading "+JWKSPath+" accept them",
			"issuer", cfg.Issuer)
	}
	if i.kid, err = auth.Thumbprint(&i.key.PublicKey); err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	if i.jwks, err = auth.MarshalJWKS(map[string]crypto.PublicKey{i.kid: &i.key.PublicKey}); err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	if i.dummyUser, err = addPrincipals(i.users, cfg.Users, "user"); err != nil {
		return nil, err
	}
	if i.dummyClient, err = addPrincipals(i.clients, cfg.Clients, "client"); err != nil {
		return nil, err
	}
	if i.discovery, err = i.discoveryDocument(); err != nil {
		return nil, err
	}
	if !acceptedBy(p, cfg) {
		i.log.Warn("issuer: no JWT provider of the policy has this issuer and audience; its tokens will be refused by the edge",
			"issuer", cfg.Issuer, "audience", cfg.Audience)
	}
	return i, nil
}

// RevokePath is the RFC 7009 revocation path beside a token path:
// /api/v1/auth/token → /api/v1/auth/revoke.
func RevokePath(tokenPath string) string {
	return path.Join(path.Dir(tokenPath), "revoke")
}

// Paths lists the paths Handler serves: token, revoke, JWKS, discovery.
func (i *Issuer) Paths() []string {
	return []string{i.cfg.Path, i.revokePath, JWKSPath, DiscoveryPath}
}

// KeyID is the signing key's RFC 7638 thumbprint, the kid of every token.
func (i *Issuer) KeyID() string { return i.kid }

// JWKS returns the public key set document.
func (i *Issuer) JWKS() []byte { return append([]byte(nil), i.jwks...) }

// InProcessJWKS is what sidecar.Options.InProcessJWKS takes for this
// issuer: its public keys by its "iss", so that the policy's JWT provider of
// this issuer accepts its tokens from the first request, without fetching
// JWKSPath from a listener that may not be up yet.
func (i *Issuer) InProcessJWKS() map[string][]byte {
	return map[string][]byte{i.cfg.Issuer: i.JWKS()}
}

// Ephemeral reports whether the signing key was generated at start.
func (i *Issuer) Ephemeral() bool { return i.ephemeral }

func acceptedBy(p *policy.Policy, cfg policy.TokenIssuer) bool {
	for _, pr := range p.Spec.Auth.JWT.Providers {
		if pr.Issuer != cfg.Issuer {
			continue
		}
		for _, a := range pr.Audiences {
			if a == cfg.Audience {
				return true
			}
		}
	}
	return false
}

// addPrincipals indexes principals and returns a dummy hash at their highest
// bcrypt cost, compared against when a name is unknown so that the answer
// takes as long as for a known name with a wrong secret.
func addPrincipals(into map[string]principal, list []policy.Principal, kind string) ([]byte, error) {
	cost := bcrypt.DefaultCost
	for idx, pr := range list {
		c, err := bcrypt.Cost([]byte(pr.Bcrypt))
		if err != nil {
			return nil, fmt.Errorf("issuer: %s %q: bad bcrypt hash: %w", kind, pr.Name, err)
		}
		if idx == 0 || c > cost {
			cost = c
		}
		into[pr.Name] = principal{name: pr.Name, kind: kind, hash: []byte(pr.Bcrypt), scopes: pr.Scopes}
	}
	secret := make([]byte, 18)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("issuer: dummy secret: %w", err)
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte(base64.RawURLEncoding.EncodeToString(secret)), cost)
	if err != nil {
		return nil, fmt.Errorf("issuer: dummy hash: %w", err)
	}
	return dummy, nil
}

// loadSigningKey reads an ECDSA P-256 key (PKCS#8 or SEC 1 PEM) from a file
// or inline PEM; without either it generates one (ephemeral = true).
func loadSigningKey(base string, ks policy.KeySource) (*ecdsa.PrivateKey, bool, error) {
	var data []byte
	switch {
	case ks.File != "":
		b, err := keyfile.Read(keyfile.Resolve(base, ks.File))
		if err != nil {
			return nil, false, fmt.Errorf("issuer: signing key: %w", err)
		}
		data = b
	case ks.Inline != "":
		data = []byte(ks.Inline)
	default:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, false, fmt.Errorf("issuer: generate signing key: %w", err)
		}
		return k, true, nil
	}
	k, err := ParseSigningKey(data)
	if err != nil {
		return nil, false, fmt.Errorf("issuer: signing key: %w", err)
	}
	return k, false, nil
}

// ParseSigningKey decodes an EC P-256 private key from PEM (PKCS#8 "PRIVATE
// KEY" or SEC 1 "EC PRIVATE KEY", as keyfile.ParsePrivateKey reads them).
// Other key types are refused: the issuer signs ES256 only.
func ParseSigningKey(data []byte) (*ecdsa.PrivateKey, error) {
	key, err := keyfile.ParsePrivateKey(data)
	if err != nil {
		return nil, err
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("want an EC P-256 key for ES256, got %T", key)
	}
	return ec, nil
}
