// Package ci holds the tests of the CI entry point, .ci/run: what it
// installs, and that it starts and stops nothing it did not install.
package ci
