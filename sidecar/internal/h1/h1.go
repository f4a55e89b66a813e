// Package h1 is HTTP/1.1 on buffered connections for the sidecar's fast
// path: it parses the heads of messages (a strict subset of RFC 9112 that
// covers what keep-alive API clients and upstreams actually send), relays
// bodies in each framing, writes heads, and re-arms connection deadlines
// cheaply. It reads and writes what it is given: it serves nothing and
// dials nothing.
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

import "errors"

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
