package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// signaturePrefix names the MAC scheme, so a future scheme can coexist.
const signaturePrefix = "sha256="

// DefaultTolerance is the replay window VerifyRequest receivers should use:
// a delivery whose signed timestamp is further than this from the
// receiver's clock is refused (Stripe's default too).
const DefaultTolerance = 5 * time.Minute

// Errors of VerifyRequest.
var (
	ErrBadSignature   = errors.New("webhook: signature does not verify")
	ErrStaleTimestamp = errors.New("webhook: timestamp outside the replay window")
)

// mac returns HMAC-SHA256 under secret of the concatenated parts.
func mac(secret []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, secret)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// Sign returns the X-Webhook-Signature value for body: "sha256=" followed by
// the lower-case hex HMAC-SHA256 of body keyed with secret.
//
// Deprecated: the body-only signature cannot bind the timestamp, so a
// captured delivery can be replayed at any time. Receivers should verify
// SignTimestamped's X-Webhook-Signature-V2; the body-only header is still
// sent during the deprecation period documented in docs/jobs-webhooks.md.
func Sign(secret, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, body))
}

// SignTimestamped returns the X-Webhook-Signature-V2 value: "sha256="
// followed by the lower-case hex HMAC-SHA256, keyed with secret, of
//
//	timestamp + "." + body
//
// where timestamp is the X-Webhook-Timestamp header's value (decimal Unix
// seconds), as Stripe and Slack sign theirs. Binding the timestamp lets a
// receiver refuse replays outside a window (VerifyRequest).
func SignTimestamped(secret []byte, timestamp string, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, []byte(timestamp), []byte("."), body))
}

// Verify reports whether sigHeader is a valid X-Webhook-Signature of body
// under secret. The MAC comparison is constant-time; an empty secret never
// verifies (fail closed). Hex digits may be upper or lower case.
//
// Deprecated: use VerifyRequest, which also enforces the replay window.
func Verify(secret, body []byte, sigHeader string) bool {
	return verifyMAC(secret, sigHeader, body)
}

// VerifyTimestamped reports whether sigHeader is a valid
// X-Webhook-Signature-V2 of timestamp and body under secret
// (constant-time; an empty secret never verifies). It does not judge the
// timestamp's age: VerifyRequest does.
func VerifyTimestamped(secret []byte, timestamp string, body []byte, sigHeader string) bool {
	return verifyMAC(secret, sigHeader, []byte(timestamp), []byte("."), body)
}

func verifyMAC(secret []byte, sigHeader string, parts ...[]byte) bool {
	if len(secret) == 0 {
		return false
	}
	if len(sigHeader) < len(signaturePrefix) || !strings.EqualFold(sigHeader[:len(signaturePrefix)], signaturePrefix) {
		return false
	}
	got, err := hex.DecodeString(sigHeader[len(signaturePrefix):])
	if err != nil || len(got) != sha256.Size {
		return false
	}
	return hmac.Equal(got, mac(secret, parts...))
}

// VerifyRequest is what a Go receiver calls with the raw body and the
// request's headers: it checks X-Webhook-Signature-V2 over
// X-Webhook-Timestamp and the body, then that the timestamp is within
// tolerance of now in either direction (DefaultTolerance is a good
// choice). The signature is checked first, so an unsigned timestamp is
// never judged. Deduplicate on X-Webhook-Id after it returns nil: retries
// and replays within the window carry the same id.
func VerifyRequest(secret, body []byte, h http.Header, now time.Time, tolerance time.Duration) error {
	ts := h.Get(HeaderTimestamp)
	if !VerifyTimestamped(secret, ts, body, h.Get(HeaderSignatureV2)) {
		return ErrBadSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not Unix seconds", ErrStaleTimestamp, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed %s from now, tolerance %s", ErrStaleTimestamp, d.Round(time.Second), tolerance)
	}
	return nil
}
