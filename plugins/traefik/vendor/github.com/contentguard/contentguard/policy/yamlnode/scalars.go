package yamlnode

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// Scalars: plain, single- and double-quoted, literal and folded, scanned
// as libyaml scans them (line folding, escapes, chomping and indentation
// included), so that their values match yaml/v3's byte for byte.

func (s *scanner) appendScalar(start mark, value []byte, style scalarStyle) {
	s.queue = append(s.queue, token{kind: tokScalar, start: start, end: s.m, value: string(value), style: style})
}

func (s *scanner) fetchPlainScalar() {
	s.saveSimpleKey()
	s.simpleKeyAllowed = false
	s.scanPlainScalar()
}

func (s *scanner) fetchQuotedScalar(single bool) {
	s.saveSimpleKey()
	s.simpleKeyAllowed = false
	s.scanQuotedScalar(single)
}

func (s *scanner) fetchBlockScalar(literal bool) {
	s.removeSimpleKey()
	s.simpleKeyAllowed = true
	s.scanBlockScalar(literal)
}

// scanPlainScalar reads an unquoted scalar, which may continue on more
// indented lines.
func (s *scanner) scanPlainScalar() {
	start, end := s.m, s.m
	indent := s.indent + 1
	stops := " \t\r\n:"
	if s.flowLevel > 0 {
		stops = " \t\r\n:,?[]{}"
	}
	var value []byte
	var f folder
	for s.err == nil {
		if s.m.col == 0 && s.atDocumentIndicator() || s.at(0) == '#' {
			break
		}
		if run := s.plainRunEnd(stops); run > s.m.pos {
			if f.broken || len(f.spaces) > 0 {
				value = f.join(value)
			}
			value = s.readRun(value, run)
			end = s.m
		}
		if c := s.at(0); !isBlank(c) && !isBreak(c) {
			break
		}
		s.blanks(&f, indent)
		if s.flowLevel == 0 && s.m.col < indent {
			break
		}
	}
	if s.err != nil {
		return
	}
	s.queue = append(s.queue, token{kind: tokScalar, start: start, end: end, value: string(value), style: stylePlain})
	if f.broken {
		s.simpleKeyAllowed = true
	}
}

// plainRunEnd returns where a plain scalar's run of text ends: at a blank,
// a line break or the end, at a ':' followed by one of those, and in flow
// context at a flow indicator (stops holds what may end it).
func (s *scanner) plainRunEnd(stops string) int {
	src := s.src
	i := s.m.pos
	for {
		k := bytes.IndexAny(src[i:], stops)
		if k < 0 {
			return len(src)
		}
		i += k
		if src[i] != ':' || i+1 == len(src) || isBlankOrEnd(src[i+1]) {
			return i
		}
		i++
	}
}

// A folder holds the blanks between two runs of a plain or quoted
// scalar's text, to join them as YAML folds lines: spaces within a line are
// kept, spaces around a line break dropped, one line break becomes a space
// and each further (blank) line a newline.
type folder struct {
	spaces         []byte
	leadingBreak   []byte
	trailingBreaks []byte
	broken         bool // a line break is among the blanks
}

// blanks steps over spaces, tabs and line breaks into f. For a plain
// scalar, indent is its continuation lines' least column, before which a
// tab would be indentation: an error. Quoted scalars pass -1.
func (s *scanner) blanks(f *folder, indent int) {
	src := s.src
	for s.m.pos < len(src) {
		c := src[s.m.pos]
		if c == ' ' || c == '\t' {
			if !f.broken {
				f.spaces = append(f.spaces, c)
			} else if c == '\t' && s.m.col < indent {
				s.fail(s.m, "found a tab character that violates indentation; indent YAML with spaces")
				return
			}
			s.m.pos++
			s.m.index++
			s.m.col++
			continue
		}
		if c != '\n' && c != '\r' {
			return
		}
		if f.broken {
			f.trailingBreaks = s.readBreak(f.trailingBreaks)
		} else {
			f.spaces = f.spaces[:0]
			f.leadingBreak = s.readBreak(f.leadingBreak)
			f.broken = true
		}
	}
}

// join appends the blanks held to value and empties f.
func (f *folder) join(value []byte) []byte {
	if f.broken {
		if len(f.leadingBreak) > 0 && f.leadingBreak[0] == '\n' {
			if len(f.trailingBreaks) == 0 {
				value = append(value, ' ')
			} else {
				value = append(value, f.trailingBreaks...)
			}
		} else {
			value = append(value, f.leadingBreak...)
			value = append(value, f.trailingBreaks...)
		}
		f.leadingBreak = f.leadingBreak[:0]
		f.trailingBreaks = f.trailingBreaks[:0]
		f.broken = false
		return value
	}
	value = append(value, f.spaces...)
	f.spaces = f.spaces[:0]
	return value
}

func (s *scanner) scanQuotedScalar(single bool) {
	start := s.m
	s.skip()
	var value []byte
	var f folder
	for {
		if s.atDocumentIndicator() {
			s.fail(s.m, "found a document marker inside a quoted string that starts at "+position(start))
			return
		}
		if s.atEnd() {
			s.fail(start, "quoted string is not closed")
			return
		}
		stops := "' \t\r\n"
		if !single {
			stops = "\"\\ \t\r\n"
		}
		for {
			value = s.readRun(value, s.runEnd(stops))
			c := s.at(0)
			if isBlankOrEnd(c) {
				break
			}
			if single && c == '\'' && s.at(1) == '\'' {
				value = append(value, '\'')
				s.skip()
				s.skip()
				continue
			}
			if single && c == '\'' || !single && c == '"' {
				break
			}
			if !single && c == '\\' && isBreak(s.at(1)) {
				// An escaped line break joins the lines without a space.
				s.skip()
				s.skipBreak()
				f.broken = true
				break
			}
			if !single && c == '\\' {
				value = s.escape(value)
				if s.err != nil {
					return
				}
				continue
			}
		}
		if c := s.at(0); single && c == '\'' || !single && c == '"' {
			break
		}
		s.blanks(&f, -1)
		value = f.join(value)
	}
	s.skip() // the closing quote
	style := styleDoubleQuoted
	if single {
		style = styleSingleQuoted
	}
	s.appendScalar(start, value, style)
}

// The one-character escapes of a double-quoted scalar, and what they stand
// for. YAML 1.2's escapes, and \' which yaml/v3 reads too.
const escapeLetters = "0abt\tnvfre \"'/\\N_LP"

var escapeValues = [...]string{"\x00", "\a", "\b", "\t", "\t", "\n", "\v", "\f", "\r", "\x1b", " ", "\"", "'", "/", "\\", "\u0085", "\u00a0", "\u2028", "\u2029"}

// escape decodes one backslash escape of a double-quoted scalar.
func (s *scanner) escape(value []byte) []byte {
	at := s.m
	digits := 0
	c := s.at(1)
	switch c {
	case 'x':
		digits = 2
	case 'u':
		digits = 4
	case 'U':
		digits = 8
	default:
		k := strings.IndexByte(escapeLetters, c)
		if c == 0 || k < 0 {
			s.fail(at, "unknown escape sequence in a double-quoted string")
			return value
		}
		value = append(value, escapeValues[k]...)
	}
	s.skip()
	s.skip()
	if digits == 0 {
		return value
	}
	r := 0
	for k := 0; k < digits; k++ {
		d := hexValue(s.at(k))
		if d < 0 {
			s.fail(at, "escape sequence needs "+string(rune('0'+digits))+" hexadecimal digits")
			return value
		}
		r = r<<4 | d
	}
	if r >= 0xD800 && r <= 0xDFFF || r > 0x10FFFF {
		s.fail(at, "escape sequence is not a valid Unicode character")
		return value
	}
	for k := 0; k < digits; k++ {
		s.skip()
	}
	return utf8.AppendRune(value, rune(r))
}

func hexValue(c byte) int {
	if c >= '0' && c <= '9' {
		return int(c - '0')
	}
	if c >= 'a' && c <= 'f' {
		return int(c-'a') + 10
	}
	if c >= 'A' && c <= 'F' {
		return int(c-'A') + 10
	}
	return -1
}

// scanBlockScalar reads a literal (|) or folded (>) block scalar with its
// optional chomping (+, -) and indentation (1-9) indicators.
func (s *scanner) scanBlockScalar(literal bool) {
	start := s.m
	s.skip()
	// A chomping indicator (+ or -) and an indentation indicator (1-9),
	// in either order.
	chomping, increment := 0, 0
	for k := 0; k < 2; k++ {
		c := s.at(0)
		if (c == '+' || c == '-') && chomping == 0 {
			chomping = 1
			if c == '-' {
				chomping = -1
			}
			s.skip()
			continue
		}
		if c >= '0' && c <= '9' && increment == 0 {
			if c == '0' {
				s.fail(s.m, "a block scalar's indentation indicator must be 1 to 9")
				return
			}
			increment = int(c - '0')
			s.skip()
			continue
		}
		break
	}
	s.skipSpaces(true)
	if s.at(0) == '#' {
		s.skipComment()
	}
	if !isBreakOrEnd(s.at(0)) {
		s.fail(s.m, "did not find expected comment or line break after a block scalar indicator")
		return
	}
	if isBreak(s.at(0)) {
		s.skipBreak()
	}
	indent := 0
	if increment > 0 {
		if s.indent >= 0 {
			indent = s.indent + increment
		} else {
			indent = increment
		}
	}
	var value, leadingBreak, trailingBreaks []byte
	indent, trailingBreaks = s.blockScalarBreaks(indent, trailingBreaks, start)
	leadingBlank := false
	for s.err == nil && s.m.col == indent && !s.atEnd() {
		// At the start of a line with content.
		trailingBlank := isBlank(s.at(0))
		if !literal && !leadingBlank && !trailingBlank && len(leadingBreak) > 0 && leadingBreak[0] == '\n' {
			if len(trailingBreaks) == 0 {
				value = append(value, ' ')
			}
		} else {
			value = append(value, leadingBreak...)
		}
		leadingBreak = leadingBreak[:0]
		value = append(value, trailingBreaks...)
		trailingBreaks = trailingBreaks[:0]
		leadingBlank = isBlank(s.at(0))
		value = s.readRun(value, s.runEnd("\r\n"))
		if s.atEnd() {
			break
		}
		leadingBreak = s.readBreak(leadingBreak)
		indent, trailingBreaks = s.blockScalarBreaks(indent, trailingBreaks, start)
	}
	if s.err != nil {
		return
	}
	if chomping != -1 {
		value = append(value, leadingBreak...)
	}
	if chomping == 1 {
		value = append(value, trailingBreaks...)
	}
	style := styleFolded
	if literal {
		style = styleLiteral
	}
	s.appendScalar(start, value, style)
}

// blockScalarBreaks steps over indentation and empty lines of a block
// scalar, collecting the line breaks, and settles the indentation from the
// first line with content when no indicator gave it.
func (s *scanner) blockScalarBreaks(indent int, breaks []byte, start mark) (int, []byte) {
	maxIndent := 0
	for {
		for (indent == 0 || s.m.col < indent) && s.at(0) == ' ' {
			s.m.pos++
			s.m.index++
			s.m.col++
		}
		if s.m.col > maxIndent {
			maxIndent = s.m.col
		}
		if (indent == 0 || s.m.col < indent) && s.at(0) == '\t' {
			s.fail(s.m, "found a tab character where an indentation space is expected in the block scalar that starts at "+position(start))
			return indent, breaks
		}
		if !isBreak(s.at(0)) {
			break
		}
		breaks = s.readBreak(breaks)
	}
	if indent == 0 {
		indent = maxIndent
		if indent < s.indent+1 {
			indent = s.indent + 1
		}
		if indent < 1 {
			indent = 1
		}
	}
	return indent, breaks
}
