package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strings"
)

// JWK is one verification key of a JWKS document.
type JWK struct {
	// KeyID is the JWK "kid", or the key's RFC 7638 thumbprint when the
	// document gave none, so every key has a distinct id.
	KeyID string
	// Algorithm is the JWK "alg" member, "" when absent. When set, the key
	// verifies only that algorithm.
	Algorithm string
	// Key is *ecdsa.PublicKey, *rsa.PublicKey, ed25519.PublicKey, or []byte
	// for a symmetric ("oct") key.
	Key crypto.PublicKey
}

// jwkJSON is the wire form of one JSON Web Key (RFC 7517, RFC 7518 §6,
// RFC 8037). Field order is the marshalled order.
type jwkJSON struct {
	Kty string `json:"kty"`
	Kid string `json:"kid,omitempty"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	K   string `json:"k,omitempty"`
	D   string `json:"d,omitempty"`
}

type jwksJSON struct {
	Keys []jwkJSON `json:"keys"`
}

// Limits on key material read from a JWKS. RSA moduli below 2048 bits are
// factorable by well-funded attackers; above 16384 bits verification becomes a
// CPU sink chosen by whoever controls the document.
const (
	minRSABits  = 2048
	maxRSABits  = 16384
	maxJWKSKeys = 100
)

// ParseJWKS parses a JWKS document ({"keys":[...]}) into verification keys by
// key id. Keys with "use":"enc" and key types or curves this package does not
// verify with (e.g. X25519, Ed448) are skipped; a key of a supported type that
// is malformed, carries private material ("d"), or is too weak makes the whole
// document an error, as does a document with no usable key or duplicate ids.
func ParseJWKS(data []byte) (map[string]JWK, error) {
	var doc jwksJSON
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("jwks: decode: %w", err)
	}
	if len(doc.Keys) > maxJWKSKeys {
		return nil, fmt.Errorf("jwks: %d keys, at most %d allowed", len(doc.Keys), maxJWKSKeys)
	}
	out := make(map[string]JWK, len(doc.Keys))
	for i := 0; i < len(doc.Keys); i++ {
		raw := doc.Keys[i]
		if raw.Use != "" && raw.Use != "sig" {
			continue
		}
		key, supported, err := parseJWK(raw)
		if err != nil {
			return nil, fmt.Errorf("jwks: key %d (kid %q): %w", i, raw.Kid, err)
		}
		if !supported {
			continue
		}
		if raw.Alg != "" && !algorithmFits(raw.Alg, key) {
			return nil, fmt.Errorf("jwks: key %d (kid %q): alg %q does not fit a %s key", i, raw.Kid, raw.Alg, raw.Kty)
		}
		kid := raw.Kid
		if kid == "" {
			if kid, err = Thumbprint(key); err != nil {
				return nil, fmt.Errorf("jwks: key %d: %w", i, err)
			}
		}
		if _, dup := out[kid]; dup {
			return nil, fmt.Errorf("jwks: duplicate kid %q", kid)
		}
		out[kid] = JWK{KeyID: kid, Algorithm: raw.Alg, Key: key}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("jwks: no usable signature keys")
	}
	return out, nil
}

// parseJWK decodes one key. supported is false for key types this package
// does not verify with.
func parseJWK(raw jwkJSON) (key crypto.PublicKey, supported bool, err error) {
	switch raw.Kty {
	case "EC":
		curve := curveByName(raw.Crv)
		if curve == nil {
			return nil, false, nil
		}
		if raw.D != "" {
			return nil, true, fmt.Errorf("private key material in a public key set")
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err := decodeFixed(raw.X, size, "x")
		if err != nil {
			return nil, true, err
		}
		y, err := decodeFixed(raw.Y, size, "y")
		if err != nil {
			return nil, true, err
		}
		k, err := ecPublicKey(curve, x, y)
		if err != nil {
			return nil, true, err
		}
		return k, true, nil
	case "RSA":
		if raw.D != "" {
			return nil, true, fmt.Errorf("private key material in a public key set")
		}
		n, err := decodeB64(raw.N, "n")
		if err != nil {
			return nil, true, err
		}
		e, err := decodeB64(raw.E, "e")
		if err != nil {
			return nil, true, err
		}
		N := new(big.Int).SetBytes(n)
		if N.BitLen() < minRSABits || N.BitLen() > maxRSABits {
			return nil, true, fmt.Errorf("RSA modulus of %d bits, want %d..%d", N.BitLen(), minRSABits, maxRSABits)
		}
		if len(e) > 4 {
			return nil, true, fmt.Errorf("RSA exponent too large")
		}
		E := 0
		for i := 0; i < len(e); i++ {
			E = E<<8 | int(e[i])
		}
		if E < 3 || E%2 == 0 || E > 1<<31-1 {
			return nil, true, fmt.Errorf("RSA exponent %d invalid", E)
		}
		return &rsa.PublicKey{N: N, E: E}, true, nil
	case "OKP":
		if raw.Crv != "Ed25519" {
			return nil, false, nil
		}
		if raw.D != "" {
			return nil, true, fmt.Errorf("private key material in a public key set")
		}
		x, err := decodeFixed(raw.X, ed25519.PublicKeySize, "x")
		if err != nil {
			return nil, true, err
		}
		return ed25519.PublicKey(x), true, nil
	case "oct":
		k, err := decodeB64(raw.K, "k")
		if err != nil {
			return nil, true, err
		}
		if len(k) == 0 {
			return nil, true, fmt.Errorf("empty symmetric key")
		}
		return k, true, nil
	}
	return nil, false, nil
}

func curveByName(name string) elliptic.Curve {
	switch name {
	case "P-256":
		return elliptic.P256()
	case "P-384":
		return elliptic.P384()
	case "P-521":
		return elliptic.P521()
	}
	return nil
}

// decodeB64 decodes base64url without padding (RFC 7515 §2), tolerating
// padding some publishers add anyway.
func decodeB64(s, member string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("member %q: %w", member, err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("member %q missing", member)
	}
	return b, nil
}

// decodeFixed decodes a coordinate that RFC 7518 §6.2.1.2 requires to be
// exactly the curve's byte length.
func decodeFixed(s string, size int, member string) ([]byte, error) {
	b, err := decodeB64(s, member)
	if err != nil {
		return nil, err
	}
	if len(b) != size {
		return nil, fmt.Errorf("member %q is %d bytes, want %d", member, len(b), size)
	}
	return b, nil
}

// MarshalJWKS renders public keys as a JWKS document with "kid", "alg" and
// "use":"sig", keys sorted by kid. An empty kid is replaced by the key's
// thumbprint. Private keys and symmetric keys are refused so a secret is never
// published by mistake. The alg is ES256/ES384/ES512 by curve, RS256 for RSA
// and EdDSA for Ed25519.
func MarshalJWKS(keys map[string]crypto.PublicKey) ([]byte, error) {
	kids := make([]string, 0, len(keys))
	for kid := range keys {
		kids = append(kids, kid)
	}
	sort.Strings(kids)
	doc := jwksJSON{Keys: make([]jwkJSON, 0, len(kids))}
	for i := 0; i < len(kids); i++ {
		j, err := publicJWK(keys[kids[i]])
		if err != nil {
			return nil, fmt.Errorf("jwks: kid %q: %w", kids[i], err)
		}
		j.Kid = kids[i]
		if j.Kid == "" {
			if j.Kid, err = Thumbprint(keys[kids[i]]); err != nil {
				return nil, fmt.Errorf("jwks: %w", err)
			}
		}
		j.Use = "sig"
		doc.Keys = append(doc.Keys, j)
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("jwks: encode: %w", err)
	}
	return out, nil
}

// publicJWK renders the public members of a key with its default algorithm.
func publicJWK(pub crypto.PublicKey) (jwkJSON, error) {
	enc := base64.RawURLEncoding
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			return jwkJSON{}, fmt.Errorf("incomplete EC public key")
		}
		name := k.Curve.Params().Name
		alg := ecAlgorithm(name)
		if alg == "" {
			return jwkJSON{}, fmt.Errorf("unsupported curve %s", name)
		}
		x, y, err := ecCoordinates(k, (k.Curve.Params().BitSize+7)/8)
		if err != nil {
			return jwkJSON{}, err
		}
		return jwkJSON{Kty: "EC", Alg: alg, Crv: name, X: enc.EncodeToString(x), Y: enc.EncodeToString(y)}, nil
	case *rsa.PublicKey:
		if k == nil || k.N == nil || k.E <= 0 {
			return jwkJSON{}, fmt.Errorf("incomplete RSA public key")
		}
		return jwkJSON{Kty: "RSA", Alg: "RS256", N: enc.EncodeToString(k.N.Bytes()), E: enc.EncodeToString(big.NewInt(int64(k.E)).Bytes())}, nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return jwkJSON{}, fmt.Errorf("Ed25519 public key of %d bytes", len(k))
		}
		return jwkJSON{Kty: "OKP", Alg: "EdDSA", Crv: "Ed25519", X: enc.EncodeToString(k)}, nil
	case []byte:
		return jwkJSON{}, fmt.Errorf("symmetric keys are secrets and are never published")
	}
	return jwkJSON{}, fmt.Errorf("unsupported key type %T (public keys only)", pub)
}

func ecAlgorithm(curveName string) string {
	switch curveName {
	case "P-256":
		return "ES256"
	case "P-384":
		return "ES384"
	case "P-521":
		return "ES512"
	}
	return ""
}

// Thumbprint returns the RFC 7638 JWK thumbprint of a key (SHA-256,
// base64url): the hash of its required members, in lexical order, with no
// whitespace. It is a stable kid derived from the key itself.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	var canonical string
	if oct, ok := pub.([]byte); ok {
		if len(oct) == 0 {
			return "", fmt.Errorf("thumbprint: empty symmetric key")
		}
		canonical = `{"k":"` + base64.RawURLEncoding.EncodeToString(oct) + `","kty":"oct"}`
	} else {
		j, err := publicJWK(pub)
		if err != nil {
			return "", fmt.Errorf("thumbprint: %w", err)
		}
		// Members are base64url or fixed names: no JSON escaping is needed.
		switch j.Kty {
		case "EC":
			canonical = `{"crv":"` + j.Crv + `","kty":"EC","x":"` + j.X + `","y":"` + j.Y + `"}`
		case "RSA":
			canonical = `{"e":"` + j.E + `","kty":"RSA","n":"` + j.N + `"}`
		default:
			canonical = `{"crv":"` + j.Crv + `","kty":"OKP","x":"` + j.X + `"}`
		}
	}
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// algorithmFamily names the key type an algorithm verifies with: "EC", "RSA",
// "OKP" or "oct"; "" for anything unknown, including "none".
func algorithmFamily(alg string) string {
	switch alg {
	case "ES256", "ES384", "ES512":
		return "EC"
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return "RSA"
	case "EdDSA":
		return "OKP"
	case "HS256", "HS384", "HS512":
		return "oct"
	}
	return ""
}

// algorithmFits reports whether key is of the type (and, for EC, on the
// curve) that alg verifies with. This is the check that defeats algorithm
// confusion: no public key is ever accepted as an HMAC secret.
func algorithmFits(alg string, key crypto.PublicKey) bool {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		return algorithmFamily(alg) == "EC" && ecAlgorithm(k.Curve.Params().Name) == alg
	case *rsa.PublicKey:
		return algorithmFamily(alg) == "RSA"
	case ed25519.PublicKey:
		return alg == "EdDSA" && len(k) == ed25519.PublicKeySize
	case []byte:
		return algorithmFamily(alg) == "oct"
	}
	return false
}
