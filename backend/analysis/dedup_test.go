package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// refShingles is an independent reference for the shingle sets: Tokens, then
// k-token shingles as strings (no hashing), one shingle of all tokens for
// short texts.
func refShingles(text string, k int) map[string]struct{} {
	return shingleSet(Tokens(text), k)
}

// nearDupCorpus builds families: a real source document and variants with a
// known share of edited words (0.5% .. 12%), some exact copies (with
// different surrounding whitespace), and unrelated sources. It returns the
// documents and each document's family.
func nearDupCorpus(t testing.TB, sources int) ([]Document, []int) {
	rng := rand.New(rand.NewPCG(7, 11))
	texts := fortuneDocs(t, 1000)
	vocab := vocabulary(texts)
	rng.Shuffle(len(texts), func(i, j int) { texts[i], texts[j] = texts[j], texts[i] })
	shares := []float64{0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.08, 0.12}
	var docs []Document
	var family []int
	for f, src := range texts[:sources] {
		docs = append(docs, Document{fmt.Sprintf("s%d", f), src})
		family = append(family, f)
		switch v := rng.IntN(6); {
		case v == 0: // an unrelated source only
		case v == 1: // an exact copy, differently padded
			docs = append(docs, Document{fmt.Sprintf("s%d-copy", f), "\n  " + src + " \t"})
			family = append(family, f)
		default:
			for k := range v - 1 {
				share := shares[rng.IntN(len(shares))]
				docs = append(docs, Document{fmt.Sprintf("s%d-v%d", f, k), editWords(rng, src, share, vocab)})
				family = append(family, f)
			}
		}
	}
	return docs, family
}

type prf struct{ precision, recall, f1 float64 }

func score(tp, fp, fn int) prf {
	p := float64(tp) / float64(tp+fp)
	r := float64(tp) / float64(tp+fn)
	return prf{p, r, 2 * p * r / (p + r)}
}

// TestDedupF1 measures Dedup against the ground truth "exact Jaccard of the
// 3-token shingle sets >= 0.8" computed independently (string shingles,
// all pairs within a family, and across families through an inverted index
// so no pair is assumed negative). Measured: (a) the verified pairs against
// the true pairs, (b) the pairs sharing a cluster against the pairs sharing
// a connected component of the true-pair graph (clusters are components, so
// A~B~C puts A and C together even when J(A,C) < 0.8; the figure against
// the raw true pairs is logged too).
func TestDedupF1(t *testing.T) {
	docs, family := nearDupCorpus(t, 600)
	const k, threshold = DefaultDedupShingle, DefaultDedupThreshold

	sets := make([]map[string]struct{}, len(docs))
	for i, d := range docs {
		sets[i] = refShingles(d.Text, k)
	}
	// Exact intersections of all pairs via an inverted index.
	n := len(docs)
	inter := make([]int32, n*n)
	postings := map[string][]int{}
	for i, s := range sets {
		for sh := range s {
			postings[sh] = append(postings[sh], i)
		}
	}
	for _, p := range postings {
		for x := 0; x < len(p); x++ {
			for y := x + 1; y < len(p); y++ {
				inter[p[x]*n+p[y]]++
			}
		}
	}
	truth := map[[2]int]bool{}
	crossFamily := 0
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			in := int(inter[i*n+j])
			if in == 0 {
				continue
			}
			if float64(in)/float64(len(sets[i])+len(sets[j])-in) >= threshold {
				truth[[2]int{i, j}] = true
				if family[i] != family[j] {
					crossFamily++
				}
			}
		}
	}
	// Clusters are connected components, so their reference is the
	// components of the true-pair graph.
	parent := make([]int, n)
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(x int) int {
		if parent[x] != x {
			parent[x] = find(parent[x])
		}
		return parent[x]
	}
	for p := range truth {
		parent[find(p[0])] = find(p[1])
	}
	truthComponents := map[[2]int]bool{}
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			if find(i) == find(j) {
				truthComponents[[2]int{i, j}] = true
			}
		}
	}
	if len(truth) < 300 {
		t.Fatalf("corpus too easy: %d true pairs", len(truth))
	}

	res, err := Dedup(context.Background(), docs, DedupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	index := map[string]int{}
	for i, d := range docs {
		index[d.ID] = i
	}
	pairKey := func(a, b string) [2]int {
		i, j := index[a], index[b]
		if i > j {
			i, j = j, i
		}
		return [2]int{i, j}
	}
	count := func(pred, truth map[[2]int]bool) prf {
		tp, fp := 0, 0
		for p := range pred {
			if truth[p] {
				tp++
			} else {
				fp++
			}
		}
		return score(tp, fp, len(truth)-tp)
	}
	verified := map[[2]int]bool{}
	clustered := map[[2]int]bool{}
	for _, c := range res.Clusters {
		for _, p := range c.Pairs {
			verified[pairKey(p.A, p.B)] = true
			// The reported Jaccard is the exact one (hash collisions aside).
			i, j := index[p.A], index[p.B]
			in := int(inter[min(i, j)*n+max(i, j)])
			want := float64(in) / float64(len(sets[i])+len(sets[j])-in)
			if math.Abs(p.Jaccard-want) > 1e-12 {
				t.Errorf("pair %s/%s: jaccard %v, reference %v", p.A, p.B, p.Jaccard, want)
			}
		}
		for x := range c.IDs {
			for y := x + 1; y < len(c.IDs); y++ {
				clustered[pairKey(c.IDs[x], c.IDs[y])] = true
			}
		}
	}
	if len(res.Clusters) > 0 && len(res.Clusters[0].Pairs) == MaxClusterPairs {
		t.Fatal("pairs truncated; the pair-level measure needs them all")
	}
	pv, pc, pcPairwise := count(verified, truth), count(clustered, truthComponents), count(clustered, truth)
	t.Logf("documents %d, true pairs %d (%d across families), candidates %d, bands %d x rows %d",
		len(docs), len(truth), crossFamily, res.Stats.CandidatePairs, res.Stats.Bands, res.Stats.Rows)
	t.Logf("verified pairs: precision %.4f recall %.4f F1 %.4f", pv.precision, pv.recall, pv.f1)
	t.Logf("cluster pairs vs true components: precision %.4f recall %.4f F1 %.4f", pc.precision, pc.recall, pc.f1)
	t.Logf("cluster pairs vs true pairs (chaining counts against): precision %.4f recall %.4f F1 %.4f", pcPairwise.precision, pcPairwise.recall, pcPairwise.f1)
	if pv.f1 < 0.95 || pc.f1 < 0.95 {
		t.Errorf("F1 below 0.95: verified %.4f, clustered %.4f", pv.f1, pc.f1)
	}
}

// TestDedupEstimatesJaccard checks the MinHash signatures through the real
// signing path: over many (source, edited variant) pairs the estimate must be
// unbiased, with an error no larger than independent permutations give,
// sqrt(J(1-J)/perms): standardised errors with mean ~0 and mean square at
// most ~1 (one-permutation hashing samples bins without replacement, so its
// mean square is somewhat below 1; a collapse towards 0 would mean the
// estimate copies the exact value and is broken).
func TestDedupEstimatesJaccard(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	texts := fortuneDocs(t, 1000)
	vocab := vocabulary(texts)
	var docs []Document
	for k := 0; k < 1500; k++ {
		src := texts[rng.IntN(len(texts))]
		share := []float64{0.02, 0.05, 0.1, 0.2, 0.4}[rng.IntN(5)]
		docs = append(docs, Document{fmt.Sprint("a", k), src}, Document{fmt.Sprint("b", k), editWords(rng, src, share, vocab)})
	}
	p, err := DedupOptions{}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	d := newDeduper(docs, p)
	if err := d.sign(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	var sum, sumSq float64
	n := 0
	for k := 0; k+1 < len(docs); k += 2 {
		j := jaccardSorted(sortedSet(d.shingles[k]), sortedSet(d.shingles[k+1]))
		if j == 0 || j == 1 {
			continue
		}
		z := (d.estimate(int32(k), int32(k+1)) - j) / math.Sqrt(j*(1-j)/float64(p.perms))
		sum += z
		sumSq += z * z
		n++
	}
	mean, ms := sum/float64(n), sumSq/float64(n)
	t.Logf("%d pairs: mean z %.3f, mean z^2 %.3f", n, mean, ms)
	if n < 1000 || math.Abs(mean) > 0.15 || ms < 0.4 || ms > 1.25 {
		t.Errorf("MinHash estimates look biased: mean z %.3f, mean z^2 %.3f over %d pairs", mean, ms, n)
	}
}

func TestDedupDeterministicAndExact(t *testing.T) {
	docs, _ := nearDupCorpus(t, 150)
	a, err := Dedup(context.Background(), docs, DedupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Dedup(context.Background(), docs, DedupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two runs with the same seed differ")
	}
	// Exact duplicates: exactly the groups of equal stripped text.
	byText := map[string][]string{}
	var order []string
	for _, d := range docs {
		key := strings.TrimSpace(d.Text)
		if _, ok := byText[key]; !ok {
			order = append(order, key)
		}
		byText[key] = append(byText[key], d.ID)
	}
	var want [][]string
	for _, k := range order {
		if len(byText[k]) > 1 {
			want = append(want, byText[k])
		}
	}
	if len(want) == 0 || !reflect.DeepEqual(a.ExactDuplicates, want) {
		t.Fatalf("exact duplicates %v, want %v", a.ExactDuplicates, want)
	}
	// Every cluster pair meets the threshold; every id appears in one
	// cluster at most.
	seen := map[string]bool{}
	for _, c := range a.Clusters {
		if len(c.IDs) < 2 || len(c.Pairs) == 0 {
			t.Errorf("degenerate cluster %+v", c)
		}
		for _, id := range c.IDs {
			if seen[id] {
				t.Errorf("%s in two clusters", id)
			}
			seen[id] = true
		}
		for _, p := range c.Pairs {
			if p.Jaccard < DefaultDedupThreshold || p.EstimatedJaccard < 0 || p.EstimatedJaccard > 1 {
				t.Errorf("pair %+v", p)
			}
		}
	}
}

func TestDedupValidation(t *testing.T) {
	ok := []Document{{"a", "x"}, {"b", "y"}}
	for name, tc := range map[string]struct {
		docs []Document
		opt  DedupOptions
	}{
		"empty id":       {[]Document{{"", "x"}}, DedupOptions{}},
		"duplicate id":   {[]Document{{"a", "x"}, {"a", "y"}}, DedupOptions{}},
		"threshold > 1":  {ok, DedupOptions{Threshold: 1.5}},
		"threshold < 0":  {ok, DedupOptions{Threshold: -0.1}},
		"threshold NaN":  {ok, DedupOptions{Threshold: math.NaN()}},
		"shingle":        {ok, DedupOptions{Shingle: MaxShingle + 1}},
		"negative perms": {ok, DedupOptions{Permutations: -1}},
		"perms":          {ok, DedupOptions{Permutations: MaxPermutations + 1}},
		"bands > perms":  {ok, DedupOptions{Permutations: 8, Bands: 9}},
	} {
		if _, err := Dedup(context.Background(), tc.docs, tc.opt); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := Dedup(context.Background(), nil, DedupOptions{}); err != nil {
		t.Errorf("no documents: %v", err)
	}
	res, err := Dedup(context.Background(), ok, DedupOptions{Permutations: 16, Bands: 4})
	if err != nil || res.Stats.Rows != 4 || res.Clusters == nil || res.ExactDuplicates == nil {
		t.Errorf("explicit bands: %+v, %v", res.Stats, err)
	}
}

func TestDedupCancellationAndProgress(t *testing.T) {
	docs, _ := nearDupCorpus(t, 300)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Dedup(ctx, docs, DedupOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	_, err := DedupProgress(ctx, docs, DedupOptions{}, func(done, total int) {
		calls++
		if calls == 2 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled mid-run: %v", err)
	}

	last := 0
	_, err = DedupProgress(context.Background(), docs, DedupOptions{}, func(done, total int) {
		if done <= last || done > total || total != len(docs) {
			t.Errorf("progress %d/%d after %d", done, total, last)
		}
		last = done
	})
	if err != nil || last != len(docs) {
		t.Fatalf("progress ended at %d of %d: %v", last, len(docs), err)
	}
}

func TestLSHParams(t *testing.T) {
	for _, th := range []float64{0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1} {
		for _, perms := range []int{16, 64, 128, 256} {
			b, r := lshParams(th, perms)
			if b < 1 || r < 1 || b*r > perms {
				t.Errorf("lshParams(%v, %d) = %d x %d", th, perms, b, r)
				continue
			}
			// Where the recall floor is reachable it is met, and no admissible
			// (b, r) has a smaller false-positive area.
			if p := candidateProbability(th, b, r); p < lshMinRecall {
				for bb := 1; bb <= perms; bb++ {
					for rr := 1; bb*rr <= perms; rr++ {
						if candidateProbability(th, bb, rr) > p+1e-12 {
							t.Errorf("lshParams(%v, %d) = %dx%d (P=%v) but %dx%d reaches %v", th, perms, b, r, p, bb, rr, candidateProbability(th, bb, rr))
						}
					}
				}
				continue
			}
			area := falsePositiveArea(th, b, r)
			for bb := 1; bb <= perms; bb++ {
				for rr := 1; bb*rr <= perms; rr++ {
					if candidateProbability(th, bb, rr) >= lshMinRecall && falsePositiveArea(th, bb, rr) < area-1e-12 {
						t.Errorf("lshParams(%v, %d) = %dx%d (area %v) but %dx%d has area %v", th, perms, b, r, area, bb, rr, falsePositiveArea(th, bb, rr))
					}
				}
			}
		}
	}
}
