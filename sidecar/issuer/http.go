package issuer

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/contentguard/contentguard/edge/problem"
	"github.com/contentguard/contentguard/edge/urlpath"
)

// MaxFormBytes bounds a token or revocation request body.
const MaxFormBytes = 16 << 10

// maxParam bounds one parameter; bcrypt reads only 72 bytes anyway.
const maxParam = 4096

// Handler serves Paths(): POST token and revoke, GET JWKS and discovery.
// It matches the normalised path (as the engine did), so a request the
// engine routed here as /a/./token is served, not redirected.
func (i *Issuer) Handler() http.Handler {
	jwks := i.serveDocument(i.jwks, "application/jwk-set+json")
	discovery := i.serveDocument(i.discovery, "application/json")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := urlpath.Normalize(r.URL.EscapedPath())
		switch {
		case !ok:
			writeProblem(w, http.StatusNotFound, "not-found", "no such path")
		case p == i.cfg.Path:
			i.serveToken(w, r)
		case p == i.revokePath:
			i.serveRevoke(w, r)
		case p == JWKSPath:
			jwks(w, r)
		case p == DiscoveryPath:
			discovery(w, r)
		default:
			writeProblem(w, http.StatusNotFound, "not-found", "no such path")
		}
	})
}

func (i *Issuer) serveDocument(doc []byte, contentType string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeProblem(w, http.StatusMethodNotAllowed, "method-not-allowed", "use GET")
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(doc)
		}
	}
}

func (i *Issuer) serveToken(w http.ResponseWriter, r *http.Request) {
	form, e := readForm(w, r)
	if e != nil {
		writeOAuthError(w, e)
		return
	}
	req := TokenRequest{
		GrantType:    form.Get("grant_type"),
		Username:     form.Get("username"),
		Password:     form.Get("password"),
		RefreshToken: form.Get("refresh_token"),
		Scope:        form.Get("scope"),
		ClientID:     form.Get("client_id"),
		ClientSecret: form.Get("client_secret"),
	}
	if id, secret, ok, bad := basicAuth(r); bad {
		writeOAuthError(w, &Error{Code: "invalid_client", Description: "malformed Basic credentials", Status: http.StatusUnauthorized, Basic: true})
		return
	} else if ok {
		// RFC 6749 §2.3: one authentication method per request.
		if req.ClientSecret != "" {
			writeOAuthError(w, oauthError(http.StatusBadRequest, "invalid_request", "client credentials sent both in Authorization and in the body"))
			return
		}
		if req.ClientID != "" && req.ClientID != id {
			writeOAuthError(w, oauthError(http.StatusBadRequest, "invalid_request", "client_id differs from the Basic credentials"))
			return
		}
		req.ClientID, req.ClientSecret, req.BasicAuth = id, secret, true
	}
	resp, oe := i.Token(r.Context(), req)
	if oe != nil {
		writeOAuthError(w, oe)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// serveRevoke is RFC 7009: 200 for any well-formed request, whether or not
// the token was known; only refresh tokens have state to revoke.
func (i *Issuer) serveRevoke(w http.ResponseWriter, r *http.Request) {
	form, e := readForm(w, r)
	if e != nil {
		writeOAuthError(w, e)
		return
	}
	token := form.Get("token")
	if token == "" {
		writeOAuthError(w, oauthError(http.StatusBadRequest, "invalid_request", "token is required"))
		return
	}
	if err := i.Revoke(r.Context(), token); err != nil {
		i.log.ErrorContext(r.Context(), "issuer: revoke", "err", err)
		writeOAuthError(w, oauthError(http.StatusServiceUnavailable, "temporarily_unavailable", "the token store is unavailable"))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// readForm reads an application/x-www-form-urlencoded POST body, bounded,
// refusing repeated parameters (RFC 6749 §3.2) and oversized values.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, *Error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		return nil, &Error{Code: "invalid_request", Description: "use POST", Status: http.StatusMethodNotAllowed}
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, oauthError(http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &Error{Code: "invalid_request", Description: "the body is too large", Status: http.StatusRequestEntityTooLarge}
		}
		return nil, oauthError(http.StatusBadRequest, "invalid_request", "the body is not a valid form")
	}
	for name, values := range r.PostForm {
		if len(values) > 1 {
			return nil, oauthError(http.StatusBadRequest, "invalid_request", "parameter "+name+" is repeated")
		}
		if len(values[0]) > maxParam {
			return nil, oauthError(http.StatusBadRequest, "invalid_request", "parameter "+name+" is too long")
		}
	}
	// Secrets never belong in the URL, where logs keep them.
	q := r.URL.Query()
	for _, name := range []string{"password", "client_secret", "refresh_token", "token"} {
		if q.Has(name) {
			return nil, oauthError(http.StatusBadRequest, "invalid_request", name+" must be sent in the body, not the query")
		}
	}
	return r.PostForm, nil
}

// basicAuth reads RFC 6749 §2.3.1 client credentials: Basic with the id and
// secret form-urlencoded before base64. bad reports a malformed header.
func basicAuth(r *http.Request) (id, secret string, ok, bad bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", "", false, false
	}
	if len(h) < 6 || !strings.EqualFold(h[:6], "Basic ") {
		return "", "", false, true
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h[6:]))
	if err != nil {
		return "", "", false, true
	}
	u, p, found := strings.Cut(string(raw), ":")
	if !found {
		return "", "", false, true
	}
	if id, err = url.QueryUnescape(u); err != nil {
		return "", "", false, true
	}
	if secret, err = url.QueryUnescape(p); err != nil {
		return "", "", false, true
	}
	return id, secret, true, false
}

func writeOAuthError(w http.ResponseWriter, e *Error) {
	if e.Basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="contentguard", charset="UTF-8"`)
	}
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	writeJSON(w, status, e)
}

// writeProblem answers a request that is not an OAuth exchange (an unknown
// path, a POST to a document) with a problem of the scheme every
// contentguard answer shares. The token and revocation endpoints answer
// with RFC 6749 errors instead: that is what OAuth clients read.
func writeProblem(w http.ResponseWriter, status int, slug, detail string) {
	w.Header().Set("Content-Type", problem.ContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(problem.New(status, slug, "", detail).JSON())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"server_error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// discoveryDocument is RFC 8414 authorization server metadata, served at the
// OpenID discovery location that most clients look up.
func (i *Issuer) discoveryDocument() ([]byte, error) {
	base := strings.TrimSuffix(i.cfg.Issuer, "/")
	var scopes []string
	for _, group := range []map[string]principal{i.users, i.clients} {
		for _, p := range group {
			for _, s := range p.scopes {
				if !contains(scopes, s) {
					scopes = append(scopes, s)
				}
			}
		}
	}
	sort.Strings(scopes)
	grants := []string{GrantRefreshToken}
	if len(i.users) > 0 {
		grants = append([]string{GrantPassword}, grants...)
	}
	if len(i.clients) > 0 {
		grants = append(grants, GrantClientCredentials)
	}
	doc := map[string]any{
		"issuer":                                     base,
		"token_endpoint":                             base + i.cfg.Path,
		"revocation_endpoint":                        base + i.revokePath,
		"jwks_uri":                                   base + JWKSPath,
		"grant_types_supported":                      grants,
		"response_types_supported":                   []string{},
		"scopes_supported":                           scopes,
		"token_endpoint_auth_methods_supported":      []string{"client_secret_basic", "client_secret_post", "none"},
		"revocation_endpoint_auth_methods_supported": []string{"none"},
		"access_token_signing_alg_values_supported":  []string{"ES256"},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return b, nil
}
