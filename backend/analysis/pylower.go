package analysis

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// pyLower is Python's str.lower(): Go's simple lower-case mapping per code
// point, plus the two places where Python differs from it:
//
//   - U+0130 'İ' has the unconditional full mapping "i\u0307" (SpecialCasing.txt);
//   - U+03A3 'Σ' becomes final sigma 'ς' in the Final_Sigma context
//     (preceded by a cased letter, not followed by one, case-ignorable
//     characters skipped), as CPython's handle_capital_sigma does.
//
// Invalid UTF-8 bytes become U+FFFD, like every other Go string walk.
func pyLower(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	var tmp [3]rune
	for i, r := range s {
		for _, lr := range pyLowerRune(s, i, r, tmp[:0]) {
			b.WriteRune(lr)
		}
	}
	return b.String()
}

// pyLowerRune appends the Python lower-case expansion of r, found at byte
// offset i of s, to dst.
func pyLowerRune(s string, i int, r rune, dst []rune) []rune {
	switch {
	case r < utf8.RuneSelf:
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return append(dst, r)
	case r == 0x130:
		return append(dst, 'i', 0x307)
	case r == 0x3A3:
		if finalSigma(s, i) {
			return append(dst, 0x3C2)
		}
		return append(dst, 0x3C3)
	}
	return append(dst, unicode.ToLower(r))
}

// finalSigma reports whether the capital sigma at byte offset i of s is in
// the Final_Sigma context:
// \p{cased}\p{case-ignorable}* Σ !(\p{case-ignorable}* \p{cased}).
func finalSigma(s string, i int) bool {
	j := i
	before := rune(-1)
	for j > 0 {
		r, size := utf8.DecodeLastRuneInString(s[:j])
		j -= size
		if !isCaseIgnorable(r) {
			before = r
			break
		}
	}
	if before < 0 || !isCased(before) {
		return false
	}
	for _, r := range s[i+utf8.RuneLen(0x3A3):] {
		if !isCaseIgnorable(r) {
			return !isCased(r)
		}
	}
	return true
}

// isCased is the Unicode Cased property: Lowercase, Uppercase or Lt.
func isCased(r rune) bool {
	return unicode.IsLower(r) || unicode.IsUpper(r) || unicode.IsTitle(r) ||
		unicode.Is(unicode.Other_Lowercase, r) || unicode.Is(unicode.Other_Uppercase, r)
}

// isCaseIgnorable is the Unicode Case_Ignorable property: Mn, Me, Cf, Lm,
// Sk, or Word_Break MidLetter, MidNumLet or Single_Quote (listed here, Go has
// no Word_Break table).
func isCaseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', 0xB7, 0x387, 0x55F, 0x5F4, 0x2018, 0x2019, 0x2024, 0x2027,
		0xFE13, 0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}

// pyIsSpace is Python's str.isspace() for one code point (the set str.strip()
// removes): bidi classes WS, B, S and category Zs. Unlike Go's unicode.IsSpace
// it includes U+001C..U+001F.
func pyIsSpace(r rune) bool {
	switch {
	case r >= 0x09 && r <= 0x0D, r >= 0x1C && r <= 0x20, r == 0x85, r == 0xA0, r == 0x1680,
		r >= 0x2000 && r <= 0x200A, r == 0x2028, r == 0x2029, r == 0x202F, r == 0x205F, r == 0x3000:
		return true
	}
	return false
}

// pyStrip is Python's str.strip() with no argument.
func pyStrip(s string) string {
	return strings.TrimFunc(s, pyIsSpace)
}
