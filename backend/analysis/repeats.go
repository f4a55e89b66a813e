package analysis

// findRepeats finds repeated phrases and sentences (filled in below).
func findRepeats(content string, words []token, opt AnalyzeOptions) *Repeats {
	return &Repeats{Phrases: []Passage{}, Sentences: []Passage{}}
}
