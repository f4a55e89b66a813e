// Package envelopetest provides a Responder for tests of the backend's
// HTTP handlers: the success envelope and RFC 9457 problem shapes the
// server writes, without the server.
package envelopetest

import (
	"encoding/json"
	"net/http"
)

// Responder writes {"success":true,"data":...} and application/problem+json
// answers carrying "success":false, like the backend server.
type Responder struct{}

// Data writes the success envelope.
func (Responder) Data(w http.ResponseWriter, _ *http.Request, status int, data any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"success": true, "data": data})
}

// Problem writes a problem+json answer.
func (Responder) Problem(w http.ResponseWriter, _ *http.Request, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"success": false, "status": status, "title": title, "detail": detail})
}
