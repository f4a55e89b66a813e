// Package yamlnode reads a YAML policy document into policy's
// position-carrying Node tree. It is the one YAML reader of contentguard:
// the CLI, the sidecar and the Traefik plugin (which Yaegi interprets, and
// where go.yaml.in/yaml/v3 cannot run) all read policies through it, so a
// policy file gives the same tree, the same positions and the same errors
// on every data plane.
//
// It reads the YAML that policies are written in, with go.yaml.in/yaml/v3's
// positions and its YAML 1.2 core-schema resolution of plain scalars:
//
//   - block mappings and sequences, including a sequence at its key's
//     indentation;
//   - flow mappings and sequences ({a: 1, b: [x, y]}), over several lines;
//   - plain, 'single-quoted' and "double-quoted" scalars with every YAML
//     escape, folded over lines;
//   - literal (|) and folded (>) block scalars with chomping (+, -) and
//     indentation (1-9) indicators;
//   - comments, a "---" document start and "..." document end.
//
// It refuses, at the offending line and column, what a policy has no use
// for and what would let one document mean two things: anchors and aliases
// (and so "billion laughs"), merge keys, tags, directives, explicit '?'
// keys, keys that are not scalars, duplicate keys, a second document or any
// content after the first, tabs used for indentation, nesting deeper than
// MaxDepth and documents larger than MaxBytes.
//
// The package uses only the standard library and no reflection, and avoids
// the constructs that Yaegi v0.16.1 runs wrongly, so that the same source
// runs compiled and interpreted.
package yamlnode

import (
	"strconv"
	"unicode/utf8"

	"github.com/contentguard/contentguard/policy"
)

// MaxDepth bounds the nesting of collections, so that no document can
// exhaust the stack of the reader or of the code that walks its tree.
const MaxDepth = 64

// MaxBytes bounds a document; real policies are a few KiB.
const MaxBytes = 4 << 20

const errTooDeep = "document nested deeper than 64 levels"

// An Error is a document that cannot be read, at a 1-based line and column
// (counted in characters).
type Error struct {
	Line    int
	Column  int
	Message string
}

func (e *Error) Error() string {
	return strconv.Itoa(e.Line) + ":" + strconv.Itoa(e.Column) + ": " + e.Message
}

// Parse reads one YAML document. An empty document (nothing but comments
// and blank lines) is a null node at 1:1. A failure is always an *Error.
func Parse(data []byte) (*policy.Node, error) {
	if len(data) > MaxBytes {
		return nil, &Error{Line: 1, Column: 1, Message: "document larger than " + strconv.Itoa(MaxBytes) + " bytes"}
	}
	start, err := checkText(data)
	if err != nil {
		return nil, err
	}
	p := &parser{s: newScanner(data, start)}
	root := p.document()
	if p.s.err != nil {
		return nil, p.s.err
	}
	return root, nil
}

// checkText accepts UTF-8 text of the characters YAML allows, after an
// optional byte order mark, and returns where the text starts. NEL, LS and
// PS are refused: yaml/v3 treats them as line breaks, which no editor
// shows, so a line number would point somewhere the author cannot see.
func checkText(data []byte) (int, error) {
	start := 0
	if len(data) >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF {
		start = 3
	} else if len(data) >= 2 && (data[0] == 0xFF && data[1] == 0xFE || data[0] == 0xFE && data[1] == 0xFF) {
		return 0, &Error{Line: 1, Column: 1, Message: "document is UTF-16; a policy must be UTF-8"}
	}
	line, col := 1, 1
	for i := start; i < len(data); {
		b := data[i]
		if b < 0x80 {
			if b >= 0x20 && b < 0x7F || b == '\t' {
				i++
				col++
				continue
			}
			if b == '\n' || b == '\r' {
				if b == '\r' && i+1 < len(data) && data[i+1] == '\n' {
					i++
				}
				i++
				line++
				col = 1
				continue
			}
			return 0, &Error{Line: line, Column: col, Message: "control character " + strconv.QuoteRune(rune(b)) + " is not allowed; escape it in a double-quoted string"}
		}
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size == 1 {
			return 0, &Error{Line: line, Column: col, Message: "invalid UTF-8"}
		}
		if msg := refusedRune(r); msg != "" {
			return 0, &Error{Line: line, Column: col, Message: msg}
		}
		i += size
		col++
	}
	return start, nil
}

func refusedRune(r rune) string {
	if r == 0x85 || r == 0x2028 || r == 0x2029 {
		return "character " + strconv.QuoteRune(r) + " (a Unicode line break) is not allowed; use a line feed, or an escape in a double-quoted string"
	}
	if r == 0xFEFF {
		return "byte order mark inside the document"
	}
	if r >= 0xA0 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF {
		return ""
	}
	return "control character " + strconv.QuoteRune(r) + " is not allowed; escape it in a double-quoted string"
}

func position(m mark) string {
	return strconv.Itoa(m.line+1) + ":" + strconv.Itoa(m.col+1)
}
