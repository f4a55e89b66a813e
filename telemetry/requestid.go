package telemetry

import (
	"context"
	"net/http"

	"github.com/contentguard/contentguard/internal/requestid"
)

// RequestIDHeader is the header read from clients (usually the edge) and
// echoed on every response.
const RequestIDHeader = "X-Request-ID"

// MaxRequestIDLength bounds an accepted incoming request ID.
const MaxRequestIDLength = requestid.MaxLen

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

// ValidRequestID reports whether id is 1..128 characters of [A-Za-z0-9._:-]
// (requestid.Valid, the edge's rule). Anything else (spaces, quotes, control
// bytes, overlong) is replaced rather than trusted, so an ID can be logged
// and echoed without escaping.
func ValidRequestID(id string) bool { return requestid.Valid(id) }

// NewRequestID returns a fresh UUIDv7 (RFC 9562, requestid.NewV7): 48 bits
// of Unix milliseconds, then version and variant bits around 74 random bits,
// so IDs sort by creation time in logs.
func NewRequestID() string { return requestid.NewV7() }

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
