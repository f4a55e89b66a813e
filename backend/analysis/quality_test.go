package analysis

import (
	"reflect"
	"testing"
)

func TestCountSyllablesKnownWords(t *testing.T) {
	// Dictionary syllable counts (Merriam-Webster hyphenation).
	for word, want := range map[string]int{
		"cat": 1, "the": 1, "table": 2, "little": 2, "beautiful": 3, "jumped": 1,
		"played": 1, "wanted": 2, "needed": 2, "makes": 1, "hopes": 1, "boxes": 2,
		"wishes": 2, "places": 2, "hope": 1, "piano": 3, "radio": 3, "nation": 2,
		"social": 2, "people": 2, "yellow": 2, "water": 2, "computer": 3,
		"university": 5, "education": 4, "analysis": 4, "content": 2,
		"redundancy": 4, "detector": 3, "readability": 5, "syllable": 3,
		"everyone": 3, "understand": 3, "simple": 2, "yes": 1,
		"中文": 2, "日本語": 3, "x": 1, "2024": 1,
	} {
		if got := countSyllables(word); got != want {
			t.Errorf("countSyllables(%q) = %d, want %d", word, got, want)
		}
	}
}

func TestAssessQualityFlesch(t *testing.T) {
	for _, tc := range []struct {
		text                        string
		words, sentences, syllables int // counted by hand
	}{
		// the(1) cat(1) sat(1) on(1) the(1) mat(1)
		{"The cat sat on the mat.", 6, 1, 6},
		// simple(2) words(1) help(1) everyone(3) | the(1) table(2) is(1)
		// little(2) | yes(1)
		{"Simple words help everyone! The table is little... Yes", 9, 3, 14},
		// university(5) education(4) analysis(4) | readability(5)
		// detector(3) redundancy(4) content(2)
		{"University education analysis? Readability detector redundancy content.", 7, 2, 27},
	} {
		q := AssessQuality(tc.text)
		if q.Words != tc.words || q.Sentences != tc.sentences || q.Syllables != tc.syllables {
			t.Errorf("%q: words %d sentences %d syllables %d, counted by hand %d %d %d",
				tc.text, q.Words, q.Sentences, q.Syllables, tc.words, tc.sentences, tc.syllables)
			continue
		}
		wps := float64(tc.words) / float64(tc.sentences)
		spw := float64(tc.syllables) / float64(tc.words)
		ease := max(0, min(100, 206.835-1.015*wps-84.6*spw))
		if q.ReadabilityScore != ease || q.FleschKincaidGrade != 0.39*wps+11.8*spw-15.59 {
			t.Errorf("%q: ease %v grade %v", tc.text, q.ReadabilityScore, q.FleschKincaidGrade)
		}
		if q.QualityRating != rating(ease) || !reflect.DeepEqual(q.Suggestions, suggestions(ease)) {
			t.Errorf("%q: rating %q suggestions %q", tc.text, q.QualityRating, q.Suggestions)
		}
		if want := Analyze(tc.text, AnalyzeOptions{}).RedundancyScore * 100; q.ComplexityScore != want {
			t.Errorf("%q: complexity %v, want redundancy*100 = %v", tc.text, q.ComplexityScore, want)
		}
	}
}

// TestAssessQualityProse: ordinary English prose must score in the normal
// Flesch range, not the 0 the original's word-length formula gave.
func TestAssessQualityProse(t *testing.T) {
	scored := 0
	for _, p := range prose(t) {
		q := AssessQuality(p)
		if q.ReadabilityScore < 0 || q.ReadabilityScore > 100 {
			t.Fatalf("score %v out of range", q.ReadabilityScore)
		}
		if q.ReadabilityScore > 0 {
			scored++
		}
	}
	if scored == 0 {
		t.Fatal("every paragraph of prose scored 0")
	}
	q := AssessQuality("The sun is warm. We go to the park. The kids play ball and run on the grass. It is a good day.")
	if q.QualityRating != RatingExcellent && q.QualityRating != RatingGood {
		t.Errorf("plain prose rated %q (%v)", q.QualityRating, q.ReadabilityScore)
	}
}

func TestQualityBandsAndSuggestions(t *testing.T) {
	for _, tc := range []struct {
		score  float64
		rating string
		first  string
		n      int
	}{
		{100, RatingExcellent, "Text has excellent quality and readability", 1},
		{80, RatingExcellent, "Text has excellent quality and readability", 1},
		{79.999, RatingGood, "Text is good, consider small clarity improvements", 1},
		{60, RatingGood, "Text is good, consider small clarity improvements", 1},
		{59.9, RatingFair, "Reduce average sentence length", 3},
		{40, RatingFair, "Reduce average sentence length", 3},
		{39.9, RatingNeedsImprovement, "Consider using shorter sentences", 4},
		{0, RatingNeedsImprovement, "Consider using shorter sentences", 4},
	} {
		s := suggestions(tc.score)
		if rating(tc.score) != tc.rating || len(s) != tc.n || s[0] != tc.first {
			t.Errorf("score %v: %q %q", tc.score, rating(tc.score), s)
		}
	}
	q := AssessQuality("")
	if q.ReadabilityScore != 0 || q.QualityRating != RatingNeedsImprovement || q.Suggestions == nil {
		t.Errorf("empty content: %+v", q)
	}
}
