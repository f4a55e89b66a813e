// Package analysis holds the text-analysis algorithms of the contentguard
// backend: word statistics, repeated passages, pairwise similarity,
// readability, and near-duplicate detection over document sets. It is pure
// computation: no I/O, no global state; the HTTP layer lives elsewhere.
package analysis
