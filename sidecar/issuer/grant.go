package issuer

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
)

// TokenRequest is a token request's parameters (RFC 6749 §4.3, §4.4, §6).
type TokenRequest struct {
	GrantType    string
	Username     string
	Password     string
	ClientID     string
	ClientSecret string
	// BasicAuth says the client credentials came in an Authorization:
	// Basic header; a failed client authentication then answers 401 with
	// WWW-Authenticate (RFC 6749 §5.2).
	BasicAuth    bool
	RefreshToken string
	Scope        string
}

// TokenResponse is a successful answer (RFC 6749 §5.1).
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// Error is an RFC 6749 §5.2 error answer.
type Error struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	Status      int    `json:"-"`
	// Basic asks for WWW-Authenticate: Basic (a 401 for Basic client auth).
	Basic bool `json:"-"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

func oauthError(status int, code, desc string) *Error {
	return &Error{Code: code, Description: desc, Status: status}
}

// Token runs one grant. It is the functional core of the token endpoint;
// Handler only translates HTTP to and from it.
func (i *Issuer) Token(ctx context.Context, req TokenRequest) (*TokenResponse, *Error) {
	resp, e := i.token(ctx, req)
	i.metrics.grant(req.GrantType, e)
	return resp, e
}

func (i *Issuer) token(ctx context.Context, req TokenRequest) (*TokenResponse, *Error) {
	scopes, ok := parseScope(req.Scope)
	if !ok {
		return nil, oauthError(http.StatusBadRequest, "invalid_scope", "scope holds characters outside RFC 6749 §3.3")
	}
	switch req.GrantType {
	case GrantPassword:
		return i.passwordGrant(ctx, req, scopes)
	case GrantClientCredentials:
		return i.clientGrant(ctx, req, scopes)
	case GrantRefreshToken:
		return i.refreshGrant(ctx, req, scopes)
	case "":
		return nil, oauthError(http.StatusBadRequest, "invalid_request", "grant_type is required")
	}
	return nil, oauthError(http.StatusBadRequest, "unsupported_grant_type", "supported: password, client_credentials, refresh_token")
}

func (i *Issuer) passwordGrant(ctx context.Context, req TokenRequest, scopes []string) (*TokenResponse, *Error) {
	if req.Username == "" || req.Password == "" {
		return nil, oauthError(http.StatusBadRequest, "invalid_request", "username and password are required")
	}
	// A confidential client may also authenticate; if it tries, it must succeed.
	if req.ClientID != "" || req.ClientSecret != "" {
		if _, e := i.authenticateClient(ctx, req); e != nil {
			return nil, e
		}
	}
	u, found := i.users[req.Username]
	hash := i.dummyUser
	if found {
		hash = u.hash
	}
	match, err := i.compare(ctx, hash, req.Password)
	if err != nil {
		return nil, oauthError(http.StatusServiceUnavailable, "temporarily_unavailable", "the request was cancelled while waiting to verify the password")
	}
	if !found || !match {
		i.log.InfoContext(ctx, "issuer: grant refused", "grant", GrantPassword, "reason", "bad credentials")
		return nil, oauthError(http.StatusBadRequest, "invalid_grant", "the username or password is wrong")
	}
	granted, e := grantScopes(u.scopes, scopes)
	if e != nil {
		return nil, e
	}
	return i.issue(ctx, u, granted, true, "")
}

func (i *Issuer) clientGrant(ctx context.Context, req TokenRequest, scopes []string) (*TokenResponse, *Error) {
	c, e := i.authenticateClient(ctx, req)
	if e != nil {
		return nil, e
	}
	granted, e := grantScopes(c.scopes, scopes)
	if e != nil {
		return nil, e
	}
	// RFC 6749 §4.4.3: no refresh token for client_credentials.
	return i.issue(ctx, c, granted, false, "")
}

func (i *Issuer) authenticateClient(ctx context.Context, req TokenRequest) (principal, *Error) {
	fail := func(desc string) *Error {
		if req.BasicAuth {
			return &Error{Code: "invalid_client", Description: desc, Status: http.StatusUnauthorized, Basic: true}
		}
		return oauthError(http.StatusBadRequest, "invalid_client", desc)
	}
	if req.ClientID == "" || req.ClientSecret == "" {
		return principal{}, fail("client authentication is required: client_id and client_secret")
	}
	c, found := i.clients[req.ClientID]
	hash := i.dummyClient
	if found {
		hash = c.hash
	}
	match, err := i.compare(ctx, hash, req.ClientSecret)
	if err != nil {
		return principal{}, oauthError(http.StatusServiceUnavailable, "temporarily_unavailable", "the request was cancelled while waiting to verify the client")
	}
	if !found || !match {
		i.log.InfoContext(ctx, "issuer: client authentication failed", "reason", "bad credentials")
		return principal{}, fail("client authentication failed")
	}
	return c, nil
}

func (i *Issuer) refreshGrant(ctx context.Context, req TokenRequest, scopes []string) (*TokenResponse, *Error) {
	if req.RefreshToken == "" {
		return nil, oauthError(http.StatusBadRequest, "invalid_request", "refresh_token is required")
	}
	if req.ClientID != "" || req.ClientSecret != "" {
		if _, e := i.authenticateClient(ctx, req); e != nil {
			return nil, e
		}
	}
	next, err := newRefreshToken()
	if err != nil {
		return nil, oauthError(http.StatusInternalServerError, "server_error", "could not generate a token")
	}
	now := i.now()
	rec, err := i.store.Rotate(ctx, HashToken(req.RefreshToken), HashToken(next), now.Add(i.cfg.RefreshTTL), now)
	switch {
	case errors.Is(err, ErrReused):
		i.metrics.reuse.Inc()
		i.log.WarnContext(ctx, "issuer: refresh token reused; family revoked", "grant", GrantRefreshToken)
		return nil, oauthError(http.StatusBadRequest, "invalid_grant", "the refresh token was already used; its session is revoked")
	case errors.Is(err, ErrInvalidToken):
		return nil, oauthError(http.StatusBadRequest, "invalid_grant", "the refresh token is unknown, expired or revoked")
	case err != nil:
		i.log.ErrorContext(ctx, "issuer: refresh store", "err", err)
		return nil, oauthError(http.StatusServiceUnavailable, "temporarily_unavailable", "the token store is unavailable")
	}
	// The principal must still exist, and keeps at most the scopes the
	// policy gives it now (a reload may have taken some away).
	u, found := i.users[rec.Subject]
	if rec.Kind != "user" || !found {
		_ = i.store.Revoke(ctx, HashToken(next), now)
		return nil, oauthError(http.StatusBadRequest, "invalid_grant", "the refresh token's user no longer exists")
	}
	allowed := intersect(rec.Scopes, u.scopes)
	granted, e := grantScopes(allowed, scopes)
	if e != nil {
		// The presented token is spent and its successor is never handed
		// out: the session ends. Revoke the family so nothing lingers.
		_ = i.store.Revoke(ctx, HashToken(next), now)
		return nil, e
	}
	resp, e := i.issue(ctx, u, granted, false, rec.Family)
	if e != nil {
		return nil, e
	}
	resp.RefreshToken = next
	return resp, nil
}

// issue mints an access token, and a refresh token starting a new family
// when withRefresh is set.
func (i *Issuer) issue(ctx context.Context, p principal, scopes []string, withRefresh bool, family string) (*TokenResponse, *Error) {
	now := i.now()
	access, err := i.mint(p, scopes, now)
	if err != nil {
		i.log.ErrorContext(ctx, "issuer: sign access token", "err", err)
		return nil, oauthError(http.StatusInternalServerError, "server_error", "could not sign the token")
	}
	resp := &TokenResponse{
		AccessToken: access,
		TokenType:   "Bearer",
		ExpiresIn:   int64(i.cfg.AccessTTL / time.Second),
		Scope:       strings.Join(scopes, " "),
	}
	if withRefresh {
		rt, err := newRefreshToken()
		if err == nil {
			family, err = randomHex(16)
		}
		if err == nil {
			err = i.store.Create(ctx, HashToken(rt), Record{
				Family: family, Subject: p.name, Kind: p.kind, Scopes: scopes, Expires: now.Add(i.cfg.RefreshTTL),
			}, now)
		}
		if err != nil {
			i.log.ErrorContext(ctx, "issuer: store refresh token", "err", err)
			return nil, oauthError(http.StatusServiceUnavailable, "temporarily_unavailable", "the token store is unavailable")
		}
		resp.RefreshToken = rt
	}
	i.log.InfoContext(ctx, "issuer: token issued", "kind", p.kind, "sub", p.name, "scope", resp.Scope, "refresh", resp.RefreshToken != "", "family", family)
	return resp, nil
}

// mint signs an ES256 access token (RFC 9068 shape).
func (i *Issuer) mint(p principal, scopes []string, now time.Time) (string, error) {
	jti, err := randomHex(16)
	if err != nil {
		return "", err
	}
	claims := jwt.MapClaims{
		"iss": i.cfg.Issuer,
		"aud": i.cfg.Audience,
		"sub": p.name,
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(i.cfg.AccessTTL).Unix(),
		"jti": jti,
	}
	if len(scopes) > 0 {
		claims["scope"] = strings.Join(scopes, " ")
	}
	if p.kind == "client" {
		claims["client_id"] = p.name
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	t.Header["kid"] = i.kid
	t.Header["typ"] = "at+jwt"
	return t.SignedString(i.key)
}

// Revoke revokes the family of a refresh token (RFC 7009). Unknown tokens
// and access tokens are accepted silently: access tokens are stateless and
// live until they expire.
func (i *Issuer) Revoke(ctx context.Context, token string) error {
	if token == "" {
		return nil
	}
	return i.store.Revoke(ctx, HashToken(token), i.now())
}

// compare runs bcrypt under the concurrency bound.
func (i *Issuer) compare(ctx context.Context, hash []byte, secret string) (bool, error) {
	select {
	case i.hashing <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-i.hashing }()
	return bcrypt.CompareHashAndPassword(hash, []byte(secret)) == nil, nil
}

// parseScope splits a scope parameter (RFC 6749 §3.3: space-delimited
// tokens of %x21 / %x23-5B / %x5D-7E), dropping duplicates.
func parseScope(s string) ([]string, bool) {
	var out []string
	for _, tok := range strings.Split(s, " ") {
		if tok == "" {
			continue
		}
		for k := 0; k < len(tok); k++ {
			c := tok[k]
			if c < 0x21 || c == '"' || c == '\\' || c > 0x7e {
				return nil, false
			}
		}
		if !contains(out, tok) {
			out = append(out, tok)
		}
	}
	return out, true
}

// grantScopes checks a request against what a principal may have: nothing
// requested means everything allowed.
func grantScopes(allowed, requested []string) ([]string, *Error) {
	if len(requested) == 0 {
		return append([]string(nil), allowed...), nil
	}
	for _, s := range requested {
		if !contains(allowed, s) {
			return nil, oauthError(http.StatusBadRequest, "invalid_scope", "scope "+s+" is not granted to this principal")
		}
	}
	// In the principal's order, so equal requests give equal tokens.
	return intersect(allowed, requested), nil
}

func intersect(a, b []string) []string {
	out := make([]string, 0, len(a))
	for _, s := range a {
		if contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// newRefreshToken returns 256 random bits, base64url.
func newRefreshToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("issuer: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("issuer: random: %w", err)
	}
	return hex.EncodeToString(b), nil
}
