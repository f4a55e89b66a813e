// Package secheaders provides the security response headers a policy asks
// for: the "strict" preset, or a validated custom set.
//
// Strict is meant for an API that serves JSON, not pages: nothing may be
// sniffed, framed, embedded cross-origin or allowed to load sub-resources.
// Strict-Transport-Security is sent only on TLS connections (RFC 6797 §7.2:
// browsers ignore it over plain HTTP, and sending it there misleads).
//
// Header lists are [][2]string (name, value). The slices Strict returns are
// shared by every caller, so it allocates nothing: do not mutate them.
//
// The package runs under the Yaegi interpreter (Traefik plugin): standard
// library only, no generics.
package secheaders

import (
	"fmt"
	"net/textproto"
	"sort"

	"github.com/contentguard/contentguard/internal/httpsyntax"
)

// The strict preset, in the order it is sent.
var (
	strictPlain = [][2]string{
		{"X-Content-Type-Options", "nosniff"},
		{"X-Frame-Options", "DENY"},
		{"Referrer-Policy", "strict-origin-when-cross-origin"},
		{"Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"},
		{"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"},
		{"Cross-Origin-Opener-Policy", "same-origin"},
		{"Cross-Origin-Resource-Policy", "same-origin"},
	}
	strictTLS = append(append([][2]string(nil), strictPlain...),
		[2]string{"Strict-Transport-Security", "max-age=63072000; includeSubDomains"})
)

// Strict returns the strict preset: the headers above, plus
// Strict-Transport-Security (two years, subdomains included) when the
// request came over TLS. The result is shared: do not mutate it.
func Strict(tls bool) [][2]string {
	if tls {
		return strictTLS
	}
	return strictPlain
}

// Custom validates a map of header name to value and returns it sorted by
// canonical name (so the output is the same on every data plane). Names must
// be RFC 9110 tokens and must differ in more than case; values may not hold
// control characters other than tab (no CR, LF or NUL: no header injection).
// An empty value is allowed and sends the header empty.
func Custom(m map[string]string) ([][2]string, error) {
	out := make([][2]string, 0, len(m))
	for name, value := range m {
		if !httpsyntax.IsToken(name) {
			return nil, fmt.Errorf("secheaders: header name %q is not a token", name)
		}
		if i := badValueByte(value); i >= 0 {
			return nil, fmt.Errorf("secheaders: header %q: value has control character %#x at byte %d", name, value[i], i)
		}
		out = append(out, [2]string{textproto.CanonicalMIMEHeaderKey(name), value})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	for i := 1; i < len(out); i++ {
		if out[i][0] == out[i-1][0] {
			return nil, fmt.Errorf("secheaders: header %q is given twice (names are case-insensitive)", out[i][0])
		}
	}
	return out, nil
}

// badValueByte returns the index of the first byte of v that may not appear
// in a field value (RFC 9110 §5.5: CTLs other than HTAB, and DEL), or -1.
func badValueByte(v string) int {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 && c != '\t' || c == 0x7f {
			return i
		}
	}
	return -1
}
