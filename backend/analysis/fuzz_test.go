package analysis

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"slices"
	"testing"
	"unicode/utf8"
)

// wordRE is an independent reference tokeniser: Python's \w as a Go regexp
// class, applied to the Python-lower-cased text.
var wordRE = regexp.MustCompile(`[\p{L}\p{N}_]+`)

var fuzzTexts = []string{
	"", " ", "Hello, World! hello_world 42", "ΟΔΟΣ ΣΑΣ Σ", "İstanbul İİ", "e\u0301\u0307x",
	"😀𝐀𝐁 ٣٤ Ⅻ ²", "\xff\xfe invalid \xc3", "a a a a a a a a", "\x1c\x1dtrim\u3000",
	"The cat sat. The cat sat. The cat sat!",
}

func FuzzTokens(f *testing.F) {
	for _, s := range fuzzTexts {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Tokens(s)
		want := wordRE.FindAllString(pyLower(s), -1)
		if !slices.Equal(got, want) {
			t.Fatalf("Tokens(%q) = %q, regexp reference %q", s, got, want)
		}
		// The dedup tokeniser hashes exactly these tokens.
		hashes := tokenHashes(nil, s)
		if len(hashes) != len(got) {
			t.Fatalf("tokenHashes(%q) has %d tokens, Tokens %d", s, len(hashes), len(got))
		}
		for i, tok := range got {
			h := uint64(14695981039346656037)
			for _, r := range tok {
				h = (h ^ uint64(r)) * 1099511628211
			}
			if mix64(h) != hashes[i] {
				t.Fatalf("tokenHashes(%q)[%d] is not the hash of %q", s, i, tok)
			}
		}
		n := utf8.RuneCountInString(s)
		last := 0
		scanTokens(s, func(tok string, start, end int) {
			if start < last || end <= start || end > n {
				t.Fatalf("Tokens(%q): token %q has span [%d,%d) after %d in %d code points", s, tok, start, end, last, n)
			}
			last = end
		})
	})
}

func FuzzAnalyze(f *testing.F) {
	for _, s := range fuzzTexts {
		f.Add(s, 0, 0, 0)
	}
	f.Add("one two three one two three. x. x y. x y", 1, 3, 2)
	f.Add("a b a b a b", -3, 100, -1)
	f.Fuzz(func(t *testing.T, s string, minN, maxN, maxR int) {
		opt := AnalyzeOptions{Repeats: true, MinNgram: minN % 40, MaxNgram: maxN % 40, MaxRepeats: maxR % 2000}
		a := Analyze(s, opt)
		if a.UniqueWords > a.WordCount || a.RedundancyScore < 0 || a.RedundancyScore >= 1 && a.WordCount > 0 ||
			a.CharacterCount != utf8.RuneCountInString(s) || len(a.ContentHash) != 32 {
			t.Fatalf("Analyze(%q) = %+v", s, a)
		}
		checkRepeats(t, s, opt.clamped(), a.Repeats)
		q := AssessQuality(s)
		if q.ReadabilityScore < 0 || q.ReadabilityScore > 100 || q.ComplexityScore != a.RedundancyScore*100 || len(q.Suggestions) == 0 {
			t.Fatalf("AssessQuality(%q) = %+v", s, q)
		}
	})
}

func FuzzSequenceRatio(f *testing.F) {
	for i, s := range fuzzTexts {
		f.Add(s, fuzzTexts[(i+1)%len(fuzzTexts)])
	}
	f.Add(string(bytes.Repeat([]byte("ab "), 100)), string(bytes.Repeat([]byte("ba "), 90)))
	f.Fuzz(func(t *testing.T, a, b string) {
		la, lb := utf8.RuneCountInString(a), utf8.RuneCountInString(b)
		if la > 3000 || lb > 3000 {
			return
		}
		for _, pair := range [][2]string{{a, b}, {b, a}} {
			r := SequenceRatio(pair[0], pair[1])
			if r < 0 || r > 1 {
				t.Fatalf("SequenceRatio(%q, %q) = %v", pair[0], pair[1], r)
			}
			if la+lb > 0 && r > 2*float64(min(la, lb))/float64(la+lb)+1e-15 {
				t.Fatalf("SequenceRatio(%q, %q) = %v exceeds 2*min/(la+lb)", pair[0], pair[1], r)
			}
		}
		if SequenceRatio(a, a) != 1 {
			t.Fatalf("SequenceRatio(%q, itself) = %v", a, SequenceRatio(a, a))
		}
		for _, m := range []string{MethodSequence, MethodJaccard, MethodCosine} {
			s, err := Similar(a, b, 0.5, SimilarityOptions{Method: m})
			if err != nil || s.SimilarityScore < 0 || s.SimilarityScore > 1 || s.CommonWords == nil {
				t.Fatalf("Similar(%q, %q, %s) = %+v, %v", a, b, m, s, err)
			}
		}
	})
}

func FuzzDedup(f *testing.F) {
	f.Add([]byte("the cat sat on the mat\x00the cat sat on the mat!\x00 the cat sat on the mat \x00dog"), uint8(0), uint8(0), uint8(0))
	f.Add([]byte("a\x00a\x00\x00\x00b c d e f g\x00b c d e f h"), uint8(2), uint8(16), uint8(50))
	f.Add([]byte("\xff\xfe\x00\xff\xfe\x00İ Σ"), uint8(1), uint8(3), uint8(100))
	f.Fuzz(func(t *testing.T, data []byte, shingle, perms, threshold uint8) {
		parts := bytes.Split(data, []byte{0})
		if len(parts) > 200 {
			parts = parts[:200]
		}
		docs := make([]Document, len(parts))
		for i, p := range parts {
			docs[i] = Document{fmt.Sprint("d", i), string(p)}
		}
		opt := DedupOptions{Shingle: int(shingle % 8), Permutations: int(perms % 200), Threshold: float64(threshold%101) / 100}
		res, err := Dedup(context.Background(), docs, opt)
		if err != nil {
			return // invalid options are reported, fine
		}
		ids := map[string]bool{}
		for _, d := range docs {
			ids[d.ID] = true
		}
		for _, c := range res.Clusters {
			if len(c.IDs) < 2 || len(c.Pairs) == 0 {
				t.Fatalf("degenerate cluster %+v", c)
			}
			for _, id := range c.IDs {
				if !ids[id] {
					t.Fatalf("unknown id %q", id)
				}
			}
			for _, p := range c.Pairs {
				if p.Jaccard < res.Stats.Threshold || p.Jaccard > 1 || p.EstimatedJaccard < 0 || p.EstimatedJaccard > 1 {
					t.Fatalf("pair %+v below threshold %v", p, res.Stats.Threshold)
				}
			}
		}
		for _, g := range res.ExactDuplicates {
			for _, id := range g[1:] {
				var a, b string
				fmt.Sscanf(g[0], "d%s", &a)
				fmt.Sscanf(id, "d%s", &b)
				if pyStrip(docs[atoi(a)].Text) != pyStrip(docs[atoi(b)].Text) {
					t.Fatalf("%s and %s are not exact duplicates", g[0], id)
				}
			}
		}
	})
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
