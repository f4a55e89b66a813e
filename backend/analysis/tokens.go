package analysis

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Tokens returns the words of s the way the original service found them:
// Python's re.findall(r'\w+', s.lower()).
//
// That is: s is lower-cased with Python's str.lower semantics (full
// lower-case mapping, so 'İ' becomes "i̇", and Greek capital sigma becomes
// final 'ς' at the end of a word), then every maximal run of "word"
// characters is a token. A word character is what Python's str.isalnum()
// accepts plus '_': letters (Lu, Ll, Lt, Lm, Lo) and numbers (Nd, Nl, No).
// Combining marks (Mn, Mc, Me) are NOT word characters, exactly as in
// Python, so "i̇stanbul" yields "i" and "stanbul".
//
// Invalid UTF-8 bytes are read as U+FFFD, which is not a word character: they
// separate tokens and never panic.
func Tokens(s string) []string {
	var out []string
	scanTokens(s, func(tok string, _, _ int) { out = append(out, tok) })
	return out
}

// scanTokens calls emit for every token of s with its half-open code-point
// span [start, end) in the ORIGINAL (not lower-cased) string. A code point
// here is one iteration of a Go range loop, so an invalid UTF-8 byte counts
// as one code point, like the U+FFFD it decodes to.
func scanTokens(s string, emit func(tok string, start, end int)) {
	var (
		buf     strings.Builder
		inTok   bool
		start   int // code point where the current token starts
		last    int // code point that contributed the token's last rune
		cp      int // index of the current original code point
		lowered [3]rune
	)
	flush := func() {
		if inTok {
			emit(buf.String(), start, last+1)
			buf.Reset()
			inTok = false
		}
	}
	for i, r := range s {
		for _, lr := range pyLowerRune(s, i, r, lowered[:0]) {
			if !isWordRune(lr) {
				flush()
				continue
			}
			if !inTok {
				inTok, start = true, cp
			}
			buf.WriteRune(lr)
			last = cp
		}
		cp++
	}
	flush()
}

// isWordRune is Python's \w for str patterns: str.isalnum() or '_'.
func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return r == '_' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9')
	}
	return unicode.IsLetter(r) || unicode.IsNumber(r)
}
