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
// library only, no generics, and byte scans done by compiled standard
// library functions rather than interpreted loops.
package urlpath

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/contentguard/contentguard/internal/httpsyntax"
)

// MaxLen is the longest path, in bytes, that Normalize accepts or returns.
const MaxLen = 8192

const (
	// unreservedChars are RFC 3986 unreserved: an escape of one is decoded.
	unreservedChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
	// keepChars may stand in a path as they are: unreserved, sub-delims,
	// ':' and '@' (RFC 3986 pchar without pct-encoded).
	keepChars = unreservedChars + "!$&'()*+,;=:@"
	// normalChars may appear in a path that is already normal.
	normalChars = keepChars + "/"
	// rawChars need no byte-by-byte look: kept, or handled as escape or
	// segment boundary.
	rawChars = normalChars + "%\\"
)

// rawFilter checks for rawChars (see httpsyntax.NewFilter): one call into
// compiled code under Yaegi, no set-up per call compiled. Built once, never
// changed.
var rawFilter = httpsyntax.NewFilter(rawChars)

// Normalize returns the normal form of escapedPath, or false when the path is
// refused. See the package documentation for the rules.
func Normalize(escapedPath string) (string, bool) {
	n := len(escapedPath)
	if n == 0 || n > MaxLen || escapedPath[0] != '/' {
		return "", false
	}
	// Already normal: only bytes kept as they are, no empty segment but a
	// final trailing slash, and no segment starting with a dot
	// (conservative: "/.well-known" takes the long way and comes out the
	// same). Three compiled calls, and no allocation; the long way is a
	// function of its own, so that an interpreted caller (the Traefik
	// plugin) pays for nothing else on a normal path.
	if len(normalFilter.Replace(escapedPath)) == n &&
		!strings.Contains(escapedPath, "//") && !strings.Contains(escapedPath, "/.") {
		return escapedPath, true
	}
	return normalize(escapedPath)
}

// normalFilter drops every byte that may not appear in a normal path (see
// httpsyntax.NewFilter). Built once, never changed.
var normalFilter = httpsyntax.NewFilter(normalChars)

// normalize is Normalize for a path that is not normal already.
func normalize(escapedPath string) (string, bool) {
	n := len(escapedPath)
	// plain: every raw byte is one to keep, a '%' or a slash or backslash
	// (true nearly always), so the runs between '%', '/' and '\\' can be
	// copied whole; otherwise appendRaw looks at each byte. The filter
	// allocates only when the check fails.
	plain := len(rawFilter.Replace(escapedPath)) == n
	out := make([]byte, 0, n+8)
	last := segEmpty // the kind of the last segment decides the trailing slash
	i := 1
	for {
		// Decode one segment, appending it to out after a '/'. The segment
		// ends at a raw or escaped slash or backslash, or at the end.
		out = append(out, '/')
		start := len(out)
		end := true // no separator follows: this is the last segment
		for i < n {
			run := n
			if k := strings.IndexAny(escapedPath[i:], "%/\\"); k >= 0 {
				run = i + k
			}
			if plain {
				out = append(out, escapedPath[i:run]...)
			} else {
				var ok bool
				if out, ok = appendRaw(out, escapedPath[i:run]); !ok {
					return "", false
				}
			}
			i = run
			if i == n {
				break
			}
			if escapedPath[i] != '%' {
				i++ // a slash or backslash
				end = false
				break
			}
			if i+2 >= n {
				return "", false // truncated escape
			}
			v, err := strconv.ParseUint(escapedPath[i+1:i+3], 16, 8)
			if err != nil {
				return "", false // not two hex digits
			}
			c := byte(v)
			i += 3
			if c == '/' || c == '\\' {
				end = false
				break
			}
			if c < 0x20 || c == 0x7f {
				return "", false
			}
			if strings.IndexByte(unreservedChars, c) >= 0 {
				out = append(out, c)
			} else {
				out = appendEscape(out, c)
			}
		}

		last = segKind(out[start:])
		switch last {
		case segEmpty, segDot: // drop it, and the slash before it
			out = out[:start-1]
		case segDotDot: // drop it and the segment before it
			out = out[:start-1]
			if k := bytes.LastIndexByte(out, '/'); k >= 0 {
				out = out[:k]
			}
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
	if k := bytes.IndexByte(seg, ';'); k >= 0 {
		base = seg[:k]
	}
	if len(base) > 2 || len(base) == 2 && base[1] != '.' {
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

// appendRaw appends a run of raw bytes that holds no '%', '/' or '\\':
// bytes to keep as they are, bytes percent-encoded, and false for a control
// character.
func appendRaw(out []byte, run string) ([]byte, bool) {
	for j := 0; j < len(run); j++ {
		c := run[j]
		if c < 0x20 || c == 0x7f {
			return out, false
		}
		if strings.IndexByte(keepChars, c) >= 0 {
			out = append(out, c)
		} else {
			out = appendEscape(out, c)
		}
	}
	return out, true
}

const upperHex = "0123456789ABCDEF"

func appendEscape(b []byte, c byte) []byte {
	return append(b, '%', upperHex[c>>4], upperHex[c&0x0f])
}

// HasParameter reports whether a normalised path has a ';' path parameter,
// raw or escaped ("%3B": Normalize writes escapes in upper case).
//
// Servlet containers (Tomcat, Jetty) and Spring cut "/admin;jsessionid=1/"
// to "/admin/" before routing, while the edge would match the literal
// segment "admin;jsessionid=1": the two disagree on which route a request
// meets, and that disagreement is a known route bypass. The engine refuses
// such paths unless the policy says the upstream reads parameters, and
// then matches them with StripParameters.
func HasParameter(normal string) bool {
	return strings.IndexByte(normal, ';') >= 0 || strings.Contains(normal, "%3B")
}

// StripParameters returns a normalised path without its ';' path
// parameters, as a servlet container reads it: each segment is cut at its
// first ';' (or "%3B"), and the result is normalised again, so that a
// segment left empty or a dot segment uncovered by the cut
// ("/.%3Bx/admin") is removed: "/admin;x/" is "/admin/", "/a/;x/b" is
// "/a/b". A path without parameters is returned as is.
func StripParameters(normal string) string {
	if !HasParameter(normal) {
		return normal
	}
	out := make([]byte, 0, len(normal))
	cut := false // inside a parameter: skip to the next '/'
	for i := 0; i < len(normal); i++ {
		c := normal[i]
		switch {
		case c == '/':
			cut = false
		case cut:
			continue
		case c == ';' || c == '%' && strings.HasPrefix(normal[i:], "%3B"):
			cut = true
			continue
		}
		out = append(out, c)
	}
	stripped, ok := Normalize(string(out))
	if !ok {
		return normal // never: out is made of normal segments
	}
	return stripped
}
