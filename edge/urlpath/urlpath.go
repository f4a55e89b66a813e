// Package urlpath normalises a request path once, so that route matching at
// the edge and routing at the upstream see the same path.
//
// The upstream receives Normalize's output verbatim, which is what makes
// matching and forwarding agree: "/api/v1/..%2F..%2Fadmin/" cannot match a
// public route at the edge and then reach /admin/ behind it. The rules, in
// the order they apply:
//
//  1. The input is the escaped path (r.URL.EscapedPath(), or the path part of
//     the request target). It must start with "/" and be at most MaxLen bytes;
//     otherwise it is refused.
//  2. One decoding pass, never two. "%XX" with two hex digits is required
//     ("%zz" and a truncated "%4" are refused). Escapes of unreserved
//     characters (ALPHA DIGIT - . _ ~) are decoded (RFC 3986 §6.2.2.2). "%2F",
//     "%5C" and a raw "\" become "/", so an encoded slash cannot hide a
//     segment boundary. Every other escape is kept, with upper-case hex: "%25"
//     stays "%25", so "%252e" is the literal segment "%252e", not a dot.
//  3. Control characters, raw or escaped (NUL, CR, LF, ... and DEL), are
//     refused. Raw bytes that may not appear in a path (space, '"', '<', '>',
//     '[', ']', '^', '`', '{', '|', '}', '?', '#' and non-ASCII) are
//     percent-encoded, which is what a client should have sent.
//  4. Empty segments are dropped: duplicate slashes collapse to one.
//  5. Dot segments are removed (RFC 3986 §5.2.4): "." goes, ".." removes the
//     segment before it, and ".." at the root stays at the root. A final "."
//     or ".." leaves a trailing slash, as in RFC 3986; a trailing slash in the
//     input is kept.
//  6. A segment that is "." or ".." followed by a ";" path parameter ("..;")
//     is refused: servers disagree on whether it is a dot segment (Tomcat
//     says yes), and that disagreement is a known route bypass.
//  7. An output longer than MaxLen is refused.
//
// Normalize is idempotent: Normalize(Normalize(p)) == Normalize(p). A path
// that is already normal is returned as is, without allocating.
//
// The package runs under the Yaegi interpreter (Traefik plugin): standard
// library only, no generics.
package urlpath

// MaxLen is the longest path, in bytes, that Normalize accepts or returns.
const MaxLen = 8192

// Byte classes for one path byte.
const (
	classRefused = iota // control characters: the path is refused
	classKeep           // allowed as is: unreserved, sub-delims, ':' and '@'
	classEncode         // must be percent-encoded in a path
	classSlash          // '/' and '\': a segment boundary
	classPercent        // '%': starts an escape
)

// classOf classifies one raw (not escaped) byte of a path.
func classOf(c byte) int {
	switch {
	case c < 0x20 || c == 0x7f:
		return classRefused
	case c == '/' || c == '\\':
		return classSlash
	case c == '%':
		return classPercent
	case isUnreserved(c):
		return classKeep
	}
	switch c {
	case '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@':
		return classKeep
	}
	return classEncode
}

// isUnreserved reports whether c is an RFC 3986 unreserved character.
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// Normalize returns the normal form of escapedPath, or false when the path is
// refused. See the package documentation for the rules.
func Normalize(escapedPath string) (string, bool) {
	n := len(escapedPath)
	if n == 0 || n > MaxLen || escapedPath[0] != '/' {
		return "", false
	}
	if isNormal(escapedPath) {
		return escapedPath, true
	}

	out := make([]byte, 0, n+8)
	last := segEmpty // the kind of the last segment decides the trailing slash
	i := 1
	for {
		// Decode one segment, appending it to out after a '/'.
		out = append(out, '/')
		start := len(out)
		end := false
		for {
			if i >= n {
				end = true
				break
			}
			c := escapedPath[i]
			switch classOf(c) {
			case classRefused:
				return "", false
			case classKeep:
				out = append(out, c)
				i++
				continue
			case classEncode:
				out = appendEscape(out, c)
				i++
				continue
			case classSlash:
				i++
			case classPercent:
				if i+2 >= n {
					return "", false
				}
				hi, ok1 := unhex(escapedPath[i+1])
				lo, ok2 := unhex(escapedPath[i+2])
				if !ok1 || !ok2 {
					return "", false
				}
				v := hi<<4 | lo
				i += 3
				if v == '/' || v == '\\' {
					break // a segment boundary, as if raw
				}
				if v < 0x20 || v == 0x7f {
					return "", false
				}
				if isUnreserved(v) {
					out = append(out, v)
				} else {
					out = appendEscape(out, v)
				}
				continue
			}
			break // reached a boundary
		}

		seg := out[start:]
		last = segKind(seg)
		switch last {
		case segEmpty, segDot: // drop it, and the slash before it
			out = out[:start-1]
		case segDotDot: // drop it and the segment before it
			out = out[:start-1]
			out = out[:lastSlash(out)]
		case segRefused:
			return "", false
		}
		if end {
			break
		}
	}

	if len(out) == 0 {
		return "/", true
	}
	if last != segName {
		out = append(out, '/')
	}
	if len(out) > MaxLen {
		return "", false
	}
	return string(out), true
}

// Kinds of decoded segment, for dot-segment removal.
const (
	segEmpty   = iota // "" (between two slashes, or after the last one)
	segDot            // "."
	segDotDot         // ".."
	segName           // anything else
	segRefused        // "." or ".." with a ";" parameter
)

// segKind says what a decoded segment is.
func segKind(seg []byte) int {
	if len(seg) == 0 {
		return segEmpty
	}
	if seg[0] != '.' {
		return segName
	}
	base := seg
	for j := 0; j < len(seg); j++ {
		if seg[j] == ';' {
			base = seg[:j]
			break
		}
	}
	switch {
	case len(base) == 1:
	case len(base) == 2 && base[1] == '.':
	default:
		return segName
	}
	if len(base) != len(seg) {
		return segRefused
	}
	if len(base) == 1 {
		return segDot
	}
	return segDotDot
}

// lastSlash returns the index of the last '/' in b, or 0.
func lastSlash(b []byte) int {
	for j := len(b) - 1; j >= 0; j-- {
		if b[j] == '/' {
			return j
		}
	}
	return 0
}

// isNormal reports whether p (which starts with "/") is already in normal
// form: only bytes that are kept as they are, no escapes, no empty segment
// except a final trailing slash, and no segment starting with a dot (a
// conservative test: "/.well-known" takes the slow path and comes out the same).
func isNormal(p string) bool {
	for i := 1; i < len(p); i++ {
		c := p[i]
		if c == '/' {
			if p[i-1] == '/' {
				return false
			}
			continue
		}
		if classOf(c) != classKeep {
			return false
		}
		if c == '.' && p[i-1] == '/' {
			return false
		}
	}
	return true
}

const upperHex = "0123456789ABCDEF"

func appendEscape(b []byte, c byte) []byte {
	return append(b, '%', upperHex[c>>4], upperHex[c&0x0f])
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
