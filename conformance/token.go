package conformance

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/contentguard/contentguard/internal/keyfile"
)

// Token describes a JWT a step sends. Zero values take the fixture defaults:
// ES256 with key es256-1, the conformance issuer and audience, sub "alice",
// expiring in ten minutes.
type Token struct {
	Alg   string   `yaml:"alg"` // ES256 (default), RS256, EdDSA, none, HS256-pubkey (signed with the RSA public key), ES256-rogue
	Kid   string   `yaml:"kid"` // override the key id header ("-" removes it)
	Iss   string   `yaml:"iss"`
	Aud   []string `yaml:"aud"`
	Sub   string   `yaml:"sub"`
	Scope string   `yaml:"scope"`
	Scp   []string `yaml:"scp"`
	// Exp and Nbf are offsets from now: "-1m" expired, "+5m".
	Exp    string         `yaml:"exp"`
	Nbf    string         `yaml:"nbf"`
	Claims map[string]any `yaml:"claims"`
	// Mutate damages the token: truncate, badBase64, pad16k, flipSignature.
	Mutate string `yaml:"mutate"`
	// Scheme replaces "Bearer" in the Authorization header.
	Scheme string `yaml:"scheme"`
}

// Fixture identities of the conformance policies.
const (
	Issuer   = "https://auth.contentguard.test"
	Audience = "content-api"
)

// Minter signs the tokens that cases describe with the fixture keys.
type Minter struct {
	es256, rogue *ecdsa.PrivateKey
	rs256        *rsa.PrivateKey
	rsaPubPEM    []byte
	ed25519      ed25519.PrivateKey
	now          func() time.Time
}

// NewMinter loads the fixture keys from dir.
func NewMinter(dir string) (*Minter, error) {
	m := &Minter{now: time.Now}
	load := func(name string) (crypto.Signer, error) { return keyfile.ReadPrivateKey(filepath.Join(dir, name)) }
	k, err := load("es256.pem")
	if err != nil {
		return nil, err
	}
	m.es256 = k.(*ecdsa.PrivateKey)
	if k, err = load("es256-rogue.pem"); err != nil {
		return nil, err
	}
	m.rogue = k.(*ecdsa.PrivateKey)
	if k, err = load("rs256.pem"); err != nil {
		return nil, err
	}
	m.rs256 = k.(*rsa.PrivateKey)
	if k, err = load("ed25519.pem"); err != nil {
		return nil, err
	}
	m.ed25519 = k.(ed25519.PrivateKey)
	if m.rsaPubPEM, err = keyfile.Read(filepath.Join(dir, "rs256.pub.pem")); err != nil {
		return nil, err
	}
	return m, nil
}

// At returns a Minter like m that mints at the time now returns: the
// clock of the instance the tokens are for.
func (m *Minter) At(now func() time.Time) *Minter {
	c := *m
	c.now = now
	return &c
}

// Resolve turns a case's request into the request a plane sends.
func (m *Minter) Resolve(r Request) (SentRequest, error) {
	s := SentRequest{Method: r.Method, Path: r.Path, Header: http.Header{}, Peer: r.Peer, BodyBytes: r.BodyBytes,
		Proto: r.Proto, NoHost: r.NoHost, EmptyLines: r.EmptyLines}
	if s.Method == "" {
		s.Method = http.MethodGet
	}
	if s.Proto == "" {
		s.Proto = "HTTP/1.1"
	}
	if s.Peer == "" {
		s.Peer = "127.0.0.1"
	}
	for k, v := range r.Header {
		s.Header.Set(k, expand(v))
	}
	if r.Token != nil {
		tok, err := m.Mint(*r.Token)
		if err != nil {
			return s, err
		}
		scheme := r.Token.Scheme
		if scheme == "" {
			scheme = "Bearer"
		}
		s.Header.Set("Authorization", scheme+" "+tok)
	}
	// After the token: an Authorization in multiHeaders follows it.
	for k, vs := range r.Multi {
		for _, v := range vs {
			s.Header.Add(k, v)
		}
	}
	return s, nil
}

// expand replaces "@@PAD:N@@" with N letters, for long header values.
func expand(v string) string {
	if !strings.HasPrefix(v, "@@PAD:") || !strings.HasSuffix(v, "@@") {
		return v
	}
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(v, "@@PAD:"), "@@"))
	if err != nil || n < 0 || n > 1<<20 {
		return v
	}
	return strings.Repeat("a", n)
}

// Mint signs a token as described.
func (m *Minter) Mint(t Token) (string, error) {
	now := m.now()
	claims := jwt.MapClaims{"iss": Issuer, "aud": Audience, "sub": "alice", "iat": now.Unix()}
	if t.Iss != "" {
		claims["iss"] = t.Iss
	}
	if len(t.Aud) == 1 {
		claims["aud"] = t.Aud[0]
	} else if len(t.Aud) > 1 {
		claims["aud"] = t.Aud
	}
	if t.Sub != "" {
		claims["sub"] = t.Sub
	}
	if t.Scope != "" {
		claims["scope"] = t.Scope
	}
	if len(t.Scp) > 0 {
		claims["scp"] = t.Scp
	}
	exp := 10 * time.Minute
	if t.Exp != "" {
		d, err := time.ParseDuration(strings.TrimPrefix(t.Exp, "+"))
		if err != nil {
			return "", fmt.Errorf("token exp: %w", err)
		}
		exp = d
	}
	claims["exp"] = now.Add(exp).Unix()
	if t.Nbf != "" {
		d, err := time.ParseDuration(strings.TrimPrefix(t.Nbf, "+"))
		if err != nil {
			return "", fmt.Errorf("token nbf: %w", err)
		}
		claims["nbf"] = now.Add(d).Unix()
	}
	for k, v := range t.Claims {
		claims[k] = v
	}

	var method jwt.SigningMethod
	var key any
	kid := ""
	switch t.Alg {
	case "", "ES256":
		method, key, kid = jwt.SigningMethodES256, m.es256, "es256-1"
	case "ES256-rogue":
		// A key the provider never published, under a published kid.
		method, key, kid = jwt.SigningMethodES256, m.rogue, "es256-1"
	case "RS256":
		method, key, kid = jwt.SigningMethodRS256, m.rs256, "rs256-1"
	case "EdDSA":
		method, key, kid = jwt.SigningMethodEdDSA, m.ed25519, "ed25519-1"
	case "HS256-pubkey":
		// The algorithm-confusion attack: HMAC keyed with the RSA public key.
		method, key, kid = jwt.SigningMethodHS256, m.rsaPubPEM, "rs256-1"
	case "none":
		method, key = jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType
	default:
		return "", fmt.Errorf("unknown token alg %q", t.Alg)
	}
	if t.Kid == "-" {
		kid = ""
	} else if t.Kid != "" {
		kid = t.Kid
	}
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("sign %s token: %w", method.Alg(), err)
	}
	switch t.Mutate {
	case "":
	case "truncate":
		s = s[:len(s)*2/3]
	case "badBase64":
		parts := strings.SplitN(s, ".", 3)
		s = parts[0] + ".!!not*base64!!." + parts[2]
	case "pad16k":
		s += strings.Repeat("A", 16<<10)
	case "flipSignature":
		parts := strings.SplitN(s, ".", 3)
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		sig[len(sig)/2] ^= 0x40
		s = parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
	default:
		return "", fmt.Errorf("unknown token mutation %q", t.Mutate)
	}
	return s, nil
}
