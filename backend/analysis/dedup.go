package analysis

import (
	"context"
	"fmt"
	"math"
)

// Document is one input of Dedup.
type Document struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// DedupOptions tunes Dedup. Zero fields mean the documented defaults.
type DedupOptions struct {
	// Shingle is the number of consecutive tokens per shingle (default
	// DefaultDedupShingle).
	Shingle int
	// Permutations is the MinHash signature length: the number of bins of
	// the one-permutation scheme (default DefaultPermutations).
	Permutations int
	// Bands is the number of LSH bands; rows per band = Permutations/Bands.
	// Zero derives bands and rows from Threshold (see lshParams).
	Bands int
	// Threshold is the Jaccard similarity, over shingle sets, at or above
	// which two documents are near-duplicates (default DefaultDedupThreshold).
	Threshold float64
	// Seed picks the hash functions (default DefaultSeed); results are
	// deterministic for a given seed.
	Seed uint64
}

// Defaults and limits of DedupOptions.
const (
	DefaultDedupShingle   = 3
	DefaultPermutations   = 128
	DefaultDedupThreshold = 0.8
	DefaultSeed           = 0x5eed
	MaxPermutations       = 1024
	MaxDedupDocuments     = 1_000_000
)

// DedupResult is the result of Dedup.
type DedupResult struct {
	// Clusters are groups of near-duplicate documents (two or more), the
	// connected components of the verified near-duplicate pairs; exact
	// duplicates are members too.
	Clusters []Cluster `json:"clusters"`
	// ExactDuplicates are groups of IDs whose content hashes (MD5 of the
	// stripped text, as Analysis.ContentHash) are equal.
	ExactDuplicates [][]string `json:"exact_duplicates"`
	Stats           DedupStats `json:"stats"`
}

// Cluster is one group of near-duplicates.
type Cluster struct {
	// IDs are the members in input order.
	IDs []string `json:"ids"`
	// Pairs are the verified pairs that connect the members (at most
	// MaxClusterPairs, the most similar first).
	Pairs []Pair `json:"pairs"`
	// MinJaccard and MaxJaccard range over the reported pairs' verified
	// Jaccard similarity.
	MinJaccard float64 `json:"min_jaccard"`
	MaxJaccard float64 `json:"max_jaccard"`
}

// MaxClusterPairs bounds Cluster.Pairs.
const MaxClusterPairs = 1000

// Pair is one verified near-duplicate pair.
type Pair struct {
	A string `json:"a"`
	B string `json:"b"`
	// EstimatedJaccard is the share of equal MinHash slots.
	EstimatedJaccard float64 `json:"estimated_jaccard"`
	// Jaccard is the exact Jaccard similarity of the shingle sets.
	Jaccard float64 `json:"jaccard"`
}

// DedupStats describes a Dedup run, including the parameters used.
type DedupStats struct {
	Documents    int     `json:"documents"`
	Shingle      int     `json:"shingle"`
	Permutations int     `json:"permutations"`
	Bands        int     `json:"bands"`
	Rows         int     `json:"rows"`
	Threshold    float64 `json:"threshold"`
	Seed         uint64  `json:"seed"`
	// CandidatePairs is the number of distinct LSH candidate pairs.
	CandidatePairs int `json:"candidate_pairs"`
	// VerifiedPairs is the number of candidates whose exact Jaccard reached
	// the threshold.
	VerifiedPairs        int `json:"verified_pairs"`
	Clusters             int `json:"clusters"`
	ExactDuplicateGroups int `json:"exact_duplicate_groups"`
}

// Dedup finds exact and near-duplicate documents. See DedupProgress.
func Dedup(ctx context.Context, docs []Document, opt DedupOptions) (DedupResult, error) {
	return DedupProgress(ctx, docs, opt, nil)
}

// DedupProgress is Dedup with a progress callback: progress(done, total) is
// called, never concurrently, as documents are signed (total is len(docs));
// it may be nil.
//
// It stops early with ctx's error when ctx is done. Document IDs must be
// non-empty and unique; len(docs) must not exceed MaxDedupDocuments.
func DedupProgress(ctx context.Context, docs []Document, opt DedupOptions, progress func(done, total int)) (DedupResult, error) {
	p, err := opt.resolve()
	if err != nil {
		return DedupResult{}, err
	}
	if err := validateDocuments(docs); err != nil {
		return DedupResult{}, err
	}
	d := newDeduper(docs, p)
	if err := d.sign(ctx, progress); err != nil {
		return DedupResult{}, err
	}
	cands, err := d.candidates(ctx)
	if err != nil {
		return DedupResult{}, err
	}
	pairs, err := d.verify(ctx, cands)
	if err != nil {
		return DedupResult{}, err
	}
	return d.result(len(cands), pairs), nil
}

func validateDocuments(docs []Document) error {
	if len(docs) > MaxDedupDocuments {
		return fmt.Errorf("analysis: dedup of %d documents (limit %d): %w", len(docs), MaxDedupDocuments, ErrInputTooLarge)
	}
	seen := make(map[string]int, len(docs))
	for i, doc := range docs {
		if doc.ID == "" {
			return fmt.Errorf("analysis: dedup: document %d has an empty id", i)
		}
		if j, dup := seen[doc.ID]; dup {
			return fmt.Errorf("analysis: dedup: id %q is used by documents %d and %d", doc.ID, j, i)
		}
		seen[doc.ID] = i
	}
	return nil
}

// resolvedDedup is DedupOptions with defaults applied and bands/rows fixed.
type resolvedDedup struct {
	shingle, perms, bands, rows int
	threshold                   float64
	seed                        uint64
}

// Validate reports the first invalid field of o.
func (o DedupOptions) Validate() error {
	_, err := o.resolve()
	return err
}

func (o DedupOptions) resolve() (resolvedDedup, error) {
	r := resolvedDedup{shingle: o.Shingle, perms: o.Permutations, bands: o.Bands, threshold: o.Threshold, seed: o.Seed}
	if r.shingle == 0 {
		r.shingle = DefaultDedupShingle
	}
	if r.perms == 0 {
		r.perms = DefaultPermutations
	}
	if r.threshold == 0 {
		r.threshold = DefaultDedupThreshold
	}
	if r.seed == 0 {
		r.seed = DefaultSeed
	}
	switch {
	case r.shingle < 1 || r.shingle > MaxShingle:
		return r, fmt.Errorf("analysis: dedup shingle %d is outside [1, %d]", o.Shingle, MaxShingle)
	case r.perms < 1 || r.perms > MaxPermutations:
		return r, fmt.Errorf("analysis: dedup permutations %d is outside [1, %d]", o.Permutations, MaxPermutations)
	case !(r.threshold > 0 && r.threshold <= 1):
		return r, fmt.Errorf("analysis: dedup threshold %v is outside (0, 1]", o.Threshold)
	case r.bands < 0 || r.bands > r.perms:
		return r, fmt.Errorf("analysis: dedup bands %d is outside [1, permutations=%d]", o.Bands, r.perms)
	}
	if r.bands == 0 {
		r.bands, r.rows = lshParams(r.threshold, r.perms)
	} else {
		r.rows = r.perms / r.bands
	}
	return r, nil
}

// lshParams derives bands and rows for a threshold t. Candidates are
// verified with the exact Jaccard similarity afterwards, so a false positive
// only costs one verification while a false negative is a missed duplicate.
// Hence: among all (b, r) with b*r <= perms whose candidate probability at
// the threshold itself, P(t) = 1 - (1 - t^r)^b, is at least lshMinRecall,
// take the one with the smallest false-positive area, the integral of P(s)
// over s in [0, t] (datasketch's criterion, as a constraint rather than a
// weighted sum). For a fixed r the smallest admissible b is best, since P
// grows with b. If no (b, r) reaches lshMinRecall, the one with the largest
// P(t) wins. For t = 0.8 and 128 permutations this gives 13 bands of 7 rows
// (P(0.8) = 0.953, P(0.5) = 0.10, P(0.3) = 0.003).
func lshParams(t float64, perms int) (bands, rows int) {
	bestArea, bestRecall := math.Inf(1), -1.0
	for r := 1; r <= perms; r++ {
		maxB := perms / r
		tr := math.Pow(t, float64(r))
		b := maxB
		if tr < 1 {
			need := math.Ceil(math.Log(1-lshMinRecall) / math.Log1p(-tr))
			if need >= 1 && need < float64(maxB) {
				b = int(need)
			}
		} else {
			b = 1
		}
		recall := candidateProbability(t, b, r)
		switch {
		case recall >= lshMinRecall:
			if area := falsePositiveArea(t, b, r); bestRecall < lshMinRecall || area < bestArea {
				bands, rows, bestArea, bestRecall = b, r, area, recall
			}
		case bestRecall < lshMinRecall && recall > bestRecall:
			bands, rows, bestRecall = b, r, recall
		}
	}
	return bands, rows
}

// lshMinRecall is the least candidate probability demanded at the threshold.
const lshMinRecall = 0.95

// candidateProbability is the chance that two documents with Jaccard s share
// at least one of b bands of r rows.
func candidateProbability(s float64, b, r int) float64 {
	return 1 - math.Pow(1-math.Pow(s, float64(r)), float64(b))
}

// falsePositiveArea integrates candidateProbability over [0, t] (midpoint
// rule, 256 steps: smooth integrand, ample precision to rank parameters).
func falsePositiveArea(t float64, b, r int) float64 {
	const steps = 256
	h := t / steps
	sum := 0.0
	for i := 0; i < steps; i++ {
		sum += candidateProbability((float64(i)+0.5)*h, b, r)
	}
	return sum * h
}
