// Package h1 parses the heads of HTTP/1.1 messages for the sidecar's fast
// path: a strict subset of RFC 9112 that covers what keep-alive API clients
// and upstreams actually send.
//
// The subset is chosen so that accepting a message never needs judgement.
// A request is accepted only in origin form (with well-formed escapes in
// the path), as HTTP/1.1, with a method other than CONNECT, CRLF line ends,
// token header names, values of visible ASCII, one non-empty Host made of
// the bytes net/http allows there, at most one Content-Length of 1 to 18
// digits without a leading zero, and none of Transfer-Encoding, Upgrade,
// Expect or a Connection option other than close and keep-alive. Anything
// else is ErrUnsupported: the caller hands the connection, unread, to
// net/http, which accepts or rejects it by its own (well-tested) rules. So
// this parser can be stricter than the RFC but never looser — there is no
// request it reads differently from net/http, and no way to smuggle a
// second request past it (no chunked requests, no duplicate or odd
// Content-Length). h1_test.go holds that claim against net/http itself.
//
// Responses come from the configured upstream and are parsed as strictly,
// except that what an upstream may legitimately send (chunked bodies,
// bodies delimited by close, HTTP/1.0) is described in Response, and a
// malformed head is an error the proxy answers with 502.
//
// Parsing works on a string holding exactly one head (up to and including
// the empty line); field names and values are substrings of it, so a parse
// allocates nothing.
package h1

import (
	"bytes"
	"errors"
	"strings"
)

var (
	// ErrUnsupported: the request is outside the subset (it may still be
	// valid HTTP; net/http decides).
	ErrUnsupported = errors.New("h1: request outside the fast-path subset")
	// ErrMalformed: the response head is not valid HTTP/1.1.
	ErrMalformed = errors.New("h1: malformed response head")
	// ErrTooManyFields: more fields than a Request or Response holds.
	ErrTooManyFields = errors.New("h1: too many header fields")
)

// MaxFields bounds the fields of one head. A request with more is left to
// net/http; a response with more is refused.
const MaxFields = 64

// MaxResponseFields bounds the fields of a response head: upstreams send
// more than clients do (a Set-Cookie each), and net/http's client takes any
// number within its byte limit; a response with more is refused (502).
const MaxResponseFields = 256

// Field is one header field line. Value has its surrounding whitespace
// removed.
type Field struct {
	Name, Value string
}

// Request is a parsed request head.
type Request struct {
	Method string
	// Target is the origin-form request target: the escaped path and, after
	// '?', the query.
	Target string
	// Host is the value of the Host field (required, exactly one).
	Host string
	// ContentLength is the declared body size; 0 without a Content-Length.
	ContentLength int64
	// Close is set by "Connection: close": answer, then close.
	Close bool
	// Fields are the header fields in order, Host and Content-Length
	// included.
	Fields []Field
}

// Path is the target without its query.
func (r *Request) Path() string {
	if i := strings.IndexByte(r.Target, '?'); i >= 0 {
		return r.Target[:i]
	}
	return r.Target
}

// RawQuery is the target's query without '?'.
func (r *Request) RawQuery() string {
	if i := strings.IndexByte(r.Target, '?'); i >= 0 {
		return r.Target[i+1:]
	}
	return ""
}

// HeadEnd returns the length of the head at the start of b, up to and
// including the CRLF CRLF that ends it, or -1 when b does not hold a whole
// head yet. A line that does not end in CRLF, or an empty first line, is
// ErrUnsupported as soon as it is seen, so that a caller waiting for more
// bytes never waits for a head this package would refuse anyway.
func HeadEnd(b []byte) (int, error) {
	for i := 0; ; i++ {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1, nil
		}
		i += j
		if i < 1 || b[i-1] != '\r' || i == 1 {
			return 0, ErrUnsupported
		}
		if i >= 3 && b[i-2] == '\n' {
			return i + 1, nil
		}
	}
}

// ParseRequest parses head, one whole request head, into r (reusing its
// Fields). It returns ErrUnsupported for anything outside the subset.
func ParseRequest(head string, r *Request) error {
	*r = Request{Fields: r.Fields[:0]}
	line, rest, ok := cutLine(head)
	if !ok {
		return ErrUnsupported
	}
	method, line, ok := strings.Cut(line, " ")
	// CONNECT in origin form is net/rpc's dialect; a 2xx answer to it
	// turns the connection into a tunnel, which the fast path is not.
	if !ok || !isToken(method) || method == "CONNECT" {
		return ErrUnsupported
	}
	target, version, ok := strings.Cut(line, " ")
	if !ok || version != "HTTP/1.1" || !isOriginForm(target) {
		return ErrUnsupported
	}
	r.Method, r.Target = method, target
	hosts, lengths := 0, 0
	for {
		if line, rest, ok = cutLine(rest); !ok {
			return ErrUnsupported
		}
		if line == "" {
			break
		}
		f, ok := parseField(line, classValue)
		if !ok || len(r.Fields) == MaxFields {
			return ErrUnsupported
		}
		r.Fields = append(r.Fields, f)
		switch {
		case equalFold(f.Name, "host"):
			// net/http's server answers 400 to a Host with a byte outside
			// its (lenient) host grammar.
			if !isHost(f.Value) {
				return ErrUnsupported
			}
			hosts++
			r.Host = f.Value
		case equalFold(f.Name, "content-length"):
			lengths++
			// The field is forwarded as sent: a leading zero, which
			// net/http accepts, is left to it in case the upstream reads
			// "010" some other way.
			n, ok := parseLength(f.Value)
			if !ok || len(f.Value) > 1 && f.Value[0] == '0' {
				return ErrUnsupported
			}
			r.ContentLength = n
		case equalFold(f.Name, "connection"):
			close, ok := connectionOptions(f.Value)
			if !ok {
				return ErrUnsupported
			}
			r.Close = r.Close || close
		case equalFold(f.Name, "transfer-encoding"), equalFold(f.Name, "upgrade"),
			equalFold(f.Name, "expect"), equalFold(f.Name, "http2-settings"):
			return ErrUnsupported
		}
	}
	if rest != "" || hosts != 1 || lengths > 1 || r.Host == "" {
		return ErrUnsupported
	}
	return nil
}

// Response is a parsed response head.
type Response struct {
	Status int
	// Reason is the reason phrase, possibly empty.
	Reason string
	// HTTP11 is false for an HTTP/1.0 response.
	HTTP11 bool
	// Chunked: the body is in chunked transfer coding.
	Chunked bool
	// ContentLength is the declared body size, -1 when there is none.
	ContentLength int64
	// Close: the upstream closes the connection after this response.
	Close bool
	// Fields are the header fields in order.
	Fields []Field
	// Hop lists the indexes of Fields that are hop-by-hop (Connection,
	// Keep-Alive, Transfer-Encoding, the options Connection names, ...):
	// a proxy does not forward them.
	Hop []int
}

// ParseResponse parses head, one whole response head, into r (reusing its
// slices). It returns ErrMalformed or ErrTooManyFields for heads a proxy
// must not forward.
func ParseResponse(head string, r *Response) error {
	*r = Response{Fields: r.Fields[:0], Hop: r.Hop[:0], ContentLength: -1}
	line, rest, ok := cutLine(head)
	if !ok || len(line) < len("HTTP/1.1 200") {
		return ErrMalformed
	}
	switch line[:len("HTTP/1.1")] {
	case "HTTP/1.1":
		r.HTTP11 = true
	case "HTTP/1.0":
	default:
		return ErrMalformed
	}
	code := line[len("HTTP/1.1"):]
	if code[0] != ' ' || len(code) > 4 && code[4] != ' ' {
		return ErrMalformed
	}
	for i := 1; i <= 3; i++ {
		if code[i] < '0' || code[i] > '9' {
			return ErrMalformed
		}
	}
	r.Status = int(code[1]-'0')*100 + int(code[2]-'0')*10 + int(code[3]-'0')
	if r.Status < 100 {
		return ErrMalformed
	}
	if len(code) > 4 {
		r.Reason = code[5:]
		for i := 0; i < len(r.Reason); i++ {
			if class[r.Reason[i]]&classObsValue == 0 {
				return ErrMalformed
			}
		}
	}
	keepAlive := false
	length := ""             // the first Content-Length value
	badTrailer := false      // Trailer names a framing field
	connectionNames := false // Connection names other fields
	for {
		if line, rest, ok = cutLine(rest); !ok {
			return ErrMalformed
		}
		if line == "" {
			break
		}
		f, ok := parseField(line, classObsValue)
		if !ok {
			return ErrMalformed
		}
		if len(r.Fields) == MaxResponseFields {
			return ErrTooManyFields
		}
		i := len(r.Fields)
		r.Fields = append(r.Fields, f)
		switch {
		case equalFold(f.Name, "content-length"):
			// Repeats must be the same text: net/http refuses "5" and
			// "05" together, and so does this parser.
			n, ok := parseLength(f.Value)
			if !ok || r.ContentLength >= 0 && f.Value != length {
				return ErrMalformed
			}
			r.ContentLength, length = n, f.Value
		case equalFold(f.Name, "transfer-encoding"):
			// Only "chunked" is a framing a proxy can relay; anything
			// else (gzip, chunked) is not HTTP/1.1 a client can trust.
			// In HTTP/1.0 the field does not exist (RFC 9112 §6.1: the
			// framing is faulty), and net/http ignores it there, so the
			// two would read different bodies.
			if r.Chunked || !r.HTTP11 || !equalFold(f.Value, "chunked") {
				return ErrMalformed
			}
			r.Chunked = true
			r.addHop(i)
		case equalFold(f.Name, "trailer"):
			badTrailer = badTrailer || namesFraming(f.Value)
		case equalFold(f.Name, "connection"):
			r.addHop(i)
			for v := f.Value; v != ""; {
				var opt string
				switch opt, v = nextElement(v); {
				case opt == "":
				case equalFold(opt, "close"):
					r.Close = true
				case equalFold(opt, "keep-alive"):
					keepAlive = true
				case !isToken(opt):
					return ErrMalformed
				default:
					connectionNames = true
				}
			}
		case isHopByHop(f.Name):
			r.addHop(i)
		}
	}
	if rest != "" {
		return ErrMalformed
	}
	if r.Chunked {
		// Trailer fields cannot reframe the message (RFC 9110 §6.5.1);
		// net/http refuses a chunked message that announces them.
		if badTrailer {
			return ErrMalformed
		}
		// RFC 9112 §6.3: Transfer-Encoding overrides Content-Length, which
		// is then not forwarded either. Such a message "ought to be
		// handled as an error": the connection is not reused after it.
		for i, f := range r.Fields {
			if equalFold(f.Name, "content-length") {
				r.addHop(i)
				r.Close = true
			}
		}
		r.ContentLength = -1
	}
	if !r.HTTP11 && !keepAlive {
		r.Close = true
	}
	if !r.Chunked && r.ContentLength < 0 && r.Status >= 200 && r.Status != 204 && r.Status != 304 {
		// The body, if the request was not HEAD, ends when the upstream
		// closes the connection.
		r.Close = true
	}
	if connectionNames {
		// A second pass instead of remembering the options keeps the
		// parse free of allocation.
		for _, f := range r.Fields {
			if !equalFold(f.Name, "connection") {
				continue
			}
			for v := f.Value; v != ""; {
				var opt string
				if opt, v = nextElement(v); opt == "" {
					continue
				}
				for i := range r.Fields {
					if EqualFold(r.Fields[i].Name, opt) {
						r.addHop(i)
					}
				}
			}
		}
	}
	return nil
}

// addHop marks field i hop-by-hop, once: Hop never outgrows Fields.
func (r *Response) addHop(i int) {
	if !r.IsHop(i) {
		r.Hop = append(r.Hop, i)
	}
}

// namesFraming reports whether a Trailer value lists Content-Length,
// Transfer-Encoding or Trailer.
func namesFraming(v string) bool {
	for v != "" {
		var name string
		name, v = nextElement(v)
		if equalFold(name, "content-length") || equalFold(name, "transfer-encoding") || equalFold(name, "trailer") {
			return true
		}
	}
	return false
}

// IsHop reports whether field i of r is hop-by-hop.
func (r *Response) IsHop(i int) bool {
	for _, h := range r.Hop {
		if h == i {
			return true
		}
	}
	return false
}

// Bodyless reports whether a response to method with r's status has no
// body whatever its fields say (RFC 9112 §6.3).
func (r *Response) Bodyless(method string) bool {
	return method == "HEAD" || r.Status < 200 || r.Status == 204 || r.Status == 304 ||
		method == "CONNECT" && r.Status < 300
}

// isHopByHop reports the fields RFC 9110 §7.6.1 and common practice treat
// as hop-by-hop, besides Connection and Transfer-Encoding.
func isHopByHop(name string) bool {
	switch len(name) {
	case 2:
		return equalFold(name, "te")
	case 7:
		return equalFold(name, "upgrade")
	case 10:
		return equalFold(name, "keep-alive")
	case 16:
		return equalFold(name, "proxy-connection")
	case 18:
		return equalFold(name, "proxy-authenticate")
	case 19:
		return equalFold(name, "proxy-authorization")
	}
	return false
}

// IsRequestHopByHop reports whether a request field is not forwarded
// upstream: the hop-by-hop fields and the framing the proxy writes itself.
func IsRequestHopByHop(name string) bool {
	return isHopByHop(name) || equalFold(name, "connection") || equalFold(name, "transfer-encoding") ||
		equalFold(name, "trailer")
}

// cutLine splits s at its first CRLF. A bare CR or LF before it fails.
func cutLine(s string) (line, rest string, ok bool) {
	i := strings.IndexByte(s, '\n')
	if i < 1 || s[i-1] != '\r' {
		return "", "", false
	}
	line = s[:i-1]
	if strings.IndexByte(line, '\r') >= 0 {
		return "", "", false
	}
	return line, s[i+1:], true
}

// parseField splits a field line: a token name, ':', optional whitespace,
// a value of visible ASCII, spaces and tabs, optional whitespace. Obsolete
// line folding never reaches here: a line starting with whitespace has an
// empty name.
//
// values is the class every byte of the value must be in: classValue for
// requests (anything else goes to net/http), classObsValue for responses,
// whose values may carry obs-text (a raw UTF-8 file name, say) as net/http's
// client and RFC 9110 §5.5 allow; it never affects framing.
func parseField(line string, values uint8) (Field, bool) {
	name, value, ok := strings.Cut(line, ":")
	if !ok || !isToken(name) {
		return Field{}, false
	}
	value = trimOWS(value)
	for i := 0; i < len(value); i++ {
		if class[value[i]]&values == 0 {
			return Field{}, false
		}
	}
	return Field{Name: name, Value: value}, true
}

// parseLength parses a Content-Length value: 1 to 18 digits (so it fits an
// int64 with no overflow check).
func parseLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// connectionOptions accepts a request's Connection value made only of
// "close" and "keep-alive" (any case); others name hop-by-hop fields the
// fast path does not track.
func connectionOptions(v string) (close, ok bool) {
	for v != "" {
		var opt string
		switch opt, v = nextElement(v); {
		case opt == "":
		case equalFold(opt, "close"):
			close = true
		case equalFold(opt, "keep-alive"):
		default:
			return false, false
		}
	}
	return close, true
}

// nextElement splits the first element, without its surrounding
// whitespace, off a comma-separated field value (RFC 9110 §5.6.1).
func nextElement(v string) (elem, rest string) {
	elem, rest, _ = strings.Cut(v, ",")
	return trimOWS(elem), rest
}

func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// equalFold is ASCII case-insensitive equality against lower, which must be
// lower case.
func equalFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// EqualFold reports whether a and b are equal under ASCII case folding.
func EqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// Character classes, one table lookup a byte.
const (
	classToken    = 1 << iota // RFC 9110 tchar
	classValue                // field-vchar minus obs-text, SP, HTAB
	classTarget               // what this parser accepts in an origin-form target
	classHost                 // what net/http's server accepts in Host
	classObsValue             // classValue plus obs-text (0x80-0xFF): responses only
)

var class = func() (t [256]uint8) {
	for c := 0x21; c < 0x7f; c++ {
		t[c] |= classValue | classTarget
	}
	t[' '] |= classValue
	t['\t'] |= classValue
	for c := 0; c < 256; c++ {
		if t[c]&classValue != 0 || c >= 0x80 {
			t[c] |= classObsValue
		}
	}
	t['#'] &^= classTarget // a fragment never belongs in a request
	for _, c := range "!$%&'()*+,-.:;=[]_~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" {
		t[c] |= classHost
	}
	for _, c := range "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" {
		t[c] |= classToken
	}
	return t
}()

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if class[s[i]]&classToken == 0 {
			return false
		}
	}
	return true
}

func isHost(s string) bool {
	for i := 0; i < len(s); i++ {
		if class[s[i]]&classHost == 0 {
			return false
		}
	}
	return true
}

// isOriginForm accepts "/" followed by target bytes, where every '%' in
// the path (before '?') starts a valid escape: net/url refuses "/%zz" and
// net/http answers 400, while the query is never decoded by net/http.
func isOriginForm(s string) bool {
	if s == "" || s[0] != '/' {
		return false
	}
	query := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if class[c]&classTarget == 0 {
			return false
		}
		switch {
		case c == '?':
			query = true
		case c == '%' && !query:
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
