package yamlnode

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// The scanner turns the characters of a document into tokens, the way
// libyaml (and so go.yaml.in/yaml/v3) does: indentation becomes
// BLOCK-SEQUENCE-START / BLOCK-MAPPING-START / BLOCK-END tokens, and a
// "simple key" (a scalar or flow collection that turns out to be followed by
// ':') gets a KEY token inserted in front of it once the ':' is seen. Keeping
// libyaml's token model is what makes positions, folding and the accepted
// language match the YAML library the rest of the world uses.
//
// Indicators that a policy never needs — anchors, aliases, tags, directives
// and explicit '?' keys — are refused here, at their position.

type tokenKind uint8

const (
	tokStreamEnd tokenKind = iota
	tokDocumentStart
	tokDocumentEnd
	tokBlockSequenceStart
	tokBlockMappingStart
	tokBlockEnd
	tokFlowSequenceStart
	tokFlowSequenceEnd
	tokFlowMappingStart
	tokFlowMappingEnd
	tokBlockEntry
	tokFlowEntry
	tokKey
	tokValue
	tokScalar
)

type scalarStyle uint8

const (
	stylePlain scalarStyle = iota
	styleSingleQuoted
	styleDoubleQuoted
	styleLiteral
	styleFolded
)

// A mark is a position in the document.
type mark struct {
	pos   int // byte offset
	index int // characters from the start of the document
	line  int // 0-based
	col   int // 0-based, in characters
}

type token struct {
	kind       tokenKind
	start, end mark
	value      string // scalars only
	style      scalarStyle
}

// A simpleKey is a token that may turn out to be an implicit mapping key.
// YAML bounds the look-ahead: the ':' must follow on the same line, within
// 1024 characters.
type simpleKey struct {
	possible bool
	required bool // in block context at the indentation column: must be a key
	number   int  // the token's number in the stream
	mark     mark
}

type scanner struct {
	src []byte
	m   mark
	err *Error

	queue   []token // queue[head:] have not been taken by the parser
	head    int
	taken   int  // tokens taken by the parser so far
	lastEnd mark // where the last value taken (a scalar or flow collection) ends
	ended   bool // STREAM-END is queued

	flowLevel        int
	indent           int   // column of the current block collection; -1 at the top
	indents          []int // enclosing block columns
	simpleKeyAllowed bool
	simpleKeys       []simpleKey // one per flow level, the block level first
}

func newScanner(src []byte, start int) *scanner {
	return &scanner{
		src:              src,
		m:                mark{pos: start},
		indent:           -1,
		simpleKeyAllowed: true,
		simpleKeys:       make([]simpleKey, 1, 8),
		queue:            make([]token, 0, 16),
	}
}

// peek returns the next token without taking it: it scans until the head
// of the queue is a token the parser may take, one that is not a possible
// simple key still waiting for its ':'. (A key that can no longer be one is
// given up by fetchNext, which checks for stale keys before it moves on.)
// After an error peek returns STREAM-END, so that the parser unwinds; the
// first error is the one kept.
func (s *scanner) peek() token {
	for s.err == nil && !s.ended {
		need := s.head == len(s.queue)
		for i := 0; i < len(s.simpleKeys) && !need; i++ {
			need = s.simpleKeys[i].possible && s.simpleKeys[i].number == s.taken
		}
		if !need {
			break
		}
		s.fetchNext()
	}
	if s.err != nil || s.head == len(s.queue) {
		return token{kind: tokStreamEnd, start: s.m, end: s.m}
	}
	return s.queue[s.head]
}

// take drops the token that peek returned.
func (s *scanner) take() {
	if s.err != nil || s.head == len(s.queue) {
		return
	}
	if k := s.queue[s.head].kind; k == tokScalar || k == tokFlowSequenceEnd || k == tokFlowMappingEnd {
		s.lastEnd = s.queue[s.head].end
	}
	s.head++
	s.taken++
	if s.head == len(s.queue) {
		s.queue = s.queue[:0]
		s.head = 0
	}
}

func (s *scanner) fail(at mark, msg string) {
	if s.err == nil {
		s.err = &Error{Line: at.line + 1, Column: at.col + 1, Message: msg}
	}
}

// --- characters ---

// at returns the byte k bytes ahead, or 0 past the end (NUL is refused in
// the input, so 0 means the end).
func (s *scanner) at(k int) byte {
	if s.m.pos+k < len(s.src) {
		return s.src[s.m.pos+k]
	}
	return 0
}

func isBlank(b byte) bool      { return b == ' ' || b == '\t' }
func isBreak(b byte) bool      { return b == '\n' || b == '\r' }
func isBlankOrEnd(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == 0 }
func isBreakOrEnd(b byte) bool { return b == '\n' || b == '\r' || b == 0 }

func (s *scanner) atEnd() bool { return s.m.pos >= len(s.src) }

// width is the length of the UTF-8 sequence that starts with b; the input
// is validated before scanning.
func width(b byte) int {
	if b < 0x80 {
		return 1
	}
	if b < 0xE0 {
		return 2
	}
	if b < 0xF0 {
		return 3
	}
	return 4
}

// skip steps over one character that is not a line break.
func (s *scanner) skip() {
	if b := s.src[s.m.pos]; b < 0x80 {
		s.m.pos++
	} else {
		s.m.pos += width(b)
	}
	s.m.index++
	s.m.col++
}

// skipBreak steps over a line break: LF, CR LF or CR.
func (s *scanner) skipBreak() {
	if s.at(0) == '\r' && s.at(1) == '\n' {
		s.m.pos += 2
		s.m.index += 2
	} else {
		s.m.pos++
		s.m.index++
	}
	s.m.line++
	s.m.col = 0
}

// readBreak appends a line break, normalised to LF, and steps over it.
func (s *scanner) readBreak(buf []byte) []byte {
	s.skipBreak()
	return append(buf, '\n')
}

// runEnd returns where the run of characters that starts at the current
// position ends: at the first byte of stops, or at the end of the input.
//
// The scanner moves over text in runs found by compiled standard-library
// calls rather than a character at a time: under Yaegi every call of an
// interpreted function costs microseconds, and a policy has thousands of
// characters.
func (s *scanner) runEnd(stops string) int {
	k := bytes.IndexAny(s.src[s.m.pos:], stops)
	if k < 0 {
		return len(s.src)
	}
	return s.m.pos + k
}

// advance steps over src[pos:end], which holds no line break.
func (s *scanner) advance(end int) {
	n := utf8.RuneCount(s.src[s.m.pos:end])
	s.m.pos = end
	s.m.index += n
	s.m.col += n
}

// readRun appends src[pos:end], which holds no line break, to buf and
// steps over it.
func (s *scanner) readRun(buf []byte, end int) []byte {
	buf = append(buf, s.src[s.m.pos:end]...)
	s.advance(end)
	return buf
}

// skipSpaces steps over spaces, and over tabs too when tabs is set.
func (s *scanner) skipSpaces(tabs bool) {
	src, i := s.src, s.m.pos
	for i < len(src) && (src[i] == ' ' || tabs && src[i] == '\t') {
		i++
	}
	s.m.index += i - s.m.pos
	s.m.col += i - s.m.pos
	s.m.pos = i
}

// skipComment steps over a comment, to the end of its line.
func (s *scanner) skipComment() {
	s.advance(s.runEnd("\r\n"))
}

// atDocumentIndicator reports a "---" or "..." at the start of a line.
func (s *scanner) atDocumentIndicator() bool {
	if s.m.col != 0 || !isBlankOrEnd(s.at(3)) {
		return false
	}
	c := s.at(0)
	return (c == '-' || c == '.') && s.at(1) == c && s.at(2) == c
}

// --- the token queue ---

func (s *scanner) number() int { return s.taken + len(s.queue) - s.head }

func (s *scanner) append(kind tokenKind, start, end mark) {
	s.queue = append(s.queue, token{kind: kind, start: start, end: end})
}

// indicator queues the one-character token at the current position.
func (s *scanner) indicator(kind tokenKind) {
	start := s.m
	s.skip()
	s.append(kind, start, s.m)
}

// insert puts t in front of the token numbered n.
func (s *scanner) insert(n int, t token) {
	i := s.head + n - s.taken
	s.queue = append(s.queue, token{})
	copy(s.queue[i+1:], s.queue[i:])
	s.queue[i] = t
}

// --- simple keys ---

func (s *scanner) staleSimpleKeys() {
	for i := 0; i < len(s.simpleKeys); i++ {
		if s.simpleKeys[i].possible {
			s.expire(&s.simpleKeys[i])
		}
	}
}

// expire gives up a possible simple key that the scanner has left behind:
// it is on an earlier line, or more than 1024 characters back. A key that
// was required is an error.
func (s *scanner) expire(k *simpleKey) {
	if k.possible && (k.mark.line < s.m.line || k.mark.index+1024 < s.m.index) {
		if k.required {
			s.fail(k.mark, "could not find expected ':' after this key")
		}
		k.possible = false
	}
}

func (s *scanner) saveSimpleKey() {
	if !s.simpleKeyAllowed {
		return
	}
	required := s.flowLevel == 0 && s.indent == s.m.col
	s.removeSimpleKey()
	s.simpleKeys[len(s.simpleKeys)-1] = simpleKey{possible: true, required: required, number: s.number(), mark: s.m}
}

func (s *scanner) removeSimpleKey() {
	k := &s.simpleKeys[len(s.simpleKeys)-1]
	if k.possible && k.required {
		s.fail(k.mark, "could not find expected ':' after this key")
		return
	}
	k.possible = false
}

// --- indentation ---

// rollIndent opens a block collection at column col when it is deeper than
// the current one, inserting kind in front of token number n (or at the
// end when n < 0).
func (s *scanner) rollIndent(col, n int, kind tokenKind, at mark) {
	if s.flowLevel > 0 || s.indent >= col {
		return
	}
	if len(s.indents) >= MaxDepth {
		s.fail(at, errTooDeep)
		return
	}
	s.indents = append(s.indents, s.indent)
	s.indent = col
	t := token{kind: kind, start: at, end: at}
	if n < 0 {
		s.queue = append(s.queue, t)
	} else {
		s.insert(n, t)
	}
}

// unrollIndent closes every block collection deeper than col.
func (s *scanner) unrollIndent(col int) {
	if s.flowLevel > 0 {
		return
	}
	for s.indent > col {
		s.append(tokBlockEnd, s.m, s.m)
		s.indent = s.indents[len(s.indents)-1]
		s.indents = s.indents[:len(s.indents)-1]
	}
}

// --- tokens ---

func (s *scanner) fetchNext() {
	s.staleSimpleKeys()
	s.skipToToken()
	if s.err != nil {
		return
	}
	if s.indent > s.m.col {
		s.unrollIndent(s.m.col)
	}
	if s.m.pos >= len(s.src) {
		s.fetchStreamEnd()
		return
	}
	c := s.src[s.m.pos]
	if s.m.col == 0 && c == '%' {
		s.fail(s.m, "YAML directives (%YAML, %TAG) are not allowed in a policy")
		return
	}
	if s.m.col == 0 && s.atDocumentIndicator() {
		if c == '-' {
			s.fetchDocumentIndicator(tokDocumentStart)
		} else {
			s.fetchDocumentIndicator(tokDocumentEnd)
		}
		return
	}
	next := s.at(1)
	switch c {
	case '[':
		s.fetchFlowCollectionStart(tokFlowSequenceStart)
		return
	case '{':
		s.fetchFlowCollectionStart(tokFlowMappingStart)
		return
	case ']':
		s.fetchFlowCollectionEnd(tokFlowSequenceEnd)
		return
	case '}':
		s.fetchFlowCollectionEnd(tokFlowMappingEnd)
		return
	case ',':
		s.fetchFlowEntry()
		return
	case '*', '&':
		s.fail(s.m, "YAML anchors and aliases are not allowed in a policy")
		return
	case '!':
		s.fail(s.m, "YAML tags are not allowed in a policy; quote a value to make it a string")
		return
	case '\'':
		s.fetchQuotedScalar(true)
		return
	case '"':
		s.fetchQuotedScalar(false)
		return
	}
	if c == '-' && isBlankOrEnd(next) {
		s.fetchBlockEntry()
		return
	}
	if c == '?' && (s.flowLevel > 0 || isBlankOrEnd(next)) {
		s.fail(s.m, "explicit mapping keys ('? ') are not allowed in a policy; write key: value")
		return
	}
	if c == ':' && (s.flowLevel > 0 || isBlankOrEnd(next)) {
		s.fetchValue()
		return
	}
	if (c == '|' || c == '>') && s.flowLevel == 0 {
		s.fetchBlockScalar(c == '|')
		return
	}
	if s.canStartPlain(c, next) {
		s.fetchPlainScalar()
		return
	}
	if c == '\t' {
		s.fail(s.m, "found a tab character where a space is expected; indent YAML with spaces")
		return
	}
	s.fail(s.m, "found character "+quoteChar(c)+" that cannot start any token; quote the value")
}

// canStartPlain is libyaml's rule for the first character of a plain
// scalar: no indicator, except '-', '?' and ':' followed by a non-space
// ('?' and ':' only in block context).
func (s *scanner) canStartPlain(c, next byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', 0,
		',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`':
		return false
	case '-':
		return !isBlank(next)
	case '?', ':':
		return s.flowLevel == 0 && !isBlankOrEnd(next)
	}
	return true
}

func quoteChar(c byte) string {
	if c == '\'' {
		return `"'"`
	}
	return "'" + string(rune(c)) + "'"
}

// skipToToken steps over spaces, comments and line breaks. Tabs separate
// tokens within a line, but never indent: where a simple key may start (at
// the start of a line, after "- ") a tab is left for fetchNext to refuse.
func (s *scanner) skipToToken() {
	for {
		s.skipSpaces(s.flowLevel > 0 || !s.simpleKeyAllowed)
		if s.m.pos == len(s.src) {
			return
		}
		if s.src[s.m.pos] == '#' {
			s.skipComment()
		}
		if c := s.at(0); c != '\n' && c != '\r' {
			return
		}
		s.skipBreak()
		if s.flowLevel == 0 {
			s.simpleKeyAllowed = true
		}
	}
}

func (s *scanner) fetchStreamEnd() {
	// The end of the stream is at the start of a line.
	if s.m.col != 0 {
		s.m.col = 0
		s.m.line++
	}
	s.unrollIndent(-1)
	s.removeSimpleKey()
	s.simpleKeyAllowed = false
	s.append(tokStreamEnd, s.m, s.m)
	s.ended = true
}

func (s *scanner) fetchDocumentIndicator(kind tokenKind) {
	s.unrollIndent(-1)
	s.removeSimpleKey()
	s.simpleKeyAllowed = false
	start := s.m
	s.skip()
	s.skip()
	s.skip()
	s.append(kind, start, s.m)
}

func (s *scanner) fetchFlowCollectionStart(kind tokenKind) {
	s.saveSimpleKey()
	if s.flowLevel >= MaxDepth {
		s.fail(s.m, errTooDeep)
		return
	}
	s.simpleKeys = append(s.simpleKeys, simpleKey{})
	s.flowLevel++
	s.simpleKeyAllowed = true
	s.indicator(kind)
}

func (s *scanner) fetchFlowCollectionEnd(kind tokenKind) {
	s.removeSimpleKey()
	if s.flowLevel > 0 {
		s.flowLevel--
		s.simpleKeys = s.simpleKeys[:len(s.simpleKeys)-1]
	}
	s.simpleKeyAllowed = false
	s.indicator(kind)
}

func (s *scanner) fetchFlowEntry() {
	s.removeSimpleKey()
	s.simpleKeyAllowed = true
	s.indicator(tokFlowEntry)
}

func (s *scanner) fetchBlockEntry() {
	if s.flowLevel == 0 {
		if !s.simpleKeyAllowed {
			s.fail(s.m, "block sequence entries are not allowed in this context")
			return
		}
		s.rollIndent(s.m.col, -1, tokBlockSequenceStart, s.m)
	}
	// In flow context a '-' entry is an error the parser reports with
	// its context ("did not find expected node content").
	s.removeSimpleKey()
	s.simpleKeyAllowed = true
	s.indicator(tokBlockEntry)
}

func (s *scanner) fetchValue() {
	k := &s.simpleKeys[len(s.simpleKeys)-1]
	s.expire(k)
	if s.err != nil {
		return
	}
	if k.possible {
		// The simple key was a key after all: put KEY (and, for a new
		// block mapping, BLOCK-MAPPING-START) in front of it.
		s.insert(k.number, token{kind: tokKey, start: k.mark, end: k.mark})
		s.rollIndent(k.mark.col, k.number, tokBlockMappingStart, k.mark)
		k.possible = false
		s.simpleKeyAllowed = false
	} else {
		// A ':' without a key in front of it.
		if s.flowLevel == 0 {
			if !s.simpleKeyAllowed {
				s.fail(s.m, "mapping values are not allowed in this context")
				return
			}
			s.rollIndent(s.m.col, -1, tokBlockMappingStart, s.m)
		}
		s.simpleKeyAllowed = s.flowLevel == 0
	}
	s.indicator(tokValue)
}

// --- scalars ---

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
	return appendRune(value, r)
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

// appendRune encodes r as UTF-8 (unicode/utf8 would do, but this keeps
// the reader's arithmetic in one place with the escape decoding).
func appendRune(b []byte, r int) []byte {
	if r <= 0x7F {
		return append(b, byte(r))
	}
	if r <= 0x7FF {
		return append(b, byte(0xC0|r>>6), byte(0x80|r&0x3F))
	}
	if r <= 0xFFFF {
		return append(b, byte(0xE0|r>>12), byte(0x80|r>>6&0x3F), byte(0x80|r&0x3F))
	}
	return append(b, byte(0xF0|r>>18), byte(0x80|r>>12&0x3F), byte(0x80|r>>6&0x3F), byte(0x80|r&0x3F))
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
