// Package problem builds the error bodies the edge itself sends: RFC 9457
// problem details ("application/problem+json").
//
// JSON is written by hand, without reflection (interpreted MarshalJSON
// methods are ignored under Yaegi, and an error path should not allocate
// much). Its output is byte for byte what encoding/json.Marshal produces for
// the same Problem: strings are escaped the same way, including the HTML
// characters <, > and &, U+2028 and U+2029, and each byte of invalid UTF-8
// becomes U+FFFD.
//
// The package runs under the Yaegi interpreter (Traefik plugin): standard
// library only, no generics.
package problem

import (
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ContentType is the media type of a problem document (RFC 9457 §3).
const ContentType = "application/problem+json"

// typeBase prefixes every problem type URI of contentguard.
const typeBase = "https://contentguard.dev/problems/"

// Problem is one RFC 9457 problem document. RequestID and Reason are
// extension members: the request's ID and a machine-readable decision reason
// code.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// New returns a Problem of type TypeURI(slug). An empty title becomes the
// status's standard text ("Too Many Requests").
func New(status int, slug, title, detail string) Problem {
	if title == "" {
		title = http.StatusText(status)
	}
	return Problem{Type: TypeURI(slug), Title: title, Status: status, Detail: detail}
}

// TypeURI returns "https://contentguard.dev/problems/<slug>", or
// "about:blank" (RFC 9457 §4.2.1: no more than the status code says) for an
// empty slug.
func TypeURI(slug string) string {
	if slug == "" {
		return "about:blank"
	}
	return typeBase + slug
}

// JSON returns the problem document. Members appear in the struct's order;
// empty optional members are left out.
func (p Problem) JSON() []byte {
	// Room for all member names and quotes (86 bytes), the status (up to 20)
	// and the strings as they are: one allocation unless escapes expand them.
	size := 106 + len(p.Type) + len(p.Title) + len(p.Detail) + len(p.Instance) + len(p.RequestID) + len(p.Reason)
	b := make([]byte, 0, size)
	b = append(b, `{"type":`...)
	b = appendString(b, p.Type)
	b = append(b, `,"title":`...)
	b = appendString(b, p.Title)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(p.Status), 10)
	b = appendMember(b, `,"detail":`, p.Detail)
	b = appendMember(b, `,"instance":`, p.Instance)
	b = appendMember(b, `,"request_id":`, p.RequestID)
	b = appendMember(b, `,"reason":`, p.Reason)
	return append(b, '}')
}

// appendMember appends an optional string member, unless it is empty.
func appendMember(b []byte, key, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, key...)
	return appendString(b, value)
}

const hexDigits = "0123456789abcdef"

// specialChars are the ASCII bytes that a JSON string escapes (control
// characters, '"', '\\' and the HTML characters encoding/json escapes).
const specialChars = "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f" +
	"\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\"\\<>&"

// asciiEscaper replaces each special ASCII byte by its escape. A
// strings.Replacer of single bytes is a precomputed 256-entry table: no
// set-up per call, compiled code even under Yaegi, and no allocation when
// nothing needs escaping. It is built once and never changed.
var asciiEscaper = newASCIIEscaper()

func newASCIIEscaper() *strings.Replacer {
	pairs := make([]string, 0, 2*len(specialChars))
	for i := 0; i < len(specialChars); i++ {
		c := specialChars[i]
		pairs = append(pairs, specialChars[i:i+1], string(appendASCIIEscape(nil, c)))
	}
	return strings.NewReplacer(pairs...)
}

// appendString appends s as a JSON string, escaped as encoding/json does.
//
// Valid UTF-8 without U+2028/U+2029 (whose encodings start with 0xE2) needs
// only its ASCII special bytes escaped, which asciiEscaper does in one call.
// Anything else takes the byte-by-byte path.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	if utf8.ValidString(s) && strings.IndexByte(s, 0xE2) < 0 {
		b = append(b, asciiEscaper.Replace(s)...)
	} else {
		b = appendEachByte(b, s)
	}
	return append(b, '"')
}

// appendEachByte escapes s one byte (or rune) at a time, replacing invalid
// UTF-8 by U+FFFD and escaping U+2028/U+2029 (valid JSON, but line ends in
// JavaScript).
func appendEachByte(b []byte, s string) []byte {
	for s != "" {
		c := s[0]
		if c < utf8.RuneSelf {
			if strings.IndexByte(specialChars, c) >= 0 {
				b = appendASCIIEscape(b, c)
			} else {
				b = append(b, c)
			}
			s = s[1:]
			continue
		}
		r, size := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0x0f])
		default:
			b = append(b, s[:size]...)
		}
		s = s[size:]
	}
	return b
}

// appendASCIIEscape appends the escape of one special ASCII byte.
func appendASCIIEscape(b []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(b, '\\', c)
	case '\b':
		return append(b, '\\', 'b')
	case '\f':
		return append(b, '\\', 'f')
	case '\n':
		return append(b, '\\', 'n')
	case '\r':
		return append(b, '\\', 'r')
	case '\t':
		return append(b, '\\', 't')
	}
	// other control characters and <, >, &
	return append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0x0f])
}
