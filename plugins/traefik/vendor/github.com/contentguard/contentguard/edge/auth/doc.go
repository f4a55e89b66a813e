// yaegi:tags yaegi
//
// (Read by Yaegi only, before the files that follow this one: it selects
// ecpoint_yaegi.go over ecpoint.go when the package is interpreted.)

// Package auth verifies bearer credentials at the edge: JSON Web Tokens signed
// by configured issuers (keys from a JWKS file, URL or inline document, or a
// shared HMAC secret) and static API keys stored as SHA-256 hashes.
//
// # Security model
//
// Every check below exists because a real attack defeats a verifier without it.
// Verify answers with a Reason code (a plain string value, never a wrapped
// error) so callers — including code interpreted by Yaegi, where errors.Is
// cannot see interpreted Unwrap methods — decide on values.
//
//   - Size first. Tokens longer than Options.MaxTokenBytes are refused before
//     any base64 or JSON work, so a 1 MB header cannot buy CPU or memory.
//   - Algorithm allow-list per provider. "none" can never be configured, and
//     the parser is given the union of all allow-lists (jwt.WithValidMethods)
//     while the per-provider list is enforced again when the key is chosen.
//   - Key type must match the algorithm family: EC keys (on the curve named
//     by the algorithm) for ES*, RSA for RS*/PS*, Ed25519 for EdDSA, and an
//     HMAC secret only for HS*. HMAC secrets come only from Provider.Secret,
//     never from a JWKS, so the classic confusion attack — an HS256 token
//     "signed" with the issuer's public RSA key bytes — finds no secret to
//     verify against and is refused as algorithm_not_allowed. A JWK carrying an
//     "alg" member pins that key to that one algorithm.
//   - Strict base64url decoding (jwt.WithStrictDecoding): a token has exactly
//     one encoding, so a mutated token is never the "same" token.
//   - Keys come only from configuration. The "jwk", "jku" and "x5u" headers
//     are ignored — a token cannot bring or point at its own key — and a
//     token with a "crit" header is refused (no extensions are implemented).
//   - Provider by issuer, key by kid. The unverified "iss" picks the provider
//     (its keys, its algorithms) and is compared again after the signature
//     holds. An unknown kid triggers at most one JWKS refetch per
//     Options.MinRefetchInterval per provider, with concurrent callers sharing
//     one request, so a flood of random kids cannot turn the edge into a
//     traffic amplifier against the identity provider.
//   - Fail closed. A URL provider whose keys have not arrived refuses with
//     no_keys; a fetch that fails or returns garbage keeps the last good set.
//     Fetches have a timeout and a 1 MiB body cap. After a failed fetch the
//     background loop retries after 1 s (Envoy's failed_refetch_duration),
//     doubling with each failure in a row up to the refresh period, so an
//     identity provider that was briefly down costs seconds of no_keys, not
//     minutes, and one that stays down is asked once per refresh period.
//     Options.OnFetch hears of every fetch, to log and count failures.
//   - Issuers in this process (Options.InProcessJWKS: the sidecar's token
//     issuer) give their keys directly, so their tokens verify from the
//     first request instead of after a fetch from a listener not yet up.
//   - Registered claims are checked here, from jwt.MapClaims (typed claim
//     structs decode empty under Yaegi, which would silently skip expiry):
//     "exp" is required, "nbf" is honoured, both with Provider.ClockSkew;
//     "aud" (string or array) must contain one of Provider.Audiences, so a
//     token minted for another service of the same issuer is refused.
//   - The verified-token cache is keyed by SHA-256 of the token (the raw
//     token is never stored), holds only tokens that passed every check, is
//     bounded by Options.CacheSize, and re-checks expiry and the provider's
//     key-set generation on every hit: an expired token, or one whose key was
//     rotated out, is refused even when cached.
//   - API keys are compared as SHA-256 hashes with crypto/subtle against every
//     stored key, with no early exit and no map indexed by the secret, so
//     response timing does not reveal which key (or how much of it) matched.
//
// # Sharing
//
// Identity values, including their Scopes slice and Claims map, are shared with
// the cache and with other callers that presented the same token. Callers must
// treat them as read-only. The same holds for APIKey.Scopes.
//
// # Interpreter
//
// The package runs under the Yaegi interpreter (the Traefik plugin): standard
// library plus github.com/golang-jwt/jwt/v5 only, no generics, no unsafe.
// Two Yaegi v0.16.1 traps concern callers: Options.Logf is always called
// with one pre-formatted argument (the interpreter panics compiling calls that
// pass several variadic arguments to a host func value), and an interpreted
// caller must not `defer v.Close()` in the function that created its
// Options.Now or Options.Logf func literals — Yaegi runs deferred calls
// holding that frame's lock, which a background refresh calling the literal
// also needs, so Close would wait forever. Call Close explicitly instead.
//
// Yaegi v0.16.1's standard library predates ecdsa.ParseUncompressedPublicKey
// and PublicKey.Bytes, so EC points are read and written by two files under
// build tags: ecpoint.go compiled, ecpoint_yaegi.go interpreted (Yaegi reads
// only "+build" lines, and the yaegi tag from the "yaegi:tags" line at the top
// of this file). The deprecated big.Int coordinates and IsOnCurve live only in
// the latter, so no compiled binary calls them.
package auth
