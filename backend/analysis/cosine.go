package analysis

import (
	"math"
	"sort"
)

// tfidfCosine is the cosine similarity of the TF-IDF vectors of two token
// lists, computed as scikit-learn's TfidfVectorizer (norm="l2",
// use_idf=True, smooth_idf=True, sublinear_tf=False) followed by
// cosine_similarity, with the two documents as the whole corpus:
//
//	tf(t, d)  = count of t in d
//	idf(t)    = ln((1 + 2) / (1 + df(t))) + 1
//	w(t, d)   = tf * idf,  v_d = w / ||w||₂
//	cos       = v_1 · v_2
//
// Terms are summed in sorted order so the result does not depend on map
// iteration order.
func tfidfCosine(tok1, tok2 []string) float64 {
	if len(tok1) == 0 || len(tok2) == 0 {
		return 0
	}
	c1, c2 := counts(tok1), counts(tok2)
	idf := func(t string) float64 {
		df := 0
		if _, ok := c1[t]; ok {
			df++
		}
		if _, ok := c2[t]; ok {
			df++
		}
		return math.Log(3/float64(1+df)) + 1
	}
	norm := func(c map[string]int) float64 {
		var ss float64
		for _, t := range sortedKeys(c) {
			w := float64(c[t]) * idf(t)
			ss += w * w
		}
		return math.Sqrt(ss)
	}
	var dot float64
	for _, t := range sortedKeys(c1) {
		if n2, ok := c2[t]; ok {
			i := idf(t)
			dot += float64(c1[t]) * i * float64(n2) * i
		}
	}
	cos := dot / (norm(c1) * norm(c2))
	if cos > 1 { // rounding
		cos = 1
	}
	return cos
}

func counts(tokens []string) map[string]int {
	c := make(map[string]int, len(tokens))
	for _, t := range tokens {
		c[t]++
	}
	return c
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
