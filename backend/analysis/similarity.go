package analysis

import (
	"errors"
	"fmt"
	"sort"
	"unicode/utf8"
)

// Similarity methods accepted by SimilarityOptions.Method.
const (
	MethodSequence = "sequence"
	MethodJaccard  = "jaccard"
	MethodCosine   = "cosine"
)

// DefaultJaccardShingle is the word-shingle size of the jaccard method when
// SimilarityOptions.Shingle is zero: 1, i.e. the Jaccard index of the two
// token sets, the natural companion of common_words.
const DefaultJaccardShingle = 1

// MaxShingle bounds shingle sizes (jaccard method and Dedup).
const MaxShingle = 32

// ErrInputTooLarge is returned (wrapped) when a text exceeds a documented
// size bound such as MaxSequenceChars.
var ErrInputTooLarge = errors.New("input too large")

// SimilarityOptions selects and tunes the similarity measure.
type SimilarityOptions struct {
	// Method is MethodSequence (default, the original's), MethodJaccard or
	// MethodCosine.
	Method string
	// Shingle is the word-shingle size for MethodJaccard; 0 means
	// DefaultJaccardShingle. Ignored by the other methods.
	Shingle int
}

// Similarity is the result of Similar. Its JSON names are the API contract.
type Similarity struct {
	SimilarityScore float64 `json:"similarity_score"`
	IsSimilar       bool    `json:"is_similar"`
	// CommonWords is the sorted intersection of the two token sets, never nil.
	CommonWords []string `json:"common_words"`
	Method      string   `json:"method"`
}

// Similar compares two texts.
//
//   - sequence: SequenceRatio of the Python-lower-cased texts, as the original
//     did, including its rule that an empty text scores 0 (difflib alone would
//     say 1.0 for two empty strings). Texts over MaxSequenceChars code points
//     are refused with ErrInputTooLarge.
//   - jaccard: |S1 ∩ S2| / |S1 ∪ S2| over the sets of word shingles (Shingle
//     consecutive tokens; a text with fewer tokens than Shingle contributes one
//     shingle of all its tokens); 0 when both sets are empty.
//   - cosine: cosine of the TF-IDF vectors of the two texts, with the two texts
//     as the corpus and scikit-learn's TfidfVectorizer defaults: raw term
//     counts, idf = ln((1+n)/(1+df)) + 1 with n = 2, L2 normalisation; 0 when
//     either text has no tokens.
//
// IsSimilar is SimilarityScore >= threshold. threshold must be in [0, 1].
func Similar(text1, text2 string, threshold float64, opt SimilarityOptions) (Similarity, error) {
	if !(threshold >= 0 && threshold <= 1) {
		return Similarity{}, fmt.Errorf("analysis: threshold %v is outside [0, 1]", threshold)
	}
	method := opt.Method
	if method == "" {
		method = MethodSequence
	}
	tok1, tok2 := Tokens(text1), Tokens(text2)
	var score float64
	switch method {
	case MethodSequence:
		for _, t := range [2]string{text1, text2} {
			if n := utf8.RuneCountInString(t); n > MaxSequenceChars {
				return Similarity{}, fmt.Errorf("analysis: sequence similarity of a %d-character text (limit %d): %w", n, MaxSequenceChars, ErrInputTooLarge)
			}
		}
		if text1 != "" && text2 != "" {
			score = SequenceRatio(pyLower(text1), pyLower(text2))
		}
	case MethodJaccard:
		k := opt.Shingle
		if k == 0 {
			k = DefaultJaccardShingle
		}
		if k < 1 || k > MaxShingle {
			return Similarity{}, fmt.Errorf("analysis: shingle size %d is outside [1, %d]", opt.Shingle, MaxShingle)
		}
		score = jaccardIndex(shingleSet(tok1, k), shingleSet(tok2, k))
	case MethodCosine:
		score = tfidfCosine(tok1, tok2)
	default:
		return Similarity{}, fmt.Errorf("analysis: unknown similarity method %q (want %q, %q or %q)", opt.Method, MethodSequence, MethodJaccard, MethodCosine)
	}
	return Similarity{
		SimilarityScore: score,
		IsSimilar:       score >= threshold,
		CommonWords:     commonWords(tok1, tok2),
		Method:          method,
	}, nil
}

// commonWords is the sorted intersection of the token sets, never nil.
func commonWords(tok1, tok2 []string) []string {
	in1 := make(map[string]struct{}, len(tok1))
	for _, t := range tok1 {
		in1[t] = struct{}{}
	}
	out := []string{}
	for _, t := range tok2 {
		if _, ok := in1[t]; ok {
			out = append(out, t)
			delete(in1, t)
		}
	}
	sort.Strings(out)
	return out
}

// shingleSet is the set of k-token shingles, each joined by a space (tokens
// never contain spaces, so the join is unambiguous).
func shingleSet(tokens []string, k int) map[string]struct{} {
	set := make(map[string]struct{})
	if len(tokens) == 0 {
		return set
	}
	if len(tokens) < k {
		k = len(tokens)
	}
	for i := 0; i+k <= len(tokens); i++ {
		set[joinTokens(tokens[i:i+k])] = struct{}{}
	}
	return set
}

func joinTokens(ts []string) string {
	n := len(ts) - 1
	for _, t := range ts {
		n += len(t)
	}
	b := make([]byte, 0, n)
	for i, t := range ts {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, t...)
	}
	return string(b)
}

func jaccardIndex(a, b map[string]struct{}) float64 {
	if len(a) == 0 && len(b) == 0 {
		return 0
	}
	if len(a) > len(b) {
		a, b = b, a
	}
	inter := 0
	for s := range a {
		if _, ok := b[s]; ok {
			inter++
		}
	}
	return float64(inter) / float64(len(a)+len(b)-inter)
}
