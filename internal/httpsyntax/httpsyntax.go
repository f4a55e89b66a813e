// Package httpsyntax holds the few RFC 9110 lexical rules that the edge
// packages and request IDs share — tokens (header names, methods, parameter names) — and
// byte-set filters that are fast both compiled and under Yaegi.
//
// The package runs under the Yaegi interpreter (Traefik plugin): standard
// library only, no generics.
package httpsyntax

import "strings"

// TokenChars are the characters of an RFC 9110 token.
const TokenChars = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// FieldValueChars are the bytes a header field value may hold as sent by
// the edge: tab, visible ASCII and space, and every byte above 0x7f
// (obs-text); no other control byte.
var FieldValueChars = func() string {
	b := []byte{'\t'}
	for c := 0x20; c < 0x100; c++ {
		if c != 0x7f {
			b = append(b, byte(c))
		}
	}
	return string(b)
}()

// tokenFilter drops every byte that is not a token character.
var tokenFilter = NewFilter(TokenChars)

// IsToken reports whether s is a non-empty RFC 9110 token:
// 1*( ALPHA / DIGIT / "!#$%&'*+-.^_`|~" ).
func IsToken(s string) bool {
	return s != "" && len(tokenFilter.Replace(s)) == len(s)
}

// NewFilter returns a replacer that deletes every byte not in set, so that
//
//	len(filter.Replace(s)) == len(s)
//
// reports whether s holds only bytes of set. A strings.Replacer of single
// bytes is a 256-entry table built once: checking costs about a nanosecond
// a byte with no set-up per call and no allocation when s passes, and it is
// one call into compiled code under Yaegi, where a byte loop costs about a
// microsecond a byte. (strings.TrimLeft would rebuild its byte set on every
// call.) The filter is safe for concurrent use; do not change it.
func NewFilter(set string) *strings.Replacer {
	pairs := make([]string, 0, 2*256)
	for c := 0; c < 256; c++ {
		b := []byte{byte(c)}
		if strings.IndexByte(set, byte(c)) < 0 {
			pairs = append(pairs, string(b), "")
		}
	}
	return strings.NewReplacer(pairs...)
}
