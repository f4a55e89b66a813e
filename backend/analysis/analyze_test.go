package analysis

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestInvalidUTF8 pins the documented behaviour: each invalid byte is one
// code point that is not a word character, the hash covers the raw bytes,
// and nothing panics.
func TestInvalidUTF8(t *testing.T) {
	s := " \xffAb\xfe\xc3cd \x80" // 10 code points: 4 invalid bytes
	if got := Tokens(s); !slices.Equal(got, []string{"ab", "cd"}) {
		t.Errorf("Tokens = %q", got)
	}
	a := Analyze(s, AnalyzeOptions{Repeats: true})
	sum := md5.Sum([]byte(strings.TrimSpace(s)))
	if a.CharacterCount != 10 || a.WordCount != 2 || a.ContentHash != hex.EncodeToString(sum[:]) {
		t.Errorf("Analyze = %+v", a)
	}
	if r := SequenceRatio("\xff\xfe", "\xfe"); r != 2.0*1/3 {
		t.Errorf("SequenceRatio on invalid bytes (each U+FFFD) = %v", r)
	}
	AssessQuality(s)
	if _, err := Similar(s, s, 0.5, SimilarityOptions{Method: MethodCosine}); err != nil {
		t.Error(err)
	}
}

// TestAnalysisJSON pins the JSON names of the API contract.
func TestAnalysisJSON(t *testing.T) {
	js, err := json.Marshal(Analyze("a b a b a b. a b a b a b.", AnalyzeOptions{Repeats: true, MinNgram: 2}))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{`"content_hash"`, `"word_count"`, `"character_count"`, `"unique_words"`,
		`"redundancy_score"`, `"repeated_passages"`, `"phrases"`, `"sentences"`, `"occurrences"`, `"coverage"`} {
		if !strings.Contains(string(js), name) {
			t.Errorf("%s missing from %s", name, js)
		}
	}
	js, _ = json.Marshal(Analyze("x", AnalyzeOptions{}))
	if strings.Contains(string(js), "repeated_passages") {
		t.Errorf("repeated_passages present without asking: %s", js)
	}
	js, _ = json.Marshal(AssessQuality("Short text."))
	for _, name := range []string{`"readability_score"`, `"complexity_score"`, `"quality_rating"`, `"suggestions"`, `"flesch_kincaid_grade"`} {
		if !strings.Contains(string(js), name) {
			t.Errorf("%s missing from %s", name, js)
		}
	}
}
