package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
)

// APIKey is one static API key, stored only as the SHA-256 of the secret.
type APIKey struct {
	ID     string
	SHA256 [32]byte
	Scopes []string
}

// Keyring finds the API key a caller presented. It is immutable and safe for
// concurrent use.
type Keyring struct {
	keys []APIKey
}

// NewKeyring copies keys into a keyring. If two entries share a hash, the
// later one wins.
func NewKeyring(keys []APIKey) *Keyring {
	return &Keyring{keys: append([]APIKey(nil), keys...)}
}

// Lookup hashes the presented secret and compares the hash with every stored
// hash in constant time, without stopping at a match and without a map keyed
// by the secret, so timing reveals neither which key matched nor how many
// bytes of a guess were right. The returned Scopes slice is shared: do not
// modify it.
func (k *Keyring) Lookup(presented string) (APIKey, bool) {
	if k == nil || presented == "" {
		return APIKey{}, false
	}
	sum := sha256.Sum256([]byte(presented))
	match := -1
	for i := 0; i < len(k.keys); i++ {
		equal := subtle.ConstantTimeCompare(sum[:], k.keys[i].SHA256[:])
		match = subtle.ConstantTimeSelect(equal, i, match)
	}
	if match < 0 {
		return APIKey{}, false
	}
	return k.keys[match], true
}

// ParseKeyHash decodes a policy's hex "sha256" of an API key.
func ParseKeyHash(hexDigest string) ([32]byte, error) {
	var sum [32]byte
	b, err := hex.DecodeString(hexDigest)
	if err != nil {
		return sum, fmt.Errorf("api key sha256: %w", err)
	}
	if len(b) != len(sum) {
		return sum, fmt.Errorf("api key sha256: %d bytes, want 32", len(b))
	}
	copy(sum[:], b)
	return sum, nil
}
