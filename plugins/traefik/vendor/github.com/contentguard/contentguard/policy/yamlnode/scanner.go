package yamlnode

import (
	"bytes"
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
