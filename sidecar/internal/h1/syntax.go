package h1

import (
	"strings"
)

// isHopByHop reports the fields RFC 9110 §7.6.1 and common practice treat
// as hop-by-hop, besides Connection and Transfer-Encoding.
func isHopByHop(name string) bool {
	switch len(name) {
	case 2:
		return equalFold(name, "te")
	case 7:
		return equalFold(name, "upgrade")
	case 10:
		return equalFold(name, "keep-alive")
	case 16:
		return equalFold(name, "proxy-connection")
	case 18:
		return equalFold(name, "proxy-authenticate")
	case 19:
		return equalFold(name, "proxy-authorization")
	}
	return false
}

// IsRequestHopByHop reports whether a request field is not forwarded
// upstream: the hop-by-hop fields and the framing the proxy writes itself.
func IsRequestHopByHop(name string) bool {
	return isHopByHop(name) || equalFold(name, "connection") || equalFold(name, "transfer-encoding") ||
		equalFold(name, "trailer")
}

// cutLine splits s at its first CRLF. A bare CR or LF before it fails.
func cutLine(s string) (line, rest string, ok bool) {
	i := strings.IndexByte(s, '\n')
	if i < 1 || s[i-1] != '\r' {
		return "", "", false
	}
	line = s[:i-1]
	if strings.IndexByte(line, '\r') >= 0 {
		return "", "", false
	}
	return line, s[i+1:], true
}

// parseField splits a field line: a token name, ':', optional whitespace,
// a value of visible ASCII, spaces and tabs, optional whitespace. Obsolete
// line folding never reaches here: a line starting with whitespace has an
// empty name.
//
// values is the class every byte of the value must be in: classValue for
// requests (anything else goes to net/http), classObsValue for responses,
// whose values may carry obs-text (a raw UTF-8 file name, say) as net/http's
// client and RFC 9110 §5.5 allow; it never affects framing.
func parseField(line string, values uint8) (Field, bool) {
	name, value, ok := strings.Cut(line, ":")
	if !ok || !isToken(name) {
		return Field{}, false
	}
	value = trimOWS(value)
	for i := 0; i < len(value); i++ {
		if class[value[i]]&values == 0 {
			return Field{}, false
		}
	}
	return Field{Name: name, Value: value}, true
}

// parseLength parses a Content-Length value: 1 to 18 digits (so it fits an
// int64 with no overflow check).
func parseLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// connectionOptions accepts a request's Connection value made only of
// "close" and "keep-alive" (any case); others name hop-by-hop fields the
// fast path does not track.
func connectionOptions(v string) (close, ok bool) {
	for v != "" {
		var opt string
		switch opt, v = nextElement(v); {
		case opt == "":
		case equalFold(opt, "close"):
			close = true
		case equalFold(opt, "keep-alive"):
		default:
			return false, false
		}
	}
	return close, true
}

// nextElement splits the first element, without its surrounding
// whitespace, off a comma-separated field value (RFC 9110 §5.6.1).
func nextElement(v string) (elem, rest string) {
	elem, rest, _ = strings.Cut(v, ",")
	return trimOWS(elem), rest
}

func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// equalFold is ASCII case-insensitive equality against lower, which must be
// lower case.
func equalFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// EqualFold reports whether a and b are equal under ASCII case folding.
func EqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// Character classes, one table lookup a byte.
const (
	classToken    = 1 << iota // RFC 9110 tchar
	classValue                // field-vchar minus obs-text, SP, HTAB
	classTarget               // what this parser accepts in an origin-form target
	classHost                 // what net/http's server accepts in Host
	classObsValue             // classValue plus obs-text (0x80-0xFF): responses only
)

var class = func() (t [256]uint8) {
	for c := 0x21; c < 0x7f; c++ {
		t[c] |= classValue | classTarget
	}
	t[' '] |= classValue
	t['\t'] |= classValue
	for c := 0; c < 256; c++ {
		if t[c]&classValue != 0 || c >= 0x80 {
			t[c] |= classObsValue
		}
	}
	t['#'] &^= classTarget // a fragment never belongs in a request
	for _, c := range "!$%&'()*+,-.:;=[]_~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" {
		t[c] |= classHost
	}
	for _, c := range "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" {
		t[c] |= classToken
	}
	return t
}()

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if class[s[i]]&classToken == 0 {
			return false
		}
	}
	return true
}

func isHost(s string) bool {
	for i := 0; i < len(s); i++ {
		if class[s[i]]&classHost == 0 {
			return false
		}
	}
	return true
}

// isOriginForm accepts "/" followed by target bytes, where every '%' in
// the path (before '?') starts a valid escape: net/url refuses "/%zz" and
// net/http answers 400, while the query is never decoded by net/http.
func isOriginForm(s string) bool {
	if s == "" || s[0] != '/' {
		return false
	}
	query := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if class[c]&classTarget == 0 {
			return false
		}
		switch {
		case c == '?':
			query = true
		case c == '%' && !query:
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
