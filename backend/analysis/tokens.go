package analysis

import (
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
//
// A token whose bytes lower-case to themselves (the common case: lower-case
// text) is emitted as a substring of s, without allocating; only tokens that
// lower-casing changes are built in a buffer.
func scanTokens(s string, emit func(tok string, start, end int)) {
	var (
		buf       []byte // the lowered token, once it differs from s
		inTok     bool
		changed   bool // buf holds the token (it differs from s[byteStart:byteEnd])
		byteStart int
		byteEnd   int
		start     int // code point where the current token starts
		last      int // code point that contributed the token's last rune
		cp        int // index of the current original code point
		lowered   [3]rune
	)
	flush := func() {
		if !inTok {
			return
		}
		if changed {
			emit(string(buf), start, last+1)
		} else {
			emit(s[byteStart:byteEnd], start, last+1)
		}
		inTok = false
	}
	begin := func(i int) {
		inTok, changed, byteStart, start = true, false, i, cp
	}
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if !asciiWord[c] {
				flush()
			} else {
				if !inTok {
					begin(i)
				}
				if 'A' <= c && c <= 'Z' {
					if !changed {
						changed, buf = true, append(buf[:0], s[byteStart:i]...)
					}
					c += 'a' - 'A'
				}
				if changed {
					buf = append(buf, c)
				}
				byteEnd, last = i+1, cp
			}
			i++
			cp++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		expansion := pyLowerRune(s, i, r, lowered[:0])
		identical := len(expansion) == 1 && expansion[0] == r
		for _, lr := range expansion {
			if !isWordRune(lr) {
				flush()
				continue
			}
			if !inTok {
				begin(i)
			}
			if !identical && !changed {
				changed, buf = true, append(buf[:0], s[byteStart:i]...)
			}
			if changed {
				buf = utf8.AppendRune(buf, lr)
			}
			byteEnd, last = i+size, cp
		}
		i += size
		cp++
	}
	flush()
}

// asciiWord marks the ASCII bytes that are word characters.
var asciiWord = func() (t [utf8.RuneSelf]bool) {
	for c := 0; c < utf8.RuneSelf; c++ {
		t[c] = c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
	}
	return t
}()

// isWordRune is Python's \w for str patterns: str.isalnum() or '_'.
func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return r == '_' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9')
	}
	return unicode.IsLetter(r) || unicode.IsNumber(r)
}
