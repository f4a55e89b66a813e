package telemetry

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"time"
)

// RequestIDHeader is the header read from clients (usually the edge) and
// echoed on every response.
const RequestIDHeader = "X-Request-ID"

// MaxRequestIDLength bounds an accepted incoming request ID.
const MaxRequestIDLength = 128

type requestIDKey struct{}

// ContextWithRequestID returns ctx carrying id.
func ContextWithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestIDFromContext returns the request ID stored in ctx, or "".
func RequestIDFromContext(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// ValidRequestID reports whether id is 1..128 characters of [A-Za-z0-9._:-].
// Anything else (spaces, quotes, control bytes, overlong) is replaced rather
// than trusted, so an ID can be logged and echoed without escaping.
func ValidRequestID(id string) bool {
	if len(id) == 0 || len(id) > MaxRequestIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// NewRequestID returns a fresh UUIDv7 (RFC 9562): 48 bits of Unix
// milliseconds, then version and variant bits around 74 random bits, so IDs
// sort by creation time in logs.
func NewRequestID() string {
	var u [16]byte
	ms := uint64(time.Now().UnixMilli())
	binary.BigEndian.PutUint64(u[0:8], ms<<16) // top 48 bits hold the time
	_, _ = rand.Read(u[6:])                    // crypto/rand never fails (Go ≥ 1.24)
	u[6] = (u[6] & 0x0f) | 0x70                // version 7
	u[8] = (u[8] & 0x3f) | 0x80                // variant 10
	var out [36]byte
	hex.Encode(out[0:8], u[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], u[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], u[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], u[8:10])
	out[23] = '-'
	hex.Encode(out[24:], u[10:])
	return string(out[:])
}

// RequestID is middleware that adopts a well-formed X-Request-ID from the
// request or generates a UUIDv7, stores it in the request context and the
// request header (for handlers and proxies downstream), and echoes it on the
// response.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !ValidRequestID(id) {
			id = NewRequestID()
			r.Header.Set(RequestIDHeader, id)
		}
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(ContextWithRequestID(r.Context(), id)))
	})
}
