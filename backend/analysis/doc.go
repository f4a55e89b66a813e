// Package analysis holds the text-analysis algorithms of the contentguard
// backend: word statistics, repeated passages, pairwise similarity,
// readability, and near-duplicate detection over document sets. It is pure
// computation: no I/O, no global state, no HTTP (the API layer lives in
// another package and maps these types to JSON one to one).
//
// # Compatibility with the original service
//
// The backend replaces a Python service ("content redundancy detector")
// whose clients must keep working, so its observable arithmetic is
// reproduced exactly and tested against python3 itself:
//
//   - Tokens is Python's re.findall(r'\w+', s.lower()): Python's full
//     lower-case mapping (İ → "i̇", final sigma), then maximal runs of
//     letters, numbers and '_' (combining marks are not word characters).
//     Checked for every assigned code point of Python's Unicode database.
//   - Analyze: content_hash is the MD5 of the str.strip()-ed content
//     (Python's whitespace set, which includes U+001C..U+001F), character
//     count is len(content) in code points, redundancy = 1 − unique/words.
//   - SequenceRatio is difflib.SequenceMatcher(None, a, b).ratio(),
//     step for step, including the autojunk heuristic that drops characters
//     occurring more than len(b)/100+1 times from the index when
//     len(b) ≥ 200 (it changes results for ordinary prose). Similar's
//     "sequence" method applies it to the lower-cased texts, as the original
//     did, and keeps its rule that an empty text scores 0.
//   - AssessQuality keeps the original's rating bands (80/60/40), its
//     complexity score (redundancy × 100) and its suggestion strings.
//
// # Defects of the original fixed here
//
//   - Readability: the original put the average word length in characters
//     where Flesch's formula wants syllables per word, so ordinary prose
//     (≈ 4.5 characters per word → 206.8 − 84.6 × 4.5 < 0) always scored 0
//     and was rated "Needs Improvement". AssessQuality uses the real Flesch
//     reading ease with an English syllable heuristic (countSyllables) and
//     also returns the Flesch–Kincaid grade.
//   - common_words came back in set order (random per process); it is sorted
//     here and never null.
//   - The original never set analysis_time and keyed its cache on the first
//     100 characters; those are API-layer concerns, noted in the API docs.
//
// # Beyond the original
//
//   - Repeated passages (Analyze with Repeats): maximal repeated word
//     n-grams and repeated sentences with code-point offsets and coverage;
//     see repeats.go for the algorithm.
//   - Similar's "jaccard" (word shingles) and "cosine" (TF-IDF exactly as
//     scikit-learn's TfidfVectorizer defaults compute it) methods.
//   - Dedup: exact duplicates by hash, near-duplicates by MinHash signatures
//     with LSH banding, every candidate verified with the exact Jaccard
//     similarity, clusters by union-find; see minhash.go.
//
// # Units, bounds and bad input
//
// Offsets and lengths are in code points, like Python string indexes. No
// function panics on invalid UTF-8: each invalid byte reads as U+FFFD (one
// code point, not a word character); the hash covers the raw bytes. The HTTP
// layer rejects invalid UTF-8 before it gets here anyway.
//
// Work is bounded: Analyze, AssessQuality, the jaccard and cosine methods are
// linear in the input (repeats: times the n-gram range); SequenceRatio is
// superlinear and callers must respect MaxSequenceChars (Similar does);
// Dedup is parallel, honours context cancellation and refuses more than
// MaxDedupDocuments documents or MaxCandidatePairs candidate pairs.
//
// Unicode tables: Go's (Unicode 15.0). They agree with Python 3.11's
// (Unicode 14.0) on every code point 14.0 assigns; characters new in 15.0
// are word characters here as they are in Python 3.12.
package analysis
