package analysis

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fortunesDir holds the Debian package "fortunes" (plain-text quotations,
// essays and jokes, separated by lines holding "%"): real prose in volume,
// used as the dedup test corpus. CI installs it (apt-get install fortunes).
const fortunesDir = "/usr/share/games/fortunes"

// fortuneDocs cuts the fortunes files into documents of about size bytes by
// joining consecutive fortunes of one file, so every document is distinct
// real text.
func fortuneDocs(t testing.TB, size int) []string {
	t.Helper()
	entries, err := os.ReadDir(fortunesDir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("the dedup corpus needs the Debian package fortunes (apt-get install -y fortunes): %v", err)
	}
	var docs []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.Contains(name, ".") || name == "ascii-art" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(fortunesDir, name))
		if err != nil {
			t.Fatal(err)
		}
		var cur strings.Builder
		for _, f := range strings.Split(string(data), "\n%\n") {
			cur.WriteString(strings.TrimSpace(f))
			cur.WriteString("\n")
			if cur.Len() >= size {
				docs = append(docs, cur.String())
				cur.Reset()
			}
		}
	}
	if len(docs) < 1000 {
		t.Fatalf("only %d documents of %d bytes in %s", len(docs), size, fortunesDir)
	}
	return docs
}

// editWords returns text with a share of its words edited: each edit is,
// at random, a substitution by a word from vocab, a deletion, an insertion
// of a vocab word, or a swap with the next word (a reordering).
func editWords(rng *rand.Rand, text string, share float64, vocab []string) string {
	words := strings.Fields(text)
	edits := int(share*float64(len(words)) + 0.5)
	for range edits {
		if len(words) < 2 {
			break
		}
		i := rng.IntN(len(words) - 1)
		switch rng.IntN(4) {
		case 0:
			words[i] = vocab[rng.IntN(len(vocab))]
		case 1:
			words = append(words[:i], words[i+1:]...)
		case 2:
			words = append(words[:i], append([]string{vocab[rng.IntN(len(vocab))]}, words[i:]...)...)
		default:
			words[i], words[i+1] = words[i+1], words[i]
		}
	}
	return strings.Join(words, " ")
}

func vocabulary(docs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range docs {
		for _, w := range strings.Fields(d) {
			if !seen[w] {
				seen[w] = true
				out = append(out, w)
			}
		}
	}
	return out
}
