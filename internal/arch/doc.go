// Package arch holds the tests of the rules of the house written in
// docs/architecture.md: what may import what, what must stay runnable by
// Yaegi, and that no sidecar package both serves HTTP and dials the
// upstream. It has no code: a rule broken by a change fails its test.
package arch
