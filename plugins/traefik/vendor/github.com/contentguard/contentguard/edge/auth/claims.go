package auth

import (
	"encoding/json"
	"math"
	"strings"
	"time"
)

// checkClaims applies the registered-claim rules to a token whose signature
// already holds: iss equal to the provider's, aud containing one of its
// audiences, exp required and in the future, nbf (if any) in the past — both
// with the provider's clock skew. iat is ignored: a token's age is bounded by
// exp, and rejecting "future" iat only adds clock-skew failures. It returns the
// identity and the instant from which the token must be refused.
func checkClaims(p *provider, claims map[string]any, now time.Time) (Identity, time.Time, Reason) {
	if iss, _ := claims["iss"].(string); iss != p.issuer {
		return Identity{}, time.Time{}, ReasonIssuer
	}
	if !audienceMatches(claims["aud"], p.audiences) {
		return Identity{}, time.Time{}, ReasonAudience
	}
	exp, ok := numericDate(claims["exp"])
	if !ok {
		return Identity{}, time.Time{}, ReasonMalformed
	}
	notAfter := exp.Add(p.skew)
	if !now.Before(notAfter) {
		return Identity{}, time.Time{}, ReasonExpired
	}
	if raw, present := claims["nbf"]; present {
		nbf, ok := numericDate(raw)
		if !ok {
			return Identity{}, time.Time{}, ReasonMalformed
		}
		if now.Add(p.skew).Before(nbf) {
			return Identity{}, time.Time{}, ReasonNotYetValid
		}
	}
	sub := ""
	if raw, present := claims["sub"]; present {
		s, isString := raw.(string)
		if !isString {
			return Identity{}, time.Time{}, ReasonMalformed
		}
		sub = s
	}
	scope, present := claims[p.scopeClaim]
	if !present {
		scope = claims["scp"]
	}
	id := Identity{
		Provider:  p.name,
		Subject:   sub,
		Scopes:    ScopesFrom(scope),
		Claims:    claims,
		ExpiresAt: exp,
	}
	// Joined once here, then served from the verified-token cache with the
	// identity, instead of on every request that forwards scopes.
	id.ScopeText = strings.Join(id.Scopes, " ")
	return id, notAfter, ReasonOK
}

// audienceMatches reports whether aud (a string or an array of strings,
// RFC 7519 §4.1.3) contains any wanted audience.
func audienceMatches(aud any, want []string) bool {
	switch a := aud.(type) {
	case string:
		return containsString(want, a)
	case []any:
		for i := 0; i < len(a); i++ {
			if s, ok := a[i].(string); ok && containsString(want, s) {
				return true
			}
		}
	case []string:
		for i := 0; i < len(a); i++ {
			if containsString(want, a[i]) {
				return true
			}
		}
	}
	return false
}

func containsString(list []string, s string) bool {
	for i := 0; i < len(list); i++ {
		if list[i] == s {
			return true
		}
	}
	return false
}

// numericDate converts a NumericDate claim (seconds since the epoch, possibly
// fractional) to a time. Values outside 0..9999-12-31 are refused rather than
// overflowing the conversion.
func numericDate(v any) (time.Time, bool) {
	var f float64
	switch n := v.(type) {
	case float64:
		f = n
	case json.Number:
		parsed, err := n.Float64()
		if err != nil {
			return time.Time{}, false
		}
		f = parsed
	default:
		return time.Time{}, false
	}
	if math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, false
	}
	sec := math.Floor(f)
	return time.Unix(int64(sec), int64((f-sec)*1e9)), true
}

// ScopesFrom reads a scope claim: a space-separated string ("read write",
// RFC 8693 "scope") or an array of strings ("scp"); non-string array elements
// are ignored. Anything else yields nil.
func ScopesFrom(claim any) []string {
	switch c := claim.(type) {
	case string:
		return strings.Fields(c)
	case []any:
		out := make([]string, 0, len(c))
		for i := 0; i < len(c); i++ {
			if s, ok := c[i].(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	case []string:
		out := make([]string, 0, len(c))
		for i := 0; i < len(c); i++ {
			if c[i] != "" {
				out = append(out, c[i])
			}
		}
		return out
	}
	return nil
}
