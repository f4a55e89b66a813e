package lint

import (
	"strconv"
	"strings"

	"github.com/contentguard/contentguard/policy"
)

// Locate returns the position of the value at path ("spec.routes[2].match",
// as policy errors name them) in the document root, or of its nearest
// ancestor present in the document (a defaulted key has no position of
// its own). It returns 0, 0 for a nil root.
func Locate(root *policy.Node, path string) (line, col int) {
	n := root
	if n == nil {
		return 0, 0
	}
	line, col = n.Line, n.Column
	for _, seg := range segments(path) {
		var next *policy.Node
		switch {
		case seg.key != "":
			next = n.Get(seg.key)
		case n.Kind == policy.Sequence && seg.index < len(n.Items):
			next = n.Items[seg.index]
		}
		if next == nil {
			return line, col
		}
		n = next
		line, col = n.Line, n.Column
	}
	return line, col
}

type segment struct {
	key   string
	index int
}

// segments splits "a.b[2].c" into a, b, [2], c.
func segments(path string) []segment {
	var out []segment
	for _, part := range strings.Split(path, ".") {
		key, rest, _ := strings.Cut(part, "[")
		if key != "" {
			out = append(out, segment{key: key})
		}
		for rest != "" {
			num, after, _ := strings.Cut(rest, "]")
			i, err := strconv.Atoi(num)
			if err != nil {
				return out
			}
			out = append(out, segment{index: i})
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return out
}
