package analysis

import (
	"math"
	"strings"
	"unicode"
)

// Quality is the result of AssessQuality. Its first four JSON names are the
// original service's contract; the rest are additions.
type Quality struct {
	// ReadabilityScore is the Flesch reading ease, clamped to 0..100.
	ReadabilityScore float64 `json:"readability_score"`
	// ComplexityScore is RedundancyScore*100 (the original's definition).
	ComplexityScore float64 `json:"complexity_score"`
	// QualityRating is a band of ReadabilityScore: >= 80 "Excellent",
	// >= 60 "Good", >= 40 "Fair", else "Needs Improvement".
	QualityRating string `json:"quality_rating"`
	// Suggestions are the original's fixed advice strings for the band.
	Suggestions []string `json:"suggestions"`
	// FleschKincaidGrade is 0.39 W/S + 11.8 Syl/W - 15.59 (not clamped).
	FleschKincaidGrade float64 `json:"flesch_kincaid_grade"`
	Sentences          int     `json:"sentences"`
	Words              int     `json:"words"`
	Syllables          int     `json:"syllables"`
}

// Quality rating bands.
const (
	RatingExcellent        = "Excellent"
	RatingGood             = "Good"
	RatingFair             = "Fair"
	RatingNeedsImprovement = "Needs Improvement"
)

// AssessQuality rates the readability of content.
//
// Sentences are the non-blank pieces between runs of '.', '!' and '?' (the
// original's re.split(r'[.!?]+') with blank pieces dropped); words are
// Tokens; syllables come from countSyllables, an English heuristic.
//
//	reading ease = 206.835 - 1.015 W/S - 84.6 Syl/W, clamped to [0, 100]
//	grade        = 0.39 W/S + 11.8 Syl/W - 15.59
//
// Content without words or sentences scores 0 (as in the original).
func AssessQuality(content string) Quality {
	q := Quality{Sentences: countSentences(content)}
	uniq := make(map[string]struct{}, len(content)/32)
	scanTokens(content, func(w string, _, _ int) {
		q.Words++
		q.Syllables += countSyllables(w)
		uniq[w] = struct{}{}
	})
	if q.Words > 0 && q.Sentences > 0 {
		wps := float64(q.Words) / float64(q.Sentences)
		spw := float64(q.Syllables) / float64(q.Words)
		q.ReadabilityScore = math.Max(0, math.Min(100, 206.835-1.015*wps-84.6*spw))
		q.FleschKincaidGrade = 0.39*wps + 11.8*spw - 15.59
	}
	q.ComplexityScore = redundancy(len(uniq), q.Words) * 100
	q.QualityRating = rating(q.ReadabilityScore)
	q.Suggestions = suggestions(q.ReadabilityScore)
	return q
}

func rating(score float64) string {
	switch {
	case score >= 80:
		return RatingExcellent
	case score >= 60:
		return RatingGood
	case score >= 40:
		return RatingFair
	}
	return RatingNeedsImprovement
}

// suggestions are the original service's strings, per readability band.
func suggestions(score float64) []string {
	switch {
	case score < 40:
		return []string{
			"Consider using shorter sentences",
			"Use simpler and clearer words",
			"Improve text structure and organization",
			"Avoid excessive word repetition",
		}
	case score < 60:
		return []string{
			"Reduce average sentence length",
			"Use clearer and more direct vocabulary",
			"Improve text flow",
		}
	case score < 80:
		return []string{"Text is good, consider small clarity improvements"}
	}
	return []string{"Text has excellent quality and readability"}
}

// countSentences counts the pieces of re.split(r'[.!?]+', s) that are not
// blank after Python's str.strip().
func countSentences(s string) int {
	n := 0
	nonBlank := false
	for _, r := range s {
		switch {
		case r == '.' || r == '!' || r == '?':
			if nonBlank {
				n++
			}
			nonBlank = false
		case !pyIsSpace(r):
			nonBlank = true
		}
	}
	if nonBlank {
		n++
	}
	return n
}

// countSyllables estimates the syllables of one lower-case token. It is an
// English heuristic (exact counting needs a pronunciation dictionary):
//
//   - a token with a Han, Hiragana, Katakana or Hangul character counts one
//     syllable per such character (each is a syllable or a mora);
//   - otherwise syllables are the groups of consecutive vowels (a e i o u y,
//     accented Latin vowels too; 'y' is a consonant at the start), then
//     English corrections: a silent final "e" ("make"; but "table" keeps its
//     "le"), silent "-es" ("makes", not after s x z ch sh c g) and "-ed"
//     ("jumped", not after t d) are not syllables; "ia"/"io" split in two
//     ("piano", "radio") except in "-cia-", "-tio-", "-sio-", "-gio-",
//     "-cio-" ("social", "nation");
//   - every token counts at least one syllable, and tokens of up to three
//     letters exactly one.
func countSyllables(word string) int {
	var stack [48]rune
	rs := stack[:0]
	for _, r := range word {
		rs = append(rs, r)
	}
	cjk := 0
	for _, r := range rs {
		// The four scripts start at U+1100 (Hangul Jamo); skip the table
		// lookups for everything below.
		if r >= 0x1100 && unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul) {
			cjk++
		}
	}
	if cjk > 0 {
		return cjk
	}
	if len(rs) <= 3 {
		return 1
	}
	n := 0
	for i, r := range rs {
		if isVowel(rs, i) && (i == 0 || !isVowel(rs, i-1)) {
			n++
		}
		if i > 0 && (r == 'a' || r == 'o') && rs[i-1] == 'i' && (i < 2 || !strings.ContainsRune("ctsg", rs[i-2])) {
			n++ // "ia", "io" are two syllables: pi-a-no, ra-di-o
		}
	}
	last, prev := rs[len(rs)-1], rs[len(rs)-2]
	before := rune(0)
	if len(rs) >= 3 {
		before = rs[len(rs)-3]
	}
	switch {
	case last == 'e' && !isVowel(rs, len(rs)-2) && !(prev == 'l' && before != 0 && !isVowel(rs, len(rs)-3)):
		n-- // silent final e: make, hope (but: table, little)
	case last == 's' && prev == 'e' && !isVowel(rs, len(rs)-3) &&
		!strings.ContainsRune("sxzcg", before) && !(before == 'h' && len(rs) >= 4 && strings.ContainsRune("cs", rs[len(rs)-4])):
		n-- // silent -es: makes, hopes (but: boxes, wishes, places)
	case last == 'd' && prev == 'e' && !isVowel(rs, len(rs)-3) && before != 't' && before != 'd':
		n-- // silent -ed: jumped, played (but: wanted, needed)
	}
	if n < 1 {
		n = 1
	}
	return n
}

// isVowel reports whether rs[i] is a vowel; 'y' only after the first letter.
func isVowel(rs []rune, i int) bool {
	switch r := rs[i]; r {
	case 'a', 'e', 'i', 'o', 'u':
		return true
	case 'y':
		return i > 0
	default:
		return r >= 0xE0 && strings.ContainsRune("àáâãäåæèéêëìíîïòóôõöøùúûüýÿœ", r)
	}
}
