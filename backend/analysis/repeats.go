package analysis

import (
	"cmp"
	"math/bits"
	"slices"
	"sort"
	"strings"
)

// Repeated passages.
//
// Phrases: the tokens are interned to integers; for n from MaxNgram down to
// MinNgram every n-gram is hashed (polynomial hash modulo the Mersenne prime
// 2^61-1, candidates verified token by token, so a collision can only hide a
// repeat, never invent one). An n-gram is reported when it has at least two
// non-overlapping occurrences and one of them is not already wholly inside a
// reported longer phrase; it is then extended left and right for as long as every occurrence
// agrees, so a repeated paragraph is reported once, whole, rather than as a
// pile of overlapping 8-grams. Its tokens are marked covered so its own
// sub-phrases are not reported again.
//
// Sentences: the text is cut at runs of '.', '!', '?' and at line breaks;
// sentences with the same token sequence (so case and punctuation are
// ignored) and at least MinSentenceWords tokens are grouped.
//
// Both lists are ordered by the share of text they account for (words x
// count, then first position) and cut to MaxRepeats. Time is
// O(words x log(words) x (MaxNgram-MinNgram+1)) for the sorts (only n-grams
// whose end MinNgram-grams repeat are sorted, few in ordinary prose) plus
// extension work, capped at maxExtendWork(words) token comparisons in total.
// Measured: 110 KB of (very repetitive) license prose in ~16 ms of CPU; 1 MB
// of a single repeated word or a 3-word cycle, the worst inputs we tried,
// in 1-3 s on the loaded test machine, so the HTTP layer should bound the
// content size for this option.

const mersenne61 = 1<<61 - 1

// hashBase is an arbitrary base below 2^61-1 for the n-gram hash.
const hashBase = 0x1fd1_4b1b_7c2e_53a5 & mersenne61

func mulMod61(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	// a*b = hi*2^64 + lo; 2^64 = 8 (mod 2^61-1).
	r := (lo & mersenne61) + (lo >> 61) + (hi << 3)
	r = (r & mersenne61) + (r >> 61)
	if r >= mersenne61 {
		r -= mersenne61
	}
	return r
}

func addMod61(a, b uint64) uint64 {
	r := a + b
	if r >= mersenne61 {
		r -= mersenne61
	}
	return r
}

// tokenRange is an occurrence as a half-open range of token indexes.
type tokenRange struct{ from, to int }

type repeatFinder struct {
	words   []token
	ids     []uint64
	prefix  []uint64 // prefix[i] = hash of ids[:i]
	pow     []uint64 // pow[n] = hashBase^n
	covered []bool
	work    int // remaining extension budget
}

func maxExtendWork(words int) int { return 16*words + 1<<16 }

func findRepeats(content string, words []token, opt AnalyzeOptions) *Repeats {
	rf := newRepeatFinder(words)
	phrases := rf.phrases(opt.MinNgram, opt.MaxNgram)
	sentences := sentenceRepeats(content, words)

	res := &Repeats{Phrases: []Passage{}, Sentences: []Passage{}}
	var reported []tokenRange
	keep := func(groups [][]tokenRange, dst *[]Passage) {
		sortGroups(groups)
		if len(groups) > opt.MaxRepeats {
			groups = groups[:opt.MaxRepeats]
			res.Truncated = true
		}
		for _, g := range groups {
			*dst = append(*dst, rf.passage(g))
			reported = append(reported, g...)
		}
	}
	keep(phrases, &res.Phrases)
	keep(sentences, &res.Sentences)
	res.Coverage, res.WordCoverage = coverage(words, reported, runeCount(content))
	return res
}

func newRepeatFinder(words []token) *repeatFinder {
	rf := &repeatFinder{
		words:   words,
		ids:     make([]uint64, len(words)),
		prefix:  make([]uint64, len(words)+1),
		pow:     make([]uint64, len(words)+1),
		covered: make([]bool, len(words)),
		work:    maxExtendWork(len(words)),
	}
	intern := make(map[string]uint64, len(words))
	rf.pow[0] = 1
	for i, w := range words {
		id, ok := intern[w.text]
		if !ok {
			id = uint64(len(intern)) + 1
			intern[w.text] = id
		}
		rf.ids[i] = id
		rf.prefix[i+1] = addMod61(mulMod61(rf.prefix[i], hashBase), id)
		rf.pow[i+1] = mulMod61(rf.pow[i], hashBase)
	}
	return rf
}

// hash of the n-gram starting at token i.
func (rf *repeatFinder) hash(i, n int) uint64 {
	return addMod61(rf.prefix[i+n], mersenne61-mulMod61(rf.prefix[i], rf.pow[n]))
}

func (rf *repeatFinder) equal(i, j, n int) bool {
	for k := 0; k < n; k++ {
		if rf.ids[i+k] != rf.ids[j+k] {
			return false
		}
	}
	return true
}

// gram is one n-gram occurrence: its hash and start token.
type gram struct {
	hash  uint64
	start int32
}

// phrases returns one group of occurrences per reported phrase.
func (rf *repeatFinder) phrases(minN, maxN int) [][]tokenRange {
	var out [][]tokenRange
	grams := make([]gram, 0, len(rf.ids))
	type run struct{ lo, hi int } // a group of equal n-grams in grams
	var runs []run
	var starts []int
	byHashThenStart := func(x, y gram) int {
		if x.hash != y.hash {
			return cmp.Compare(x.hash, y.hash)
		}
		return cmp.Compare(x.start, y.start)
	}
	// An n-gram (n >= minN) can only repeat where the minN-grams at both its
	// ends repeat; in prose few do, so this filter keeps the sorts below
	// small.
	seed := make([]bool, len(rf.ids))
	if minN <= len(rf.ids) {
		for i := 0; i+minN <= len(rf.ids); i++ {
			grams = append(grams, gram{rf.hash(i, minN), int32(i)})
		}
		slices.SortFunc(grams, byHashThenStart)
		for lo := 0; lo < len(grams); {
			hi := lo + 1
			for hi < len(grams) && grams[hi].hash == grams[lo].hash {
				hi++
			}
			for _, g := range grams[lo:hi] {
				seed[g.start] = hi-lo >= 2
			}
			lo = hi
		}
	}
	for n := min(maxN, len(rf.ids)); n >= minN; n-- {
		// Group the n-grams by sorting (hash, start): no map, no
		// per-group allocation. Then visit groups in order of first
		// occurrence, which decides what longer phrases cover first.
		grams = grams[:0]
		for i := 0; i+n <= len(rf.ids); i++ {
			if seed[i] && seed[i+n-minN] {
				grams = append(grams, gram{rf.hash(i, n), int32(i)})
			}
		}
		slices.SortFunc(grams, byHashThenStart)
		runs = runs[:0]
		for lo := 0; lo < len(grams); {
			hi := lo + 1
			for hi < len(grams) && grams[hi].hash == grams[lo].hash {
				hi++
			}
			if hi-lo >= 2 {
				runs = append(runs, run{lo, hi})
			}
			lo = hi
		}
		slices.SortFunc(runs, func(x, y run) int { return cmp.Compare(grams[x.lo].start, grams[y.lo].start) })
		for _, r := range runs {
			first := int(grams[r.lo].start)
			starts = append(starts[:0], first)
			for _, g := range grams[r.lo+1 : r.hi] {
				if rf.equal(first, int(g.start), n) { // drop hash collisions
					starts = append(starts, int(g.start))
				}
			}
			if len(starts) < 2 {
				continue
			}
			occ := rf.freshOccurrences(starts, n)
			if len(occ) < 2 {
				continue
			}
			occ = rf.extend(occ)
			for _, o := range occ {
				for k := o.from; k < o.to; k++ {
					rf.covered[k] = true
				}
			}
			out = append(out, occ)
		}
	}
	return out
}

// freshOccurrences returns the non-overlapping occurrences, left to right,
// if at least one of them is not wholly inside an already reported phrase
// (so "the quick brown fox" x3 is still reported beside a repeated sentence
// containing it twice); otherwise nil.
func (rf *repeatFinder) freshOccurrences(starts []int, n int) []tokenRange {
	var occ []tokenRange
	end, fresh := -1, false
	for _, s := range starts {
		if s < end {
			continue
		}
		occ = append(occ, tokenRange{s, s + n})
		end = s + n
		fresh = fresh || !rf.allCovered(s, s+n)
	}
	if !fresh {
		return nil
	}
	return occ
}

func (rf *repeatFinder) allCovered(from, to int) bool {
	for k := from; k < to; k++ {
		if !rf.covered[k] {
			return false
		}
	}
	return true
}

// extend grows all occurrences together, right then left, while every
// occurrence agrees on the next token and none runs into its neighbour.
func (rf *repeatFinder) extend(occ []tokenRange) []tokenRange {
	for rf.work > 0 {
		last := occ[len(occ)-1]
		if last.to >= len(rf.ids) {
			break
		}
		next := rf.ids[occ[0].to]
		ok := true
		for k, o := range occ {
			if rf.ids[o.to] != next || (k+1 < len(occ) && o.to >= occ[k+1].from) {
				ok = false
				break
			}
		}
		rf.work -= len(occ)
		if !ok {
			break
		}
		for k := range occ {
			occ[k].to++
		}
	}
	for rf.work > 0 {
		if occ[0].from == 0 {
			break
		}
		prev := rf.ids[occ[0].from-1]
		ok := true
		for k, o := range occ {
			if rf.ids[o.from-1] != prev || (k > 0 && o.from-1 < occ[k-1].to) {
				ok = false
				break
			}
		}
		rf.work -= len(occ)
		if !ok {
			break
		}
		for k := range occ {
			occ[k].from--
		}
	}
	return occ
}

func (rf *repeatFinder) passage(occ []tokenRange) Passage {
	first := occ[0]
	texts := make([]string, 0, first.to-first.from)
	for _, w := range rf.words[first.from:first.to] {
		texts = append(texts, w.text)
	}
	p := Passage{
		Text:        strings.Join(texts, " "),
		Words:       first.to - first.from,
		Count:       len(occ),
		Occurrences: make([]Span, len(occ)),
	}
	for k, o := range occ {
		p.Occurrences[k] = Span{rf.words[o.from].start, rf.words[o.to-1].end}
	}
	return p
}

// sortGroups orders groups by words x count, then by first position.
func sortGroups(groups [][]tokenRange) {
	sort.SliceStable(groups, func(i, j int) bool {
		wi := (groups[i][0].to - groups[i][0].from) * len(groups[i])
		wj := (groups[j][0].to - groups[j][0].from) * len(groups[j])
		if wi != wj {
			return wi > wj
		}
		return groups[i][0].from < groups[j][0].from
	})
}

// sentenceRepeats groups sentences with equal token sequences.
func sentenceRepeats(content string, words []token) [][]tokenRange {
	// Sentence ends, as code-point offsets of terminators.
	var ends []int
	cp := 0
	for _, r := range content {
		switch r {
		case '.', '!', '?', '\n', '\r', '\u2028', '\u2029':
			ends = append(ends, cp)
		}
		cp++
	}
	var sentences []tokenRange
	t := 0
	for _, e := range append(ends, cp) {
		from := t
		for t < len(words) && words[t].start < e {
			t++
		}
		if t-from >= MinSentenceWords {
			sentences = append(sentences, tokenRange{from, t})
		}
	}
	index := make(map[string]int)
	var groups [][]tokenRange
	for _, s := range sentences {
		key := joinWordTexts(words[s.from:s.to])
		g, ok := index[key]
		if !ok {
			index[key] = len(groups)
			groups = append(groups, []tokenRange{s})
			continue
		}
		groups[g] = append(groups[g], s)
	}
	out := groups[:0]
	for _, g := range groups {
		if len(g) >= 2 {
			out = append(out, g)
		}
	}
	return out
}

func joinWordTexts(ws []token) string {
	var b strings.Builder
	for i, w := range ws {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w.text)
	}
	return b.String()
}

// coverage returns the share of code points and of tokens inside the union
// of the occurrences.
func coverage(words []token, occ []tokenRange, chars int) (cpShare, wordShare float64) {
	if len(words) == 0 || chars == 0 || len(occ) == 0 {
		return 0, 0
	}
	sorted := append([]tokenRange(nil), occ...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].from < sorted[j].from })
	coveredWords, coveredChars := 0, 0
	cur := sorted[0]
	flush := func(r tokenRange) {
		coveredWords += r.to - r.from
		coveredChars += words[r.to-1].end - words[r.from].start
	}
	for _, r := range sorted[1:] {
		if r.from <= cur.to { // overlapping or adjacent in tokens: merge
			if r.to > cur.to {
				cur.to = r.to
			}
			continue
		}
		flush(cur)
		cur = r
	}
	flush(cur)
	return float64(coveredChars) / float64(chars), float64(coveredWords) / float64(len(words))
}

func runeCount(s string) int {
	n := 0
	for range s {
		n++
	}
	return n
}
