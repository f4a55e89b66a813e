package analysis

import (
	"crypto/md5"
	"encoding/hex"
	"unicode/utf8"
)

// AnalyzeOptions tunes Analyze. The zero value reproduces the original
// service (no repeated-passage search).
type AnalyzeOptions struct {
	// Repeats turns on the repeated-passage search.
	Repeats bool
	// MinNgram and MaxNgram bound the phrase length, in words, that the
	// repeated-passage search looks for. Zero means DefaultMinNgram /
	// DefaultMaxNgram. Repeats longer than MaxNgram are still found whole:
	// a repeat is extended as far as all its occurrences agree.
	MinNgram, MaxNgram int
	// MaxRepeats caps how many phrases and how many sentences are reported
	// (each). Zero means DefaultMaxRepeats.
	MaxRepeats int
}

// Defaults and limits of AnalyzeOptions.
const (
	DefaultMinNgram   = 3
	DefaultMaxNgram   = 8
	DefaultMaxRepeats = 50
	MaxNgramLimit     = 32
	MaxRepeatsLimit   = 1000
)

// Analysis is the result of Analyze. Its JSON names are the API contract.
type Analysis struct {
	// ContentHash is the MD5 (hex) of the UTF-8 bytes of the content with
	// leading and trailing whitespace removed the way Python's str.strip()
	// removes it.
	ContentHash string `json:"content_hash"`
	// WordCount is the number of tokens (see Tokens).
	WordCount int `json:"word_count"`
	// CharacterCount is Python's len(content): code points of the untrimmed
	// content (an invalid UTF-8 byte counts as one).
	CharacterCount int `json:"character_count"`
	// UniqueWords is the number of distinct tokens.
	UniqueWords int `json:"unique_words"`
	// RedundancyScore is 1 - UniqueWords/WordCount, 0 when there are no words.
	RedundancyScore float64 `json:"redundancy_score"`
	// Repeats lists repeated phrases and sentences; nil unless asked for.
	Repeats *Repeats `json:"repeated_passages,omitempty"`
}

// Repeats are the passages of a text that occur more than once.
type Repeats struct {
	// Phrases are repeated word n-grams, longest first, each extended to the
	// longest run on which all its reported occurrences agree.
	Phrases []Passage `json:"phrases"`
	// Sentences are whole sentences (split at . ! ? and line breaks,
	// compared by their tokens, so case and punctuation do not matter) that
	// occur more than once and have at least MinSentenceWords words.
	Sentences []Passage `json:"sentences"`
	// Coverage is the share of the text's code points that lie inside an
	// occurrence of a reported phrase or sentence (0..1).
	Coverage float64 `json:"coverage"`
	// WordCoverage is the share of tokens inside such an occurrence (0..1).
	WordCoverage float64 `json:"word_coverage"`
	// Truncated is true when more passages repeated than MaxRepeats allowed.
	Truncated bool `json:"truncated"`
}

// MinSentenceWords is the shortest sentence, in words, reported as repeated.
const MinSentenceWords = 2

// Passage is one repeated phrase or sentence.
type Passage struct {
	// Text is the passage's tokens joined by single spaces (lower-case).
	Text string `json:"text"`
	// Words is the passage's length in tokens.
	Words int `json:"words"`
	// Count is the number of non-overlapping occurrences.
	Count int `json:"count"`
	// Occurrences are the spans where it occurs, in text order.
	Occurrences []Span `json:"occurrences"`
}

// Span is a half-open range [Start, End) of code-point offsets into the
// original content (the same unit as Python string indexes and
// CharacterCount; an invalid UTF-8 byte counts as one code point).
type Span struct {
	Start int `json:"start"`
	End   int `json:"end"`
}

// Analyze computes the original service's /analyze metrics for content and,
// when asked, its repeated passages. It never fails: out-of-range options are
// clamped (see AnalyzeOptions.Validate to reject them instead).
//
// Cost: O(len(content)) for the metrics; the repeated-passage search adds
// O(words * (MaxNgram-MinNgram+1)) time and O(words) memory.
func Analyze(content string, opt AnalyzeOptions) Analysis {
	sum := md5.Sum([]byte(pyStrip(content)))
	res := Analysis{
		ContentHash:    hex.EncodeToString(sum[:]),
		CharacterCount: utf8.RuneCountInString(content),
	}
	seen := make(map[string]struct{}, len(content)/32)
	var words []token // kept only for the repeated-passage search
	if opt.Repeats {
		words = make([]token, 0, len(content)/6+1)
	}
	scanTokens(content, func(t string, start, end int) {
		res.WordCount++
		seen[t] = struct{}{}
		if opt.Repeats {
			words = append(words, token{t, start, end})
		}
	})
	res.UniqueWords = len(seen)
	res.RedundancyScore = redundancy(res.UniqueWords, res.WordCount)
	if opt.Repeats {
		res.Repeats = findRepeats(content, words, opt.clamped())
	}
	return res
}

// redundancy is 1 - unique/total, 0 for no words (the original's formula).
func redundancy(unique, total int) float64 {
	if total == 0 {
		return 0
	}
	return 1.0 - float64(unique)/float64(total)
}

// token is one token with its code-point span in the original text.
type token struct {
	text       string
	start, end int
}

func tokenSpans(s string) []token {
	out := make([]token, 0, len(s)/6+1)
	scanTokens(s, func(t string, start, end int) { out = append(out, token{t, start, end}) })
	return out
}
