// Package exchange is what the sidecar's two HTTP servers (packages
// fastpath and nethttp) share about one request: the policy snapshot it is
// judged by (Plane), its exchange with the upstream (Exchange: the outcome
// reported to the engine exactly once, whose fault a failure was), the
// forwarding headers sent upstream, and the record it leaves (Recorder:
// the HTTP metrics, the access log line, the server span).
//
// It serves nothing and dials nothing: both servers call it the same way,
// which is how they decide, forward and record alike.
package exchange

import (
	"errors"
	"net/netip"
	"os"
	"time"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/sidecar/upstream"
)

// Plane is everything that changes with a policy: the engine and what the
// servers derive from the same policy. A request reads it once and uses
// only it, so it is judged by exactly one policy.
type Plane struct {
	Engine   *edge.Engine
	Policy   *policy.Policy // as loaded (before the --upstream override)
	LoadedAt time.Time
	Target   upstream.Target
	Trusted  []netip.Prefix // spec.clientIP.trustedProxies
	MaxBody  int64          // spec.limits.maxBodyBytes
	Names    HeaderNames
}

// Exchange is one request's state from the decision to the answer.
type Exchange struct {
	Plane    *Plane
	Decision edge.Decision
	Peer     netip.Addr
	// Trusted: the peer is a trusted proxy, whose X-Forwarded-* are kept.
	Trusted bool
	// Sent is when the request was handed to the upstream.
	Sent time.Time
	// Status and Written are the answer's status (0: 200) and body bytes.
	Status  int
	Written int64
	// Reason is the final reason when the upstream or the client failed
	// (the decision's otherwise).
	Reason string
	// Fault is whose fault the exchange's end was (edge.Outcome.Fault); ""
	// when nothing was forwarded.
	Fault    string
	observed bool
}

// Observe reports the upstream outcome to the engine, once.
func (x *Exchange) Observe(o edge.Outcome) {
	if x.observed {
		return
	}
	x.observed = true
	x.Fault = o.Fault()
	o.Duration = time.Since(x.Sent)
	x.Plane.Engine.Observe(&x.Decision, o)
}

// ClientFailed reports a client's fault to the engine and returns the
// answer (ClientFailure); for a client that is gone it only records the
// status, and reports false: there is nothing to write.
func (x *Exchange) ClientFailed(o edge.Outcome) (edge.Decision, bool) {
	x.Observe(o)
	f := x.Plane.Engine.ClientFailure(x.Decision, o)
	x.Reason = f.Reason
	x.Status = f.Status
	return f, f.Status != edge.StatusClientClosed
}

// UpstreamFailed reports an upstream failure (a timeout or a connection
// failure) to the engine and returns the answer (504 or 502).
func (x *Exchange) UpstreamFailed(o edge.Outcome) edge.Decision {
	x.Observe(o)
	f := x.Plane.Engine.UpstreamFailure(x.Decision, o)
	x.Reason = f.Reason
	return f
}

// Whose fault: a request body that fails to arrive is the client's, and
// the upstream's timeout runs only once the whole request is handed over.
// Both paths apply the same rules (edge.Outcome.ClientFault,
// edge.Engine.ClientFailure for the answer, edge.BodyFault for whose fault
// a body's read error is); see docs/security.md.

// IsTimeout reports a deadline that passed.
func IsTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
