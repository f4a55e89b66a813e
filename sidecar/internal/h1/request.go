package h1

import (
	"bytes"
	"strings"
)

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
