package analysis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loopCPU runs body b.N times and also reports the process CPU time per
// operation, a figure that, unlike ns/op, does not grow when other processes
// share the machine.
func loopCPU(b *testing.B, body func()) {
	start := processCPUSeconds()
	for b.Loop() {
		body()
	}
	if start >= 0 {
		b.ReportMetric((processCPUSeconds()-start)*1e9/float64(b.N), "cpu-ns/op")
	}
}

// proseText is the real-prose input of the throughput benchmarks: the
// license texts of base-files, joined.
func proseText(b *testing.B) string {
	return strings.Join(prose(b), "\n\n")
}

func BenchmarkTokens(b *testing.B) {
	text := proseText(b)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	loopCPU(b, func() { Tokens(text) })
}

func BenchmarkAnalyze(b *testing.B) {
	text := proseText(b)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	loopCPU(b, func() { Analyze(text, AnalyzeOptions{}) })
}

func BenchmarkAnalyzeRepeats(b *testing.B) {
	text := proseText(b)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	loopCPU(b, func() { Analyze(text, AnalyzeOptions{Repeats: true}) })
}

func BenchmarkAssessQuality(b *testing.B) {
	text := proseText(b)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	loopCPU(b, func() { AssessQuality(text) })
}

// sequencePairs are lower-cased real paragraphs (about 300..3000 characters)
// paired with an edited copy or another paragraph: what /similarity sees.
func sequencePairs(b *testing.B) [][2]string {
	rng := rand.New(rand.NewPCG(21, 22))
	paras := prose(b)
	var pairs [][2]string
	for len(pairs) < 60 {
		a := paras[rng.IntN(len(paras))]
		if n := len(a); n < 300 || n > 3000 {
			continue
		}
		c := paras[rng.IntN(len(paras))]
		if len(pairs)%2 == 0 {
			c = mutate(rng, a, 1+len(a)/50)
		}
		pairs = append(pairs, [2]string{pyLower(a), pyLower(c)})
	}
	return pairs
}

func BenchmarkSequenceRatio(b *testing.B) {
	pairs := sequencePairs(b)
	b.ReportAllocs()
	i := 0
	loopCPU(b, func() {
		p := pairs[i%len(pairs)]
		SequenceRatio(p[0], p[1])
		i++
	})
}

// BenchmarkSequenceRatioVsPython times the same pairs in Python's difflib
// (one python3 process) and in Go, both as process CPU time (Python's
// time.process_time, getrusage here), so the comparison holds on a loaded
// machine, and reports both per pair plus the speed-up. Run with
// -benchtime=1x.
func BenchmarkSequenceRatioVsPython(b *testing.B) {
	pairs := sequencePairs(b)
	const script = `
import sys, json, time, difflib
pairs = json.load(sys.stdin)
t = time.process_time()
for _ in range(5):
    for a, b in pairs:
        difflib.SequenceMatcher(None, a, b).ratio()
print(json.dumps((time.process_time() - t) * 1e9 / (5 * len(pairs))))
`
	const goPasses = 50
	for b.Loop() {
		var pyNs float64
		runPython(b, "python3", script, pairs, &pyNs)
		start := processCPUSeconds()
		for range goPasses {
			for _, p := range pairs {
				SequenceRatio(p[0], p[1])
			}
		}
		goNs := (processCPUSeconds() - start) * 1e9 / float64(goPasses*len(pairs))
		b.ReportMetric(goNs, "go-cpu-ns/pair")
		b.ReportMetric(pyNs, "py-cpu-ns/pair")
		b.ReportMetric(pyNs/goNs, "speedup")
	}
}

// dedupCorpus builds n documents of about 1 KB: each is random fortunes
// (Debian package fortunes) concatenated, and one in ten is an edited copy
// (2..10% of words) of an earlier document.
func dedupCorpus(b *testing.B, n int) []Document {
	entries, err := os.ReadDir(fortunesDir)
	if err != nil {
		b.Fatalf("needs the Debian package fortunes: %v", err)
	}
	var fortunes []string
	for _, e := range entries {
		if e.IsDir() || strings.Contains(e.Name(), ".") || e.Name() == "ascii-art" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(fortunesDir, e.Name()))
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range strings.Split(string(data), "\n%\n") {
			if f = strings.TrimSpace(f); len(f) > 40 {
				fortunes = append(fortunes, f)
			}
		}
	}
	rng := rand.New(rand.NewPCG(31, 32))
	vocab := vocabulary(fortunes[:2000])
	docs := make([]Document, n)
	var sb strings.Builder
	for i := range docs {
		if i > 10 && i%10 == 0 {
			src := docs[rng.IntN(i)].Text
			docs[i] = Document{fmt.Sprint(i), editWords(rng, src, 0.02+0.08*rng.Float64(), vocab)}
			continue
		}
		sb.Reset()
		for sb.Len() < 1000 {
			sb.WriteString(fortunes[rng.IntN(len(fortunes))])
			sb.WriteString("\n")
		}
		docs[i] = Document{fmt.Sprint(i), sb.String()}
	}
	return docs
}

func BenchmarkDedup100k(b *testing.B) {
	docs := dedupCorpus(b, 100_000)
	total := 0
	for _, d := range docs {
		total += len(d.Text)
	}
	b.SetBytes(int64(total))
	b.ResetTimer()
	var res DedupResult
	cpu := processCPUSeconds()
	for b.Loop() {
		var err error
		res, err = Dedup(context.Background(), docs, DedupOptions{})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric((processCPUSeconds()-cpu)/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(res.Stats.CandidatePairs), "candidates")
	b.ReportMetric(float64(len(res.Clusters)), "clusters")
}

// staircase builds the slowest SequenceRatio input we know of n code points:
// equal blocks of decreasing length (so each longest match sits at the left
// end and the recursion is as deep as there are blocks), drawn from an
// alphabet just small enough that no character is "popular" for autojunk,
// separated by characters that differ between a and b.
func staircase(n int) (string, string) {
	rng := rand.New(rand.NewPCG(1, 1))
	var a, b strings.Builder
	count := 0
	for l := 199; count+l+1 <= n && l > 1; l-- {
		for range l {
			r := rune(0x4e00 + rng.IntN(max(n/100, 1)))
			a.WriteRune(r)
			b.WriteRune(r)
		}
		a.WriteRune(0x3400 + rune(rng.IntN(200)))
		b.WriteRune(0x3600 + rune(rng.IntN(200)))
		count += l + 1
	}
	return a.String(), b.String()
}

func BenchmarkSequenceRatioStaircase(b *testing.B) {
	x, y := staircase(MaxSequenceChars)
	loopCPU(b, func() { SequenceRatio(x, y) })
}

// BenchmarkSequenceRatioRandomMax compares two random texts of
// MaxSequenceChars code points over an alphabet just under the autojunk
// popularity limit (every character indexed, ~100 positions each).
func BenchmarkSequenceRatioRandomMax(b *testing.B) {
	rng := rand.New(rand.NewPCG(2, 2))
	gen := func() string {
		var sb strings.Builder
		for range MaxSequenceChars {
			sb.WriteRune(rune(0x4e00 + rng.IntN(MaxSequenceChars/100)))
		}
		return sb.String()
	}
	x, y := gen(), gen()
	loopCPU(b, func() { SequenceRatio(x, y) })
}
