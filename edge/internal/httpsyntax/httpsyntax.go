// Package httpsyntax holds the few RFC 9110 lexical rules that the edge
// packages share — tokens (header names, methods, parameter names) and
// optional whitespace — and byte-set scans that stay fast under Yaegi.
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
	return s != "" && OnlyOf(s, TokenChars)
}

// OnlyOf reports whether every byte of s is one of the ASCII bytes of set.
//
// It scans with strings.TrimLeft, which is compiled code even under Yaegi:
// a byte loop in interpreted code costs about a microsecond per byte there,
// this costs a few nanoseconds.
func OnlyOf(s, set string) bool {
	return strings.TrimLeft(s, set) == ""
}

// SpanOf returns the length of the longest prefix of s made of bytes of the
// ASCII set (compiled code under Yaegi, like OnlyOf).
func SpanOf(s, set string) int {
	return len(s) - len(strings.TrimLeft(s, set))
}

// TrimOWS trims optional whitespace (spaces and tabs) at both ends of s.
func TrimOWS(s string) string {
	return strings.Trim(s, " \t")
}
