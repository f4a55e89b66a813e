package analysis

import (
	"context"
	"crypto/md5"
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// Near-duplicate detection.
//
// Every document's text is tokenised as Tokens does (without allocating: each
// token becomes a 64-bit FNV-1a hash of its lower-cased runes), consecutive
// tokens form shingles of Shingle tokens, each shingle a 64-bit hash; a text
// with fewer tokens than Shingle has one shingle of all its tokens, a text
// without tokens none (it can then only be an exact duplicate).
//
// MinHash: one-permutation hashing with optimal densification (see
// minhash): one hash per shingle fills Permutations bins; slot i of the
// signature is the minimum of bin i. For two sets P[slot equal] = Jaccard,
// so the share of equal slots estimates it (standard error about
// sqrt(J(1-J)/Permutations)).
//
// LSH: the signature is cut into Bands bands of Rows slots; documents whose
// band hashes coincide in at least one band become candidate pairs, with
// probability 1-(1-J^Rows)^Bands (see lshParams).
//
// Every candidate pair is verified with the exact Jaccard similarity of the
// two shingle-hash sets (sorted, merged; a 64-bit hash collision, probability
// ~ shingles^2/2^64, is the only inexactness) and kept when it is at least
// Threshold. Clusters are the connected components (union-find) of the kept
// pairs and of the exact duplicates.
//
// Exact duplicates (same MD5 of the str.strip()-ed text) are signed once:
// only the first of a group takes part in LSH.
//
// Cost: O(total text) to tokenise, O(shingles + Permutations) to sign, both
// spread over GOMAXPROCS goroutines; O(docs x Bands x log docs) to bucket;
// O(candidates x shingles) to verify. Memory: 8 bytes per shingle and per
// signature slot. Candidate pairs are capped at MaxCandidatePairs.

// MaxCandidatePairs bounds the candidate pairs Dedup will verify; beyond it
// (e.g. thousands of near-identical template documents) it fails with
// ErrInputTooLarge rather than exhaust memory.
const MaxCandidatePairs = 20_000_000

type deduper struct {
	docs     []Document
	p        resolvedDedup
	seed     uint64     // re-mixes shingle hashes: Seed picks the hash function
	probe    uint64     // seeds the densification probe sequence
	sums     [][16]byte // MD5 of the stripped text
	shingles [][]uint64 // sorted, unique shingle hashes
	sigs     []uint64   // len(docs) x perms
	rep      []int32    // index of the first document with the same MD5
}

func newDeduper(docs []Document, p resolvedDedup) *deduper {
	d := &deduper{
		docs:     docs,
		p:        p,
		sums:     make([][16]byte, len(docs)),
		shingles: make([][]uint64, len(docs)),
		sigs:     make([]uint64, len(docs)*p.perms),
		rep:      make([]int32, len(docs)),
	}
	state := p.seed
	d.seed = splitmix64(&state)
	d.probe = splitmix64(&state)
	return d
}

func splitmix64(state *uint64) uint64 {
	*state += 0x9e3779b97f4a7c15
	return mix64(*state)
}

// mix64 is the splitmix64 / murmur3 finaliser: a bijection that spreads every
// input bit over the output.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// parallel runs work(lo, hi) over [0, n) in chunks on GOMAXPROCS goroutines,
// stopping early when ctx is done; after(k) runs, serialised, after each
// chunk of k items.
func parallel(ctx context.Context, n, chunk int, work func(lo, hi int), after func(k int)) error {
	var next atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), (n+chunk-1)/chunk)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				lo := int(next.Add(int64(chunk))) - chunk
				if lo >= n {
					return
				}
				hi := min(lo+chunk, n)
				work(lo, hi)
				if after != nil {
					mu.Lock()
					after(hi - lo)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("analysis: dedup: %w", err)
	}
	return nil
}

// sign computes MD5s, shingle sets and signatures of all documents.
func (d *deduper) sign(ctx context.Context, progress func(done, total int)) error {
	done := 0
	after := func(k int) {
		done += k
		if progress != nil {
			progress(done, len(d.docs))
		}
	}
	err := parallel(ctx, len(d.docs), 64, func(lo, hi int) {
		var toks, arena []uint64
		var buf []byte
		for i := lo; i < hi; i++ {
			text := d.docs[i].Text
			buf = append(buf[:0], pyStrip(text)...)
			d.sums[i] = md5.Sum(buf)
			toks = tokenHashes(toks[:0], text)
			d.shingles[i], arena = shingleHashes(toks, d.p.shingle, arena)
			d.minhash(d.shingles[i], d.sigs[i*d.p.perms:(i+1)*d.p.perms])
		}
	}, after)
	if err != nil {
		return err
	}
	first := make(map[[16]byte]int32, len(d.docs))
	for i, s := range d.sums {
		r, ok := first[s]
		if !ok {
			r = int32(i)
			first[s] = r
		}
		d.rep[i] = r
	}
	return nil
}

// minhash fills sig with a one-permutation MinHash signature with optimal
// densification (Shrivastava, ICML 2017):
//
//   - every shingle hash x is re-mixed with the seed, v = mix64(x ^ seed),
//     which acts as one random permutation of the 64-bit hash space; the
//     space is cut into len(sig) equal bins (bin = high bits of v*len(sig))
//     and slot i keeps the smallest v that falls into bin i;
//   - a bin no shingle fell into borrows the value of another bin, chosen by
//     a probe sequence that depends only on (i, attempt) and the seed, so
//     two documents probe the same bins and the estimator stays unbiased.
//
// Then P[sig_A[i] == sig_B[i]] = J(A, B) for every slot, as with
// len(sig) independent permutations, for one hash per shingle instead of
// len(sig): the k-permutation scheme's O(shingles x k) becomes
// O(shingles + k). TestDedupEstimatesJaccard checks bias and variance.
func (d *deduper) minhash(shingles []uint64, sig []uint64) {
	k := uint64(len(sig))
	var filledBuf [MaxPermutations]bool
	filled := filledBuf[:k]
	for i := range sig {
		sig[i] = math.MaxUint64
	}
	for _, x := range shingles {
		v := mix64(x ^ d.seed)
		bin, _ := bits.Mul64(v, k)
		if v <= sig[bin] {
			sig[bin] = v
			filled[bin] = true
		}
	}
	nonEmpty := false
	for _, f := range filled {
		nonEmpty = nonEmpty || f
	}
	if !nonEmpty {
		return // no shingles: the document takes no part in LSH
	}
	for i := range sig {
		if filled[i] {
			continue
		}
		for attempt := uint64(1); ; attempt++ {
			j, _ := bits.Mul64(mix64(d.probe^uint64(i)<<32^attempt), k)
			if filled[j] {
				sig[i] = sig[j]
				break
			}
		}
	}
}

// tokenHashes appends the FNV-1a hash (over lower-cased runes, finalised by
// mix64) of every token of s, with exactly the tokenisation of Tokens (the
// fuzz and reference tests hold both to Python's).
func tokenHashes(dst []uint64, s string) []uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h, in := uint64(offset), false
	var lowered [3]rune
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf { // ASCII fast path
			if asciiWord[c] {
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				h, in = (h^uint64(c))*prime, true
			} else if in {
				dst = append(dst, mix64(h))
				h, in = offset, false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		for _, lr := range pyLowerRune(s, i, r, lowered[:0]) {
			if isWordRune(lr) {
				h, in = (h^uint64(lr))*prime, true
			} else if in {
				dst = append(dst, mix64(h))
				h, in = offset, false
			}
		}
		i += size
	}
	if in {
		dst = append(dst, mix64(h))
	}
	return dst
}

// shingleHashes returns the hashes of the k-token shingles, unsorted and
// possibly repeated (MinHash does not care; verification sorts the few
// documents it needs, see sortedSet). The result is carved from arena, a
// chunk shared by many documents, to spare the allocator and the GC one
// object per document; the rest of the arena is returned for the next call.
func shingleHashes(tokens []uint64, k int, arena []uint64) (shingles, rest []uint64) {
	if len(tokens) == 0 {
		return nil, arena
	}
	k = min(k, len(tokens))
	n := len(tokens) - k + 1
	if len(arena) < n {
		arena = make([]uint64, max(n, 1<<13))
	}
	out := arena[:0:n]
	for i := 0; i+k <= len(tokens); i++ {
		// Token hashes are already mixed: rotate each by a distinct
		// position-dependent amount (23 is odd, so j*23 mod 64 differ for
		// j < 64), XOR, and mix once.
		h := uint64(k) * 0x9e3779b97f4a7c15
		for j, t := range tokens[i : i+k] {
			h ^= bits.RotateLeft64(t, j*23)
		}
		out = append(out, mix64(h))
	}
	return out, arena[n:]
}

// sortedSet sorts and de-duplicates shingle hashes in place.
func sortedSet(hashes []uint64) []uint64 {
	slices.Sort(hashes)
	return slices.Clip(slices.Compact(hashes))
}

// bandEntry is one document's hash of one band.
type bandEntry struct {
	key uint64
	doc int32
}

// candidates returns the sorted, unique candidate pairs (i<<32 | j, i < j)
// among the first documents of each exact-duplicate group.
func (d *deduper) candidates(ctx context.Context) ([]uint64, error) {
	var reps []int32
	for i := range d.docs {
		if d.rep[i] == int32(i) && len(d.shingles[i]) > 0 {
			reps = append(reps, int32(i))
		}
	}
	var (
		mu       sync.Mutex
		all      []uint64
		total    atomic.Int64
		tooMany  atomic.Bool
		perms    = d.p.perms
		rows     = d.p.rows
		bandSeed = mix64(d.p.seed ^ 0xba4d)
	)
	err := parallel(ctx, d.p.bands, 1, func(lo, hi int) {
		entries := make([]bandEntry, len(reps))
		var pairs []uint64
		for band := lo; band < hi; band++ {
			for k, doc := range reps {
				h := bandSeed + uint64(band)
				for _, v := range d.sigs[int(doc)*perms+band*rows : int(doc)*perms+(band+1)*rows] {
					h = mix64(h ^ v)
				}
				entries[k] = bandEntry{h, doc}
			}
			slices.SortFunc(entries, func(x, y bandEntry) int {
				switch {
				case x.key < y.key:
					return -1
				case x.key > y.key:
					return 1
				}
				return int(x.doc - y.doc)
			})
			for s := 0; s < len(entries); {
				e := s + 1
				for e < len(entries) && entries[e].key == entries[s].key {
					e++
				}
				if n := e - s; n > 1 {
					if total.Add(int64(n*(n-1)/2)) > MaxCandidatePairs {
						tooMany.Store(true)
						return
					}
					for x := s; x < e; x++ {
						for y := x + 1; y < e; y++ {
							pairs = append(pairs, uint64(entries[x].doc)<<32|uint64(entries[y].doc))
						}
					}
				}
				s = e
			}
		}
		mu.Lock()
		all = append(all, pairs...)
		mu.Unlock()
	}, nil)
	if err != nil {
		return nil, err
	}
	if tooMany.Load() {
		return nil, fmt.Errorf("analysis: dedup: more than %d candidate pairs (raise the threshold or use more rows per band): %w", MaxCandidatePairs, ErrInputTooLarge)
	}
	slices.Sort(all)
	return slices.Compact(all), nil
}

// verifiedPair is a kept candidate pair, by document index.
type verifiedPair struct {
	i, j         int32
	est, jaccard float64
}

// verify keeps the candidate pairs whose exact Jaccard reaches the threshold.
func (d *deduper) verify(ctx context.Context, cands []uint64) ([]verifiedPair, error) {
	// Turn the shingle lists of the documents in candidate pairs into sets.
	involved := make([]bool, len(d.docs))
	for _, c := range cands {
		involved[c>>32], involved[uint32(c)] = true, true
	}
	var docs []int
	for i, in := range involved {
		if in {
			docs = append(docs, i)
		}
	}
	if err := parallel(ctx, len(docs), 256, func(lo, hi int) {
		for _, i := range docs[lo:hi] {
			d.shingles[i] = sortedSet(d.shingles[i])
		}
	}, nil); err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var kept []verifiedPair
	err := parallel(ctx, len(cands), 1024, func(lo, hi int) {
		var local []verifiedPair
		for _, c := range cands[lo:hi] {
			i, j := int32(c>>32), int32(uint32(c))
			jac := jaccardSorted(d.shingles[i], d.shingles[j])
			if jac < d.p.threshold {
				continue
			}
			local = append(local, verifiedPair{i, j, d.estimate(i, j), jac})
		}
		mu.Lock()
		kept = append(kept, local...)
		mu.Unlock()
	}, nil)
	if err != nil {
		return nil, err
	}
	sort.Slice(kept, func(x, y int) bool {
		if kept[x].i != kept[y].i {
			return kept[x].i < kept[y].i
		}
		return kept[x].j < kept[y].j
	})
	return kept, nil
}

func (d *deduper) estimate(i, j int32) float64 {
	n := d.p.perms
	si, sj := d.sigs[int(i)*n:int(i+1)*n], d.sigs[int(j)*n:int(j+1)*n]
	eq := 0
	for p := range si {
		if si[p] == sj[p] {
			eq++
		}
	}
	return float64(eq) / float64(n)
}

// jaccardSorted is |a ∩ b| / |a ∪ b| for sorted unique slices.
func jaccardSorted(a, b []uint64) float64 {
	if len(a) == 0 && len(b) == 0 {
		return 0
	}
	inter := 0
	for x, y := 0, 0; x < len(a) && y < len(b); {
		switch {
		case a[x] < b[y]:
			x++
		case a[x] > b[y]:
			y++
		default:
			inter++
			x++
			y++
		}
	}
	return float64(inter) / float64(len(a)+len(b)-inter)
}

// result assembles clusters and exact-duplicate groups.
func (d *deduper) result(candidates int, pairs []verifiedPair) DedupResult {
	n := len(d.docs)
	parent := make([]int32, n)
	for i := range parent {
		parent[i] = int32(i)
	}
	find := func(x int32) int32 {
		for parent[x] != x {
			parent[x] = parent[parent[x]]
			x = parent[x]
		}
		return x
	}
	union := func(x, y int32) {
		rx, ry := find(x), find(y)
		if rx == ry {
			return
		}
		if rx > ry {
			rx, ry = ry, rx
		}
		parent[ry] = rx // the smaller index is the root: deterministic
	}
	edges := make(map[int32][]verifiedPair) // root -> pairs, filled below
	exact := make(map[int32][]string)       // first index -> ids
	var exactOrder []int32
	for i := range d.docs {
		r := d.rep[i]
		if r == int32(i) {
			continue
		}
		union(r, int32(i))
		if _, ok := exact[r]; !ok {
			exactOrder = append(exactOrder, r)
			exact[r] = []string{d.docs[r].ID}
		}
		exact[r] = append(exact[r], d.docs[i].ID)
	}
	for _, p := range pairs {
		union(p.i, p.j)
	}
	for i := range d.docs {
		if r := d.rep[i]; r != int32(i) {
			root := find(r)
			edges[root] = append(edges[root], verifiedPair{r, int32(i), 1, 1})
		}
	}
	for _, p := range pairs {
		root := find(p.i)
		edges[root] = append(edges[root], p)
	}

	res := DedupResult{Clusters: []Cluster{}, ExactDuplicates: [][]string{}}
	members := make(map[int32][]string)
	var roots []int32
	for i := range d.docs {
		root := find(int32(i))
		if _, ok := edges[root]; !ok {
			continue
		}
		if _, ok := members[root]; !ok {
			roots = append(roots, root)
		}
		members[root] = append(members[root], d.docs[i].ID)
	}
	for _, root := range roots {
		es := edges[root]
		sort.SliceStable(es, func(x, y int) bool { return es[x].jaccard > es[y].jaccard })
		c := Cluster{IDs: members[root], MinJaccard: es[len(es)-1].jaccard, MaxJaccard: es[0].jaccard}
		for _, e := range es[:min(len(es), MaxClusterPairs)] {
			c.Pairs = append(c.Pairs, Pair{A: d.docs[e.i].ID, B: d.docs[e.j].ID, EstimatedJaccard: e.est, Jaccard: e.jaccard})
		}
		res.Clusters = append(res.Clusters, c)
	}
	for _, r := range exactOrder {
		res.ExactDuplicates = append(res.ExactDuplicates, exact[r])
	}
	res.Stats = DedupStats{
		Documents: n, Shingle: d.p.shingle, Permutations: d.p.perms, Bands: d.p.bands, Rows: d.p.rows,
		Threshold: d.p.threshold, Seed: d.p.seed, CandidatePairs: candidates, VerifiedPairs: len(pairs),
		Clusters: len(res.Clusters), ExactDuplicateGroups: len(res.ExactDuplicates),
	}
	return res
}
