package analysis

import "fmt"

// Validate reports the first out-of-range field of o, if any. Zero values are
// valid and mean the defaults.
func (o AnalyzeOptions) Validate() error {
	n := o.normalized()
	switch {
	case o.MinNgram < 0 || o.MaxNgram < 0 || o.MaxRepeats < 0:
		return fmt.Errorf("analysis: min_ngram, max_ngram and max_repeats must not be negative")
	case n.MaxNgram > MaxNgramLimit:
		return fmt.Errorf("analysis: max_ngram %d exceeds %d", n.MaxNgram, MaxNgramLimit)
	case n.MinNgram > n.MaxNgram:
		return fmt.Errorf("analysis: min_ngram %d exceeds max_ngram %d", n.MinNgram, n.MaxNgram)
	case n.MaxRepeats > MaxRepeatsLimit:
		return fmt.Errorf("analysis: max_repeats %d exceeds %d", n.MaxRepeats, MaxRepeatsLimit)
	}
	return nil
}

// normalized fills defaults for zero fields only.
func (o AnalyzeOptions) normalized() AnalyzeOptions {
	if o.MinNgram == 0 {
		o.MinNgram = DefaultMinNgram
	}
	if o.MaxNgram == 0 {
		o.MaxNgram = DefaultMaxNgram
	}
	if o.MaxRepeats == 0 {
		o.MaxRepeats = DefaultMaxRepeats
	}
	return o
}

// clamped is normalized with every field forced into its valid range, so
// Analyze can run on any options.
func (o AnalyzeOptions) clamped() AnalyzeOptions {
	o = o.normalized()
	o.MinNgram = clampInt(o.MinNgram, 1, MaxNgramLimit)
	o.MaxNgram = clampInt(o.MaxNgram, o.MinNgram, MaxNgramLimit)
	o.MaxRepeats = clampInt(o.MaxRepeats, 1, MaxRepeatsLimit)
	return o
}

func clampInt(v, lo, hi int) int {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}
