// Package bad holds one of each construct TestYaegiGuard must refuse.
package bad

import (
	"slices"
	"sync/atomic"
)

type Gen[T any] struct{ v T }

func first[T any](xs []T) T { return xs[0] }

func rangeInt() (n int) {
	for i := range 3 {
		n += i
	}
	return n
}

func rangeFunc(seq func(func(int) bool)) {
	for x := range seq {
		_ = x
	}
}

var p atomic.Pointer[int]

func builtins(a, b int) int { return min(a, b) + max(a, b) }

func sorted(xs []int) { slices.Sort(xs) }

type wrapped struct{ err error }

func (w wrapped) Error() string { return "wrapped" }
func (w wrapped) Unwrap() error { return w.err }

func lost(f func() int) (int, int) {
	var a, b int
	a, b = 1, f()
	return a, b
}

var unnamed = func(int) bool { return true }

func selecting(a, b chan int) {
	select {
	case <-a:
	case <-b:
	}
}

func commaCase(c byte) bool {
	switch {
	case c == 'a', c == 'b':
		return true
	}
	return false
}

func forever() {
	for i := 0; ; {
		_ = i
		return
	}
}

type counter struct{ n int }

func (c *counter) get() (n int) {
	n = c.n
	return n
}

func viaExpression(c *counter) int { return (*counter).get(c) }

type maker func() string

func name() string { return "x" }

func returnsNamed() maker { return name }
