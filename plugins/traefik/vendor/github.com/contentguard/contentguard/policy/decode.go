package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Error is one problem in a policy document, with its position.
type Error struct {
	File    string
	Line    int
	Column  int
	Path    string // e.g. spec.routes[2].auth.scopes[0]
	Message string
}

func (e Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File + ":")
	}
	if e.Line > 0 {
		b.WriteString(strconv.Itoa(e.Line) + ":" + strconv.Itoa(e.Column) + ":")
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Errors is every problem found in one document, in source order.
type Errors []Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i := 0; i < len(es); i++ {
		lines[i] = es[i].Error()
	}
	return strings.Join(lines, "\n")
}

// maxErrors stops a hostile or badly broken document from producing an
// unbounded error list.
const maxErrors = 100

// Decode turns a document tree into a validated Policy with defaults applied.
// file names the source in error messages; data, when not nil, is hashed into
// Policy.Hash. On any error the result is nil and the error is an Errors.
//
// It reads the tree as the tags of the model's types say (decode_gen.go),
// reporting every problem of a key with its position, and then, on a tree
// without any, checks the rules that span fields (validate.go).
func Decode(root *Node, file string, data []byte) (*Policy, error) {
	d := &decoder{file: file}
	p := &Policy{}
	if root == nil || root.Kind == Null {
		d.errorf(root, "", "empty policy document")
	} else {
		d.decodePolicy(root, "", p, keysOfPolicy)
	}
	if len(d.errs) == 0 {
		d.validate(p)
	}
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool {
			if d.errs[i].Line != d.errs[j].Line {
				return d.errs[i].Line < d.errs[j].Line
			}
			return d.errs[i].Column < d.errs[j].Column
		})
		return nil, d.errs
	}
	p.Source = file
	sum := sha256.Sum256(data)
	p.Hash = hex.EncodeToString(sum[:])
	return p, nil
}

// DecodeJSON parses and decodes a JSON policy document.
func DecodeJSON(data []byte, file string) (*Policy, error) {
	root, err := ParseJSON(data)
	if err != nil {
		return nil, Errors{{File: file, Message: err.Error()}}
	}
	return Decode(root, file, data)
}

type decoder struct {
	file string
	errs Errors
	// at remembers the node behind every path read, so that checks across
	// fields, which run after decoding, still report positions.
	at map[string]*Node
}

func (d *decoder) remember(path string, n *Node) {
	if n == nil {
		return
	}
	if d.at == nil {
		d.at = make(map[string]*Node)
	}
	d.at[path] = n
}

// fail reports a problem at path, positioned at the nearest node that was
// read on the way there: the value itself, or where it is missing.
func (d *decoder) fail(path, format string, args ...any) {
	p := path
	for {
		if n, ok := d.at[p]; ok {
			d.errorf(n, path, format, args...)
			return
		}
		cut := strings.LastIndexAny(p, ".[")
		if cut < 0 {
			d.errorf(d.at[""], path, format, args...)
			return
		}
		p = p[:cut]
	}
}

func (d *decoder) errorf(n *Node, path, format string, args ...any) {
	if len(d.errs) >= maxErrors {
		return
	}
	e := Error{File: d.file, Path: path, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line = n.Line
		e.Column = n.Column
	}
	d.errs = append(d.errs, e)
}

// mapping checks that n is a mapping whose keys are unique and, unless
// known is empty (a free-form mapping), all known. It reports false for a
// nil n. (An empty known, not a nil one: under Yaegi a variadic parameter
// given no arguments is not nil.)
func (d *decoder) mapping(n *Node, path string, known ...string) bool {
	if n == nil {
		return false
	}
	if n.Kind != Mapping {
		d.errorf(n, path, "expected a mapping, got %s", describe(n))
		return false
	}
	d.remember(path, n)
	seen := make(map[string]bool, len(n.Pairs))
	for i := 0; i < len(n.Pairs); i++ {
		k := n.Pairs[i].Key
		d.remember(join(path, k.Value), n.Pairs[i].Value)
		if seen[k.Value] {
			d.errorf(k, join(path, k.Value), "duplicate key")
			continue
		}
		seen[k.Value] = true
		if len(known) > 0 && !contains(known, k.Value) {
			d.errorf(k, join(path, k.Value), "unknown key %q (known: %s)", k.Value, strings.Join(known, ", "))
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for i := 0; i < len(list); i++ {
		if list[i] == s {
			return true
		}
	}
	return false
}

func describe(n *Node) string {
	switch n.Kind {
	case Scalar:
		if n.Tag == "str" {
			return fmt.Sprintf("string %q", n.Value)
		}
		return fmt.Sprintf("%s %s", n.Tag, n.Value)
	}
	return n.Kind.String()
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// The readers of scalar values: each reports a value of the wrong type at
// its position and returns the zero value, as for an absent (nil) node.

func (d *decoder) str(n *Node, path string) string {
	if n == nil {
		return ""
	}
	if n.Kind != Scalar || n.Tag != "str" {
		d.errorf(n, path, "expected a string, got %s", describe(n))
		return ""
	}
	return n.Value
}

func (d *decoder) boolean(n *Node, path string) bool {
	if n == nil {
		return false
	}
	if n.Kind != Scalar || n.Tag != "bool" {
		d.errorf(n, path, "expected true or false, got %s", describe(n))
		return false
	}
	return n.Value == "true"
}

func (d *decoder) integer(n *Node, path string) int {
	if n == nil {
		return 0
	}
	if n.Kind != Scalar || n.Tag != "int" {
		d.errorf(n, path, "expected an integer, got %s", describe(n))
		return 0
	}
	v, err := strconv.ParseInt(n.Value, 0, 32)
	if err != nil {
		d.errorf(n, path, "integer out of range: %s", n.Value)
		return 0
	}
	return int(v)
}

func (d *decoder) float(n *Node, path string) float64 {
	if n == nil {
		return 0
	}
	if n.Kind != Scalar || (n.Tag != "float" && n.Tag != "int") {
		d.errorf(n, path, "expected a number, got %s", describe(n))
		return 0
	}
	v, err := strconv.ParseFloat(n.Value, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		d.errorf(n, path, "invalid number %s", n.Value)
		return 0
	}
	return v
}

// duration accepts Go duration syntax ("90s", "15m", "720h"). Zero and
// negative durations are rejected: every duration in a policy is a period.
func (d *decoder) duration(n *Node, path string) time.Duration {
	s := d.str(n, path)
	if n == nil || s == "" && n.Tag != "str" {
		return 0
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.errorf(n, path, "invalid duration %q (use Go syntax such as 90s, 15m, 720h)", s)
		return 0
	}
	if v <= 0 {
		d.errorf(n, path, "duration must be positive, got %s", s)
		return 0
	}
	return v
}

// durationOrZero is duration that also takes "0" or "0s": none at all
// (the tag's zero option).
func (d *decoder) durationOrZero(n *Node, path string) time.Duration {
	if n != nil && n.Kind == Scalar && (n.Value == "0" || n.Value == "0s") {
		return 0
	}
	return d.duration(n, path)
}

// size accepts a byte count as an integer or with a unit: B, KB, MB, GB
// (powers of 1000) or KiB, MiB, GiB (powers of 1024).
func (d *decoder) size(n *Node, path string) int64 {
	if n == nil {
		return 0
	}
	if n.Kind == Scalar && n.Tag == "int" {
		v, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil || v <= 0 {
			d.errorf(n, path, "size must be a positive number of bytes, got %s", n.Value)
			return 0
		}
		return v
	}
	s := d.str(n, path)
	if s == "" {
		return 0
	}
	v, ok := ParseSize(s)
	if !ok {
		d.errorf(n, path, "invalid size %q (use bytes or a unit: KiB, MiB, GiB, KB, MB, GB)", s)
		return 0
	}
	return v
}

// ParseSize parses a positive size such as "1MiB", "512KB" or "2048".
func ParseSize(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1}}
	mult := int64(1)
	for i := 0; i < len(units); i++ {
		if strings.HasSuffix(s, units[i].suffix) {
			s = strings.TrimSpace(strings.TrimSuffix(s, units[i].suffix))
			mult = units[i].mult
			break
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 || v > math.MaxInt64/mult {
		return 0, false
	}
	return v * mult, true
}

// list returns the items of a list (none for a nil n), remembering each.
func (d *decoder) list(n *Node, path string) []*Node {
	if n == nil {
		return nil
	}
	if n.Kind != Sequence {
		d.errorf(n, path, "expected a list, got %s", describe(n))
		return nil
	}
	d.remember(path, n)
	for i := 0; i < len(n.Items); i++ {
		d.remember(index(path, i), n.Items[i])
	}
	return n.Items
}

func (d *decoder) strings(n *Node, path string) []string {
	items := d.list(n, path)
	if n == nil || n.Kind != Sequence {
		return nil
	}
	out := make([]string, 0, len(items))
	for i := 0; i < len(items); i++ {
		out = append(out, d.str(items[i], index(path, i)))
	}
	return out
}

// stringMap reads a free-form mapping of strings (labels, headers).
func (d *decoder) stringMap(n *Node, path string) map[string]string {
	if !d.mapping(n, path) {
		return nil
	}
	out := make(map[string]string, len(n.Pairs))
	for i := 0; i < len(n.Pairs); i++ {
		out[n.Pairs[i].Key.Value] = d.str(n.Pairs[i].Value, join(path, n.Pairs[i].Key.Value))
	}
	return out
}

// oneOf reports v, a value of the field at path, unless it is one of
// allowed (the tag's enum option).
func (d *decoder) oneOf(path, v, noun string, allowed ...string) {
	if contains(allowed, v) {
		return
	}
	use := allowed[0]
	for i := 1; i < len(allowed); i++ {
		sep := ", "
		if i == len(allowed)-1 {
			sep = " or "
		}
		use += sep + allowed[i]
	}
	d.fail(path, "unknown %s %q (use %s)", noun, v, use)
}

// JSON renders the node as JSON text. Policies written in YAML travel to the
// Traefik plugin (Yaegi cannot interpret the YAML library) as this JSON.
func (n *Node) JSON() string {
	var b strings.Builder
	writeNodeJSON(&b, n)
	return b.String()
}

func writeNodeJSON(b *strings.Builder, n *Node) {
	switch n.Kind {
	case Mapping:
		b.WriteByte('{')
		for i := 0; i < len(n.Pairs); i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(n.Pairs[i].Key.Value)
			b.Write(k)
			b.WriteByte(':')
			writeNodeJSON(b, n.Pairs[i].Value)
		}
		b.WriteByte('}')
	case Sequence:
		b.WriteByte('[')
		for i := 0; i < len(n.Items); i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			writeNodeJSON(b, n.Items[i])
		}
		b.WriteByte(']')
	case Scalar:
		if n.Tag == "str" {
			v, _ := json.Marshal(n.Value)
			b.Write(v)
		} else {
			b.WriteString(n.Value)
		}
	default:
		b.WriteString("null")
	}
}
