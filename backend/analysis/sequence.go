package analysis

import "sort"

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

// matcher holds difflib.SequenceMatcher's state for one pair.
type matcher struct {
	a, b []rune
	b2j  map[rune][]int
	// j2len / newj2len of difflib as dense arrays indexed by j+1, with the
	// list of set slots so they can be cleared in O(set) rather than O(len(b)).
	cur, prev       []int
	curSet, prevSet []int
}

func newMatcher(a, b []rune) *matcher {
	m := &matcher{a: a, b: b, b2j: make(map[rune][]int)}
	for j, r := range b {
		m.b2j[r] = append(m.b2j[r], j)
	}
	if n := len(b); n >= 200 { // autojunk: purge popular elements
		ntest := n/100 + 1
		for r, idx := range m.b2j {
			if len(idx) > ntest {
				delete(m.b2j, r)
			}
		}
	}
	m.cur = make([]int, len(b)+1)
	m.prev = make([]int, len(b)+1)
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
	// prev[j+1] holds j2len[j] of the previous row; slot 0 stands for j = -1.
	for i := alo; i < ahi; i++ {
		js := m.b2j[a[i]]
		if len(js) > 16 && js[0] < blo {
			// difflib walks and skips every j < blo; a binary search
			// skips them at once (same result, far less work in the right
			// halves of the recursion).
			js = js[sort.SearchInts(js, blo):]
		}
		for _, j := range js {
			if j < blo {
				continue
			}
			if j >= bhi {
				break
			}
			k := m.prev[j] + 1 // j2len.get(j-1, 0) + 1
			m.cur[j+1] = k
			m.curSet = append(m.curSet, j+1)
			if k > bestsize {
				besti, bestj, bestsize = i-k+1, j-k+1, k
			}
		}
		for _, x := range m.prevSet {
			m.prev[x] = 0
		}
		m.prev, m.cur = m.cur, m.prev
		m.prevSet, m.curSet = m.curSet, m.prevSet[:0]
	}
	for _, x := range m.prevSet {
		m.prev[x] = 0
	}
	m.prevSet = m.prevSet[:0]

	for besti > alo && bestj > blo && a[besti-1] == b[bestj-1] {
		besti, bestj, bestsize = besti-1, bestj-1, bestsize+1
	}
	for besti+bestsize < ahi && bestj+bestsize < bhi && a[besti+bestsize] == b[bestj+bestsize] {
		bestsize++
	}
	return besti, bestj, bestsize
}
