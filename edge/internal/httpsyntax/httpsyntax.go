// Package httpsyntax holds the few RFC 9110 lexical rules that the edge
// packages share: tokens (header names, methods, parameter names) and
// optional whitespace.
//
// The package runs under the Yaegi interpreter (Traefik plugin): standard
// library only, no generics.
package httpsyntax

// IsToken reports whether s is a non-empty RFC 9110 token:
// 1*( ALPHA / DIGIT / "!#$%&'*+-.^_`|~" ).
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenByte(s[i]) {
			return false
		}
	}
	return true
}

func isTokenByte(c byte) bool {
	if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// TrimOWS trims optional whitespace (spaces and tabs) at both ends of s.
func TrimOWS(s string) string {
	i, j := 0, len(s)
	for i < j && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	for j > i && (s[j-1] == ' ' || s[j-1] == '\t') {
		j--
	}
	return s[i:j]
}
