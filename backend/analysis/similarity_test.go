package analysis

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// pyOriginalSimilarity is the original service's calculate_similarity and
// find_common_words (sorted, as the API contract says).
const pyOriginalSimilarity = `
import sys, json, re
from difflib import SequenceMatcher
def words(t): return re.findall(r'\b\w+\b', t.lower()) if t else []
out = []
for a, b in json.load(sys.stdin):
    score = SequenceMatcher(None, a.lower(), b.lower()).ratio() if a and b else 0.0
    out.append({"score": score, "common": sorted(set(words(a)) & set(words(b)))})
print(json.dumps(out))
`

func TestSimilarSequenceMatchesOriginal(t *testing.T) {
	pairs := genPairs(t)
	var want []struct {
		Score  float64  `json:"score"`
		Common []string `json:"common"`
	}
	runPython(t, "python3", pyOriginalSimilarity, pairs, &want)
	for i, p := range pairs {
		got, err := Similar(p[0], p[1], 0.8, SimilarityOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Python's sorted() orders by code point, Go's sort.Strings by
		// UTF-8 bytes: the same order.
		if got.SimilarityScore != want[i].Score || !equalStrings(got.CommonWords, want[i].Common) ||
			got.Method != MethodSequence || got.IsSimilar != (want[i].Score >= 0.8) {
			t.Errorf("pair %d (%q, %q): got %+v, original %+v", i, trunc(p[0]), trunc(p[1]), got, want[i])
		}
	}
}

func equalStrings(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b))
}

// TestCosineMatchesScikitLearn feeds OUR tokens to scikit-learn's
// TfidfVectorizer (default smooth_idf, l2 norm, raw tf) and compares
// cosine_similarity with ours.
func TestCosineMatchesScikitLearn(t *testing.T) {
	const script = `
import sys, json
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import cosine_similarity
out = []
for a, b in json.load(sys.stdin):
    x = TfidfVectorizer(analyzer=lambda d: d).fit_transform([a, b])
    out.append(float(cosine_similarity(x[0], x[1])[0][0]))
print(json.dumps(out))
`
	var texts [][2]string
	var tokens [][2][]string
	for _, p := range genPairs(t) {
		a, b := Tokens(p[0]), Tokens(p[1])
		if len(a) == 0 || len(b) == 0 {
			continue // sklearn refuses an empty vocabulary; covered below
		}
		texts = append(texts, p)
		tokens = append(tokens, [2][]string{a, b})
	}
	var want []float64
	runPython(t, "/usr/bin/python3", script, tokens, &want)
	for i, p := range texts {
		got, err := Similar(p[0], p[1], 0.5, SimilarityOptions{Method: MethodCosine})
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got.SimilarityScore-want[i]) > 1e-12 {
			t.Errorf("pair %d: cosine %v, scikit-learn %v", i, got.SimilarityScore, want[i])
		}
	}
	if len(texts) < 300 {
		t.Fatalf("only %d cosine cases", len(texts))
	}
	got, _ := Similar("", "words here", 0.5, SimilarityOptions{Method: MethodCosine})
	if got.SimilarityScore != 0 {
		t.Errorf("cosine with an empty text = %v, want 0", got.SimilarityScore)
	}
}

// TestJaccardProperties checks the jaccard method against the definition on
// brute-force sets and its algebraic properties.
func TestJaccardProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	vocab := strings.Fields("a b c d e f g h alpha beta gamma ΣΑΣ İx x_1 ٣")
	text := func() string {
		n := rng.IntN(30)
		w := make([]string, n)
		for i := range w {
			w[i] = vocab[rng.IntN(len(vocab))]
		}
		return strings.Join(w, " ")
	}
	for it := 0; it < 2000; it++ {
		a, b := text(), text()
		k := 1 + rng.IntN(4)
		opt := SimilarityOptions{Method: MethodJaccard, Shingle: k}
		ab, err := Similar(a, b, 0.5, opt)
		if err != nil {
			t.Fatal(err)
		}
		ba, _ := Similar(b, a, 0.5, opt)
		aa, _ := Similar(a, a, 0.5, opt)
		if ab.SimilarityScore != ba.SimilarityScore {
			t.Fatalf("not symmetric: %q %q", a, b)
		}
		if s := ab.SimilarityScore; s < 0 || s > 1 {
			t.Fatalf("out of range: %v", s)
		}
		// Brute force: shingles as token slices compared element-wise.
		sa, sb := bruteShingles(Tokens(a), k), bruteShingles(Tokens(b), k)
		inter, union := 0, len(sb)
		for _, x := range sa {
			found := false
			for _, y := range sb {
				if reflect.DeepEqual(x, y) {
					found = true
				}
			}
			if found {
				inter++
			} else {
				union++
			}
		}
		want := 0.0
		if union > 0 {
			want = float64(inter) / float64(union)
		}
		if ab.SimilarityScore != want {
			t.Fatalf("jaccard(%q, %q, k=%d) = %v, brute force %v", a, b, k, ab.SimilarityScore, want)
		}
		if len(Tokens(a)) > 0 && aa.SimilarityScore != 1 {
			t.Fatalf("jaccard(a, a) = %v", aa.SimilarityScore)
		}
	}
}

// bruteShingles lists distinct k-token windows (all tokens if fewer).
func bruteShingles(tokens []string, k int) [][]string {
	if len(tokens) == 0 {
		return nil
	}
	k = min(k, len(tokens))
	var out [][]string
	for i := 0; i+k <= len(tokens); i++ {
		w := tokens[i : i+k]
		dup := false
		for _, o := range out {
			if reflect.DeepEqual(o, w) {
				dup = true
			}
		}
		if !dup {
			out = append(out, w)
		}
	}
	return out
}

func TestSimilarValidation(t *testing.T) {
	long := strings.Repeat("a", MaxSequenceChars+1)
	for name, tc := range map[string]struct {
		a, b      string
		threshold float64
		opt       SimilarityOptions
	}{
		"threshold > 1":   {"a", "b", 1.01, SimilarityOptions{}},
		"threshold < 0":   {"a", "b", -0.5, SimilarityOptions{}},
		"threshold NaN":   {"a", "b", math.NaN(), SimilarityOptions{}},
		"unknown method":  {"a", "b", 0.5, SimilarityOptions{Method: "levenshtein"}},
		"shingle too big": {"a", "b", 0.5, SimilarityOptions{Method: MethodJaccard, Shingle: MaxShingle + 1}},
		"negative":        {"a", "b", 0.5, SimilarityOptions{Method: MethodJaccard, Shingle: -1}},
		"too long":        {long, "b", 0.5, SimilarityOptions{}},
	} {
		if _, err := Similar(tc.a, tc.b, tc.threshold, tc.opt); err == nil {
			t.Errorf("%s: no error", name)
		} else if name == "too long" && !errors.Is(err, ErrInputTooLarge) {
			t.Errorf("too long: %v is not ErrInputTooLarge", err)
		}
	}
	// Long texts are fine for the linear methods.
	if _, err := Similar(long, long, 0.5, SimilarityOptions{Method: MethodCosine}); err != nil {
		t.Errorf("cosine on a long text: %v", err)
	}
	got, err := Similar("", "", 0.8, SimilarityOptions{})
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(got)
	if got.SimilarityScore != 0 || got.IsSimilar || !strings.Contains(string(js), `"common_words":[]`) {
		t.Errorf("empty texts: %s", js)
	}
}
