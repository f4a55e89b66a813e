// Package httpsyntax holds the few RFC 9110 lexical rules that the edge
// packages share — tokens (header names, methods, parameter names) — and a
// byte-set scan that stays fast under Yaegi.
//
// The package runs under the Yaegi interpreter (Traefik plugin): standard
// library only, no generics.
package httpsyntax

import "strings"

// TokenChars are the characters of an RFC 9110 token.
const TokenChars = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// IsToken reports whether s is a non-empty RFC 9110 token:
// 1*( ALPHA / DIGIT / "!#$%&'*+-.^_`|~" ).
func IsToken(s string) bool {
	return s != "" && strings.TrimLeft(s, TokenChars) == "" // not OnlyOf: one call less under Yaegi
}

// OnlyOf reports whether every byte of s is one of the ASCII bytes of set.
//
// It scans with strings.TrimLeft, which is compiled code even under Yaegi:
// a byte loop in interpreted code costs about a microsecond per byte there,
// this costs a few nanoseconds.
func OnlyOf(s, set string) bool {
	return strings.TrimLeft(s, set) == ""
}
