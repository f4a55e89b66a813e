package analysis

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// checkRepeats verifies the invariants of a Repeats result against the text
// itself: every occurrence's code-point span re-tokenises to the passage,
// occurrences are ordered and disjoint, phrases cannot be extended on either
// side by one token, and coverage is a share.
func checkRepeats(t *testing.T, content string, opt AnalyzeOptions, r *Repeats) {
	t.Helper()
	runes := []rune(content)
	words := tokenSpans(content)
	at := map[int]int{} // token start -> token index
	for i, w := range words {
		at[w.start] = i
	}
	check := func(kind string, p Passage, minWords int) {
		if p.Count < 2 || p.Count != len(p.Occurrences) || p.Words < minWords {
			t.Errorf("%s %q: count %d, %d occurrences, %d words", kind, p.Text, p.Count, len(p.Occurrences), p.Words)
		}
		for k, o := range p.Occurrences {
			if o.Start < 0 || o.End > len(runes) || o.Start >= o.End {
				t.Fatalf("%s %q: span %+v outside text of %d code points", kind, p.Text, o, len(runes))
			}
			if k > 0 && o.Start < p.Occurrences[k-1].End {
				t.Errorf("%s %q: overlapping occurrences %+v", kind, p.Text, p.Occurrences)
			}
			got := strings.Join(Tokens(string(runes[o.Start:o.End])), " ")
			if got != p.Text {
				// A span may cut a lower-case expansion (İ -> i + U+0307);
				// compare by the tokens the span covers instead.
				i, ok := at[o.Start]
				if !ok || i+p.Words > len(words) || words[i+p.Words-1].end != o.End {
					t.Errorf("%s %q: span %+v holds %q", kind, p.Text, o, got)
					continue
				}
				var ws []string
				for _, w := range words[i : i+p.Words] {
					ws = append(ws, w.text)
				}
				if strings.Join(ws, " ") != p.Text {
					t.Errorf("%s %q: span %+v holds tokens %q", kind, p.Text, o, ws)
				}
			}
		}
	}
	for _, p := range r.Phrases {
		check("phrase", p, opt.MinNgram)
		// Maximal: not all occurrences agree on the next or previous token.
		idx := make([]int, len(p.Occurrences))
		for k, o := range p.Occurrences {
			idx[k] = at[o.Start]
		}
		agree := func(off int) bool {
			var first string
			for k, i := range idx {
				j := i + off
				if j < 0 || j >= len(words) {
					return false
				}
				if k == 0 {
					first = words[j].text
				} else if words[j].text != first {
					return false
				}
			}
			// Extending must not make occurrences touch or overlap.
			for k := 1; k < len(idx); k++ {
				if off > 0 && idx[k-1]+p.Words >= idx[k] {
					return false
				}
				if off < 0 && idx[k]-1 < idx[k-1]+p.Words {
					return false
				}
			}
			return true
		}
		if agree(p.Words) || agree(-1) {
			t.Errorf("phrase %q at %v can be extended", p.Text, idx)
		}
	}
	for _, p := range r.Sentences {
		check("sentence", p, MinSentenceWords)
	}
	if r.Coverage < 0 || r.Coverage > 1 || r.WordCoverage < 0 || r.WordCoverage > 1 {
		t.Errorf("coverage %v / %v", r.Coverage, r.WordCoverage)
	}
}

// TestRepeatsComplete checks, by brute force on texts with a tiny vocabulary,
// that every n-gram (MinNgram..MaxNgram) with two non-overlapping
// occurrences lies, at each of those occurrences, inside reported phrase
// occurrences.
func TestRepeatsComplete(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	vocab := strings.Fields("a b c d e f Σοφία İz 😀x ٣")
	opt := AnalyzeOptions{Repeats: true, MinNgram: 2, MaxNgram: 4, MaxRepeats: MaxRepeatsLimit}
	for it := 0; it < 400; it++ {
		n := 5 + rng.IntN(60)
		ws := make([]string, n)
		for i := range ws {
			ws[i] = vocab[rng.IntN(3+it%len(vocab)/2)]
		}
		sep := []string{" ", ", ", ". ", "\n", " — "}
		var b strings.Builder
		for i, w := range ws {
			if i > 0 {
				b.WriteString(sep[rng.IntN(len(sep))])
			}
			b.WriteString(w)
		}
		content := b.String()
		a := Analyze(content, opt)
		if a.Repeats == nil {
			t.Fatal("no repeats section")
		}
		checkRepeats(t, content, opt.clamped(), a.Repeats)
		if a.Repeats.Truncated {
			continue
		}
		words := tokenSpans(content)
		covered := make([]bool, len(words))
		for _, p := range a.Repeats.Phrases {
			for _, o := range p.Occurrences {
				for i, w := range words {
					if w.start >= o.Start && w.end <= o.End {
						covered[i] = true
					}
				}
			}
		}
		toks := make([]string, len(words))
		for i, w := range words {
			toks[i] = w.text
		}
		for size := opt.MinNgram; size <= opt.MaxNgram; size++ {
			starts := map[string][]int{}
			for i := 0; i+size <= len(toks); i++ {
				key := strings.Join(toks[i:i+size], " ")
				starts[key] = append(starts[key], i)
			}
			for key, ss := range starts {
				var chosen []int
				end := -1
				for _, s := range ss {
					if s >= end {
						chosen = append(chosen, s)
						end = s + size
					}
				}
				if len(chosen) < 2 {
					continue
				}
				for _, s := range chosen {
					if slices.Contains(covered[s:s+size], false) {
						t.Fatalf("%q: repeated %d-gram %q at token %d not covered\n%+v", content, size, key, s, a.Repeats.Phrases)
					}
				}
			}
		}
	}
}

func TestRepeatsOnProse(t *testing.T) {
	paras := prose(t)
	// A real text with a paragraph pasted twice and a sentence repeated.
	content := paras[3] + "\n\n" + paras[10] + "\n\n" + paras[3] + "\nThis sentence repeats. Something else. this sentence REPEATS!"
	opt := AnalyzeOptions{Repeats: true}
	a := Analyze(content, opt)
	checkRepeats(t, content, opt.clamped(), a.Repeats)
	want := strings.Join(Tokens(paras[3]), " ")
	if len(a.Repeats.Phrases) == 0 || a.Repeats.Phrases[0].Text != want || a.Repeats.Phrases[0].Count != 2 {
		t.Errorf("the pasted paragraph is not the first phrase: %+v", a.Repeats.Phrases[:min(1, len(a.Repeats.Phrases))])
	}
	found := false
	for _, s := range a.Repeats.Sentences {
		found = found || s.Text == "this sentence repeats"
	}
	if !found {
		t.Errorf("repeated sentence not found: %+v", a.Repeats.Sentences)
	}
	if a.Repeats.Coverage <= 0 {
		t.Errorf("coverage %v", a.Repeats.Coverage)
	}
	// MaxRepeats truncates.
	b := Analyze(content, AnalyzeOptions{Repeats: true, MaxRepeats: 1})
	if len(b.Repeats.Phrases) != 1 || !b.Repeats.Truncated {
		t.Errorf("MaxRepeats 1: %d phrases, truncated %v", len(b.Repeats.Phrases), b.Repeats.Truncated)
	}
	if Analyze(content, AnalyzeOptions{}).Repeats != nil {
		t.Error("repeats without asking")
	}
}

func TestAnalyzeOptionsValidate(t *testing.T) {
	for _, o := range []AnalyzeOptions{
		{MinNgram: -1}, {MaxNgram: MaxNgramLimit + 1}, {MinNgram: 5, MaxNgram: 4}, {MaxRepeats: MaxRepeatsLimit + 1},
	} {
		if o.Validate() == nil {
			t.Errorf("%+v: no error", o)
		}
		Analyze("a b c a b c", AnalyzeOptions{Repeats: true, MinNgram: o.MinNgram, MaxNgram: o.MaxNgram, MaxRepeats: o.MaxRepeats}) // clamped, no panic
	}
	if err := (AnalyzeOptions{}).Validate(); err != nil {
		t.Error(err)
	}
}
