package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// signaturePrefix names the MAC scheme, so a future scheme can coexist.
const signaturePrefix = "sha256="

// Sign returns the X-Webhook-Signature value for body: "sha256=" followed by
// the lower-case hex HMAC-SHA256 of body keyed with secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return signaturePrefix + hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether sigHeader is a valid X-Webhook-Signature of body
// under secret. The MAC comparison is constant-time; an empty secret never
// verifies (fail closed). Hex digits may be upper or lower case.
func Verify(secret, body []byte, sigHeader string) bool {
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
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}
