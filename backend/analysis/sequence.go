package analysis

import "unicode/utf8"

// MaxSequenceChars is the largest text, in code points, that callers should
// hand to SequenceRatio: 10,000, the original service's own content limit.
// difflib's matcher is superlinear (see SequenceRatio); at this size the
// slowest input we could construct (a "staircase" of blocks of decreasing
// length drawn from an alphabet just under the autojunk popularity limit,
// BenchmarkSequenceRatioStaircase) takes tens of milliseconds, at twice the
// size about a second. Similar enforces the limit for the "sequence" method
// and returns ErrInputTooLarge; the HTTP layer should refuse such input early.
const MaxSequenceChars = 10000

// SequenceRatio returns exactly what Python's
// difflib.SequenceMatcher(None, a, b).ratio() returns for the same strings,
// compared code point by code point (Python str indexes code points; invalid
// UTF-8 bytes here count as one U+FFFD each).
//
// The algorithm is difflib's, step for step, because its result depends on
// tie-breaking: b is indexed (b2j: element -> ascending positions); when
// len(b) >= 200 the "autojunk" heuristic drops every element occurring more
// than len(b)/100+1 times from the index (those elements can then only join a
// match by extension, never seed one); find_longest_match keeps the earliest
// longest match and extends it over equal neighbours; matching blocks are
// found recursively left and right of each match; ratio = 2*M/(len(a)+len(b)),
// 1.0 when both are empty.
//
// Cost: one find_longest_match over ranges of sizes p and q costs the number
// of index hits, at most p*q, and at most p*(len(b)/100+1) with autojunk; the
// recursion splits a, so a level costs at most len(a)*(len(b)/100+1) and
// realistic text needs few levels. Memory is O(len(a)+len(b)).
func SequenceRatio(a, b string) float64 {
	ra, rb := []rune(a), []rune(b)
	total := len(ra) + len(rb)
	if total == 0 {
		return 1.0
	}
	m := newMatcher(ra, rb)
	return 2.0 * float64(m.matches()) / float64(total)
}

// matcher holds difflib.SequenceMatcher's state for one pair. b2j is stored
// flat (CSR): the elements of b get dense ids, positions[first[id]:first[id+1]]
// are the ascending positions of element id in b, and aID[i] is the id of
// a[i] (-1 when absent from b or purged as popular). No maps or pointers in
// the hot loop.
type matcher struct {
	a, b      []rune
	aID       []int32
	first     []int32
	positions []int32
	// j2len / newj2len of difflib as dense arrays indexed by j+1, with the
	// list of set slots so they can be cleared in O(set) rather than O(len(b)).
	cur, prev       []int32
	curSet, prevSet []int32
}

func newMatcher(a, b []rune) *matcher {
	m := &matcher{a: a, b: b}
	// Dense ids for b's elements: a table for ASCII, a map for the rest.
	var ascii [utf8.RuneSelf]int32
	for i := range ascii {
		ascii[i] = -1
	}
	other := map[rune]int32{}
	lookup := func(r rune) (int32, bool) {
		if r >= 0 && r < utf8.RuneSelf {
			return ascii[r], ascii[r] >= 0
		}
		id, ok := other[r]
		return id, ok
	}
	bID := make([]int32, len(b))
	var count []int32
	for j, r := range b {
		id, ok := lookup(r)
		if !ok {
			id = int32(len(count))
			count = append(count, 0)
			if r >= 0 && r < utf8.RuneSelf {
				ascii[r] = id
			} else {
				other[r] = id
			}
		}
		bID[j] = id
		count[id]++
	}
	// autojunk: elements occurring more than len(b)/100+1 times in a b of
	// 200 or more elements are purged from the index.
	popular := func(id int32) bool { return len(b) >= 200 && int(count[id]) > len(b)/100+1 }
	m.first = make([]int32, len(count)+1)
	for id, c := range count {
		if popular(int32(id)) {
			c = 0
		}
		m.first[id+1] = m.first[id] + c
	}
	m.positions = make([]int32, m.first[len(count)])
	fill := append([]int32(nil), m.first[:len(count)]...)
	for j, id := range bID {
		if !popular(id) {
			m.positions[fill[id]] = int32(j)
			fill[id]++
		}
	}
	m.aID = make([]int32, len(a))
	for i, r := range a {
		id, ok := lookup(r)
		if !ok || popular(id) {
			id = -1
		}
		m.aID[i] = id
	}
	m.cur = make([]int32, len(b)+1)
	m.prev = make([]int32, len(b)+1)
	return m
}

// matches is the sum of the sizes of difflib's matching blocks.
func (m *matcher) matches() int {
	type span struct{ alo, ahi, blo, bhi int }
	queue := []span{{0, len(m.a), 0, len(m.b)}}
	total := 0
	for len(queue) > 0 {
		s := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		i, j, k := m.longestMatch(s.alo, s.ahi, s.blo, s.bhi)
		if k == 0 {
			continue
		}
		total += k
		if s.alo < i && s.blo < j {
			queue = append(queue, span{s.alo, i, s.blo, j})
		}
		if i+k < s.ahi && j+k < s.bhi {
			queue = append(queue, span{i + k, s.ahi, j + k, s.bhi})
		}
	}
	return total
}

// longestMatch is difflib's find_longest_match with no junk function: the
// earliest (lowest i, then lowest j) longest block of indexed elements,
// extended over equal elements on both sides (popular elements included, as
// they are not "junk" in difflib's bjunk sense).
func (m *matcher) longestMatch(alo, ahi, blo, bhi int) (besti, bestj, bestsize int) {
	a, b := m.a, m.b
	besti, bestj = alo, blo
	// Locals, not fields: swapping slices stored in the heap-allocated
	// matcher would cost a GC write barrier per row.
	prev, cur := m.prev, m.cur
	prevSet, curSet := m.prevSet[:0], m.curSet[:0]
	// prev[j+1] holds j2len[j] of the previous row; slot 0 stands for j = -1.
	for i := alo; i < ahi; i++ {
		if id := m.aID[i]; id >= 0 {
			js := m.positions[m.first[id]:m.first[id+1]]
			if len(js) > 16 && int(js[0]) < blo {
				// difflib walks and skips every j < blo; a binary search
				// skips them at once (same result, less work in the right
				// halves of the recursion).
				js = js[lowerBound(js, int32(blo)):]
			}
			for _, j32 := range js {
				j := int(j32)
				if j < blo {
					continue
				}
				if j >= bhi {
					break
				}
				k := prev[j] + 1 // j2len.get(j-1, 0) + 1
				cur[j+1] = k
				curSet = append(curSet, j32+1)
				if int(k) > bestsize {
					besti, bestj, bestsize = i-int(k)+1, j-int(k)+1, int(k)
				}
			}
		}
		for _, x := range prevSet {
			prev[x] = 0
		}
		prev, cur = cur, prev
		prevSet, curSet = curSet, prevSet[:0]
	}
	for _, x := range prevSet {
		prev[x] = 0
	}
	m.prev, m.cur, m.prevSet, m.curSet = prev, cur, prevSet[:0], curSet[:0]

	for besti > alo && bestj > blo && a[besti-1] == b[bestj-1] {
		besti, bestj, bestsize = besti-1, bestj-1, bestsize+1
	}
	for besti+bestsize < ahi && bestj+bestsize < bhi && a[besti+bestsize] == b[bestj+bestsize] {
		bestsize++
	}
	return besti, bestj, bestsize
}

// lowerBound is the first index k of sorted xs with xs[k] >= x.
func lowerBound(xs []int32, x int32) int {
	lo, hi := 0, len(xs)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if xs[mid] < x {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}
