// Package webhook registers webhook endpoints and delivers signed event
// notifications to them through a durable queue.
//
// A delivery is an HTTP POST of a JSON body
//
//	{"id": "dlv_...", "event": "batch_completed", "created_at": "...", "data": {...}}
//
// with the headers X-Webhook-Timestamp (Unix seconds of the attempt),
// X-Webhook-Signature-V2 ("sha256=" + hex HMAC-SHA256 of timestamp + "." +
// body under the endpoint's secret), the deprecated body-only
// X-Webhook-Signature, X-Webhook-Event and X-Webhook-Id (the delivery's id,
// derived from the event and the target: the same on every retry).
//
// Every delivery is a record in a Store (MemoryStore in one process, the
// redisstore package shared by replicas and workers) with its attempts and
// the time of the next one. A Deliverer claims due records, attempts each
// once, and records the outcome: 2xx removes it; network errors, 408, 429
// and 5xx reschedule it with exponential backoff and full jitter; other
// answers, or the last attempt, make it a dead letter, listed per endpoint
// and redeliverable. A full queue refuses new deliveries, and logs and
// counts them.
//
// Every URL passes an SSRF guard twice: when it is registered and, through a
// net.Dialer Control function, on every connection, so a name that resolves to
// a public address at registration and to 127.0.0.1 later (DNS rebinding) is
// still refused.
package webhook

import (
	"net/http"
)

// Responder writes HTTP answers in the server's envelope. The backend server
// implements it; this package only decides status codes and payloads.
type Responder interface {
	// Data writes the success envelope {"success":true,"data":...}.
	Data(w http.ResponseWriter, r *http.Request, status int, data any)
	// Problem writes an RFC 9457 application/problem+json answer.
	Problem(w http.ResponseWriter, r *http.Request, status int, title, detail string)
}

// The events this service emits. Names are part of the public API.
const (
	EventAnalysisCompleted   = "analysis_completed"
	EventSimilarityCompleted = "similarity_completed"
	EventQualityCompleted    = "quality_completed"
	EventBatchCompleted      = "batch_completed"
	EventBatchFailed         = "batch_failed"
)

// Events returns every event name an endpoint may subscribe to.
func Events() []string {
	return []string{
		EventAnalysisCompleted,
		EventSimilarityCompleted,
		EventQualityCompleted,
		EventBatchCompleted,
		EventBatchFailed,
	}
}

// KnownEvent reports whether name is one of Events().
func KnownEvent(name string) bool {
	for _, e := range Events() {
		if e == name {
			return true
		}
	}
	return false
}

// Header names of a delivery.
const (
	// HeaderSignatureV2 is SignTimestamped over HeaderTimestamp and the
	// body: the signature receivers should verify.
	HeaderSignatureV2 = "X-Webhook-Signature-V2"
	// HeaderSignature is the body-only Sign, kept for existing receivers
	// during the deprecation period (docs/jobs-webhooks.md).
	HeaderSignature = "X-Webhook-Signature"
	HeaderEvent     = "X-Webhook-Event"
	HeaderID        = "X-Webhook-Id"
	HeaderTimestamp = "X-Webhook-Timestamp"
)
