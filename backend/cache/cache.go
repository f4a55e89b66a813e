// Package cache stores analysis results under a SHA-256 of the operation and
// its whole input, in a bounded in-memory LRU with TTL or in Redis.
//
// The original service keyed its cache on the first 100 characters of the
// text, so two documents sharing a prefix got each other's results; Key
// hashes everything that can change a result.
package cache

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Cache holds opaque result bytes by key. A Get error means "the cache is
// unavailable": callers treat it as a miss and compute the result.
type Cache interface {
	Get(ctx context.Context, key string) (value []byte, ok bool, err error)
	Set(ctx context.Context, key string, value []byte) error
}

// Key returns the hex SHA-256 of operation and the JSON encoding of input
// (a struct holding every request field that affects the result: text,
// threshold, method, options). The operation is length-prefixed so that no
// (operation, input) pair can collide with another by concatenation.
func Key(operation string, input any) (string, error) {
	body, err := json.Marshal(input)
	if err != nil {
		return "", fmt.Errorf("cache key for %s: %w", operation, err)
	}
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(operation)))
	h.Write(n[:])
	h.Write([]byte(operation))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil)), nil
}
