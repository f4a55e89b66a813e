package h1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/textproto"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// head joins lines into one message head: each line ends in CRLF and an
// empty line closes the head.
func head(lines ...string) string {
	return strings.Join(lines, "\r\n") + "\r\n\r\n"
}

// fields builds n distinct "X-Fn: v" lines.
func fields(n int) []string {
	lines := make([]string, n)
	for i := range lines {
		lines[i] = "X-F" + strconv.Itoa(i) + ": v"
	}
	return lines
}

func TestParseRequestAccepts(t *testing.T) {
	many := append([]string{"GET / HTTP/1.1", "Host: a"}, fields(MaxFields-1)...)
	manyFields := []Field{{"Host", "a"}}
	for i := 0; i < MaxFields-1; i++ {
		manyFields = append(manyFields, Field{"X-F" + strconv.Itoa(i), "v"})
	}
	tests := []struct {
		name string
		head string
		want Request
	}{
		{
			name: "minimal",
			head: head("GET / HTTP/1.1", "Host: a"),
			want: Request{Method: "GET", Target: "/", Host: "a", Fields: []Field{{"Host", "a"}}},
		},
		{
			name: "query, length, close, whitespace around values",
			head: head("POST /p/q?x=1&y HTTP/1.1", "host:\t example.com:8080 \t", "Content-Length: 5",
				"Connection: keep-alive, CLOSE", "X-Empty:", "X-Inner: a  b\tc"),
			want: Request{Method: "POST", Target: "/p/q?x=1&y", Host: "example.com:8080", ContentLength: 5, Close: true,
				Fields: []Field{{"host", "example.com:8080"}, {"Content-Length", "5"},
					{"Connection", "keep-alive, CLOSE"}, {"X-Empty", ""}, {"X-Inner", "a  b\tc"}}},
		},
		{
			name: "keep-alive and empty list elements do not close",
			head: head("GET /x HTTP/1.1", "Host: a", "Connection: , keep-alive ,,"),
			want: Request{Method: "GET", Target: "/x", Host: "a",
				Fields: []Field{{"Host", "a"}, {"Connection", ", keep-alive ,,"}}},
		},
		{
			name: "close among empty elements",
			head: head("GET /x HTTP/1.1", "Host: a", "Connection: ,close,"),
			want: Request{Method: "GET", Target: "/x", Host: "a", Close: true,
				Fields: []Field{{"Host", "a"}, {"Connection", ",close,"}}},
		},
		{
			name: "18-digit length, extension method, duplicate ordinary fields",
			head: head("M-SEARCH /a//b/./c?q=%zz HTTP/1.1", "Content-Length: 999999999999999999", "X-A: 1",
				"HOST: h", "x-a: 2"),
			want: Request{Method: "M-SEARCH", Target: "/a//b/./c?q=%zz", Host: "h", ContentLength: 999999999999999999,
				Fields: []Field{{"Content-Length", "999999999999999999"}, {"X-A", "1"}, {"HOST", "h"}, {"x-a", "2"}}},
		},
		{
			name: "escaped path, sub-delims, IPv6 host",
			head: head("DELETE /a%2Fb%20c;p=1!$&'()*+,=:@~ HTTP/1.1", "Host: [::1]:80", "Content-Length: 0"),
			want: Request{Method: "DELETE", Target: "/a%2Fb%20c;p=1!$&'()*+,=:@~", Host: "[::1]:80",
				Fields: []Field{{"Host", "[::1]:80"}, {"Content-Length", "0"}}},
		},
		{
			name: "MaxFields fields",
			head: head(many...),
			want: Request{Method: "GET", Target: "/", Host: "a", Fields: manyFields},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Request
			if err := ParseRequest(tt.head, &r); err != nil {
				t.Fatalf("ParseRequest(%q) = %v", tt.head, err)
			}
			if !reflect.DeepEqual(r, tt.want) {
				t.Errorf("ParseRequest(%q)\n got %+v\nwant %+v", tt.head, r, tt.want)
			}
			if n, err := HeadEnd([]byte(tt.head + "body")); n != len(tt.head) || err != nil {
				t.Errorf("HeadEnd = %d, %v; want %d", n, err, len(tt.head))
			}
		})
	}
}

func TestRequestPathAndQuery(t *testing.T) {
	tests := []struct{ target, path, query string }{
		{"/", "/", ""},
		{"/a/b", "/a/b", ""},
		{"/a?", "/a", ""},
		{"/a?b=1&c", "/a", "b=1&c"},
		{"/a?b?c", "/a", "b?c"},
		{"/?", "/", ""},
	}
	for _, tt := range tests {
		r := Request{Target: tt.target}
		if p, q := r.Path(), r.RawQuery(); p != tt.path || q != tt.query {
			t.Errorf("%q: Path, RawQuery = %q, %q; want %q, %q", tt.target, p, q, tt.path, tt.query)
		}
	}
}

// rejectedRequests are heads ParseRequest must leave to net/http: the
// classic smuggling vectors and everything else outside the subset.
var rejectedRequests = []struct{ name, head string }{
	// Body framing.
	{"CL and TE", head("POST / HTTP/1.1", "Host: a", "Content-Length: 5", "Transfer-Encoding: chunked")},
	{"TE and CL", head("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Content-Length: 5")},
	{"TE chunked", head("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked")},
	{"TE list", head("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked, identity")},
	{"TE leading space", head("POST / HTTP/1.1", "Host: a", "Transfer-Encoding:  chunked")},
	{"TE upper case name", head("POST / HTTP/1.1", "Host: a", "TRANSFER-ENCODING: chunked")},
	{"TE identity", head("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: identity")},
	{"TE empty", head("POST / HTTP/1.1", "Host: a", "Transfer-Encoding:")},
	{"TE space before colon", head("POST / HTTP/1.1", "Host: a", "Transfer-Encoding : chunked")},
	{"TE vertical tab", head("POST / HTTP/1.1", "Host: a", "Transfer-Encoding:\vchunked")},
	{"TE folded", head("POST / HTTP/1.1", "Host: a", "Transfer-Encoding:", " chunked")},
	{"CL list", head("POST / HTTP/1.1", "Host: a", "Content-Length: 5, 5")},
	{"CL twice, equal", head("POST / HTTP/1.1", "Host: a", "Content-Length: 5", "Content-Length: 5")},
	{"CL twice, different", head("POST / HTTP/1.1", "Host: a", "Content-Length: 5", "content-length: 6")},
	{"CL plus sign", head("POST / HTTP/1.1", "Host: a", "Content-Length: +5")},
	{"CL negative", head("POST / HTTP/1.1", "Host: a", "Content-Length: -1")},
	{"CL 19 digits", head("POST / HTTP/1.1", "Host: a", "Content-Length: 1000000000000000000")},
	{"CL overflow", head("POST / HTTP/1.1", "Host: a", "Content-Length: 99999999999999999999999")},
	{"CL hex", head("POST / HTTP/1.1", "Host: a", "Content-Length: 0x5")},
	{"CL empty", head("POST / HTTP/1.1", "Host: a", "Content-Length:")},
	{"CL inner space", head("POST / HTTP/1.1", "Host: a", "Content-Length: 5 5")},
	{"CL leading zero", head("POST / HTTP/1.1", "Host: a", "Content-Length: 05")},
	{"CL zeros", head("POST / HTTP/1.1", "Host: a", "Content-Length: 00")},
	{"CL underscore", head("POST / HTTP/1.1", "Host: a", "Content-Length: 1_0")},
	{"CL folded", head("POST / HTTP/1.1", "Host: a", "Content-Length: 5", " 0")},
	{"CL NUL", head("POST / HTTP/1.1", "Host: a", "Content-Length: 5\x00")},
	{"CL fullwidth digit", head("POST / HTTP/1.1", "Host: a", "Content-Length: \uff15")},
	// Line structure.
	{"obs-fold", head("GET / HTTP/1.1", "Host: a", "X: a", " b")},
	{"obs-fold tab", head("GET / HTTP/1.1", "Host: a", "X: a", "\tb")},
	{"first field folded", head("GET / HTTP/1.1", " Host: a")},
	{"bare LF everywhere", "GET / HTTP/1.1\nHost: a\n\n"},
	{"bare LF in fields", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n"},
	{"bare LF ends head", "GET / HTTP/1.1\r\nHost: a\r\n\n"},
	{"bare CR in fields", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n"},
	{"bare CR ends value", "GET / HTTP/1.1\r\nHost: a\r\r\n\r\n"},
	{"bare CR in request line", "GET / HTTP/1.1\r\rHost: a\r\n\r\n"},
	{"leading empty line", "\r\n" + head("GET / HTTP/1.1", "Host: a")},
	{"no end", "GET / HTTP/1.1\r\nHost: a\r\n"},
	{"bytes after the head", head("GET / HTTP/1.1", "Host: a") + "x"},
	{"second head", head("GET / HTTP/1.1", "Host: a") + head("GET / HTTP/1.1", "Host: a")},
	{"empty", ""},
	// Field names and values.
	{"space before colon", head("GET / HTTP/1.1", "Host : a")},
	{"tab before colon", head("GET / HTTP/1.1", "Host\t: a")},
	{"empty name", head("GET / HTTP/1.1", "Host: a", ": v")},
	{"no colon", head("GET / HTTP/1.1", "Host: a", "X v")},
	{"separator in name", head("GET / HTTP/1.1", "Host: a", "X(y): v")},
	{"slash in name", head("GET / HTTP/1.1", "Host: a", "X/y: v")},
	{"NUL in name", head("GET / HTTP/1.1", "Host: a", "X\x00: v")},
	{"NUL in value", head("GET / HTTP/1.1", "Host: a", "X: a\x00b")},
	{"DEL in value", head("GET / HTTP/1.1", "Host: a", "X: a\x7fb")},
	{"DEL in name", head("GET / HTTP/1.1", "Host: a", "X\x7f: v")},
	{"obs-text in value", head("GET / HTTP/1.1", "Host: a", "X: caf\xc3\xa9")},
	{"0x80 in value", head("GET / HTTP/1.1", "Host: a", "X: \x80")},
	{"0xff in name", head("GET / HTTP/1.1", "Host: a", "X\xff: v")},
	{"vertical tab in value", head("GET / HTTP/1.1", "Host: a", "X: a\vb")},
	{"form feed in value", head("GET / HTTP/1.1", "Host: a", "X: a\fb")},
	{"too many fields", head(append([]string{"GET / HTTP/1.1", "Host: a"}, fields(MaxFields)...)...)},
	// Request line.
	{"HTTP/1.0", head("GET / HTTP/1.0", "Host: a")},
	{"HTTP/1.2", head("GET / HTTP/1.1x", "Host: a")},
	{"HTTP/2.0", head("GET / HTTP/2.0", "Host: a")},
	{"lower-case version", head("GET / http/1.1", "Host: a")},
	{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
	{"HTTP/0.9", "GET /\r\n\r\n"},
	{"trailing space", head("GET / HTTP/1.1 ", "Host: a")},
	{"double space", head("GET  / HTTP/1.1", "Host: a")},
	{"tab separator", head("GET\t/ HTTP/1.1", "Host: a")},
	{"space in target", head("GET /a b HTTP/1.1", "Host: a")},
	{"absolute form", head("GET http://a/ HTTP/1.1", "Host: a")},
	{"scheme without authority", head("GET http:/a HTTP/1.1", "Host: a")},
	{"asterisk form", head("OPTIONS * HTTP/1.1", "Host: a")},
	{"authority form", head("CONNECT a:443 HTTP/1.1", "Host: a:443")},
	{"empty target", head("GET  HTTP/1.1", "Host: a")},
	{"query only", head("GET ?x HTTP/1.1", "Host: a")},
	{"fragment", head("GET /a#f HTTP/1.1", "Host: a")},
	{"fragment in query", head("GET /a?b#f HTTP/1.1", "Host: a")},
	{"NUL in target", head("GET /a\x00 HTTP/1.1", "Host: a")},
	{"DEL in target", head("GET /a\x7f HTTP/1.1", "Host: a")},
	{"0x80 in target", head("GET /\x80 HTTP/1.1", "Host: a")},
	{"UTF-8 in target", head("GET /caf\xc3\xa9 HTTP/1.1", "Host: a")},
	{"empty method", head(" / HTTP/1.1", "Host: a")},
	{"separator in method", head("G(T / HTTP/1.1", "Host: a")},
	{"UTF-8 method", head("G\xc3\x89T / HTTP/1.1", "Host: a")},
	{"CONNECT in origin form", head("CONNECT /_goRPC_ HTTP/1.1", "Host: a")},
	{"bad escape", head("GET /%zz HTTP/1.1", "Host: a")},
	{"bad escape, second digit", head("GET /%4g HTTP/1.1", "Host: a")},
	{"escape cut by the end", head("GET /a%2 HTTP/1.1", "Host: a")},
	{"escape cut by the query", head("GET /a%2?b HTTP/1.1", "Host: a")},
	{"lone percent", head("GET /% HTTP/1.1", "Host: a")},
	{"double percent", head("GET /%%41 HTTP/1.1", "Host: a")},
	// Host.
	{"no Host", head("GET / HTTP/1.1", "X: a")},
	{"empty Host", head("GET / HTTP/1.1", "Host:")},
	{"blank Host", head("GET / HTTP/1.1", "Host: \t ")},
	{"two Hosts", head("GET / HTTP/1.1", "Host: a", "Host: b")},
	{"two Hosts, equal", head("GET / HTTP/1.1", "Host: a", "host: a")},
	{"space in Host", head("GET / HTTP/1.1", "Host: a b")},
	{"tab in Host", head("GET / HTTP/1.1", "Host: a\tb")},
	{"quote in Host", head("GET / HTTP/1.1", "Host: \"a\"")},
	{"slash in Host", head("GET / HTTP/1.1", "Host: a/b")},
	{"userinfo in Host", head("GET / HTTP/1.1", "Host: u@a")},
	{"query in Host", head("GET / HTTP/1.1", "Host: a?b")},
	{"backslash in Host", head("GET / HTTP/1.1", "Host: a\\b")},
	// Upgrades, expectations, connection options.
	{"Upgrade", head("GET / HTTP/1.1", "Host: a", "Upgrade: websocket", "Connection: Upgrade")},
	{"Upgrade alone", head("GET / HTTP/1.1", "Host: a", "upgrade: h2c")},
	{"Expect", head("POST / HTTP/1.1", "Host: a", "Expect: 100-continue", "Content-Length: 1")},
	{"HTTP2-Settings", head("GET / HTTP/1.1", "Host: a", "HTTP2-Settings: AAMAAABkAAQAAP__")},
	{"Connection upgrade", head("GET / HTTP/1.1", "Host: a", "Connection: upgrade")},
	{"Connection naming a field", head("GET / HTTP/1.1", "Host: a", "Connection: close, X-Secret", "X-Secret: 1")},
	{"Connection te", head("GET / HTTP/1.1", "Host: a", "Connection: te")},
	{"Connection parameter", head("GET / HTTP/1.1", "Host: a", "Connection: close;x")},
	{"Connection quoted", head("GET / HTTP/1.1", "Host: a", `Connection: "close"`)},
}

func TestParseRequestRejects(t *testing.T) {
	for _, tt := range rejectedRequests {
		t.Run(tt.name, func(t *testing.T) {
			r := Request{Fields: make([]Field, 0, 4)}
			err := ParseRequest(tt.head, &r)
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("ParseRequest(%q) = %v (%+v); want ErrUnsupported", tt.head, err, r)
			}
		})
	}
}

func TestParseRequestReusesFields(t *testing.T) {
	r := Request{Fields: make([]Field, 0, MaxFields)}
	if err := ParseRequest(head("GET / HTTP/1.1", "Host: a", "X: 1"), &r); err != nil {
		t.Fatal(err)
	}
	first := &r.Fields[:1][0]
	if err := ParseRequest(head("POST /b HTTP/1.1", "Host: b", "Content-Length: 1"), &r); err != nil {
		t.Fatal(err)
	}
	if &r.Fields[0] != first {
		t.Error("ParseRequest did not reuse Fields")
	}
	want := Request{Method: "POST", Target: "/b", Host: "b", ContentLength: 1,
		Fields: []Field{{"Host", "b"}, {"Content-Length", "1"}}}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("second parse left %+v; want %+v", r, want)
	}
	// A failed parse leaves no stale state behind.
	if err := ParseRequest("GET / HTTP/1.0\r\n\r\n", &r); err == nil {
		t.Fatal("HTTP/1.0 accepted")
	}
	if r.Host != "" || r.ContentLength != 0 || r.Close {
		t.Errorf("failed parse kept %+v", r)
	}
}

func TestHeadEnd(t *testing.T) {
	const h = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	tests := []struct {
		in   string
		want int
		err  error
	}{
		{"", -1, nil},
		{"G", -1, nil},
		{"GET / HTTP/1.1", -1, nil},
		{"GET / HTTP/1.1\r", -1, nil},
		{"GET / HTTP/1.1\r\n", -1, nil},
		{"GET / HTTP/1.1\r\nHost: a\r\n", -1, nil},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r", -1, nil},
		{h, len(h), nil},
		{h + "body\r\n\r\n", len(h), nil},
		{h + h, len(h), nil},
		{"GET / HTTP/1.1\r\n\r\n", 18, nil},
		{"\r", -1, nil},
		{"\n", 0, ErrUnsupported},
		{"\r\n", 0, ErrUnsupported},
		{"\r\nGET / HTTP/1.1\r\n", 0, ErrUnsupported},
		{"GET / HTTP/1.1\n", 0, ErrUnsupported},
		{"GET / HTTP/1.1\r\nHost: a\n", 0, ErrUnsupported},
		{"GET / HTTP/1.1\r\nHost: a\r\n\n", 0, ErrUnsupported},
		{"GET / HTTP/1.1\r\n\n", 0, ErrUnsupported},
		// A line holding a bare CR is only refused by ParseRequest.
		{"GET / HTTP/1.1\r\n\r\r\n", -1, nil},
		{"GET / HTTP/1.1\r\nX: a\r\r\n\r\n", 25, nil},
	}
	for _, tt := range tests {
		n, err := HeadEnd([]byte(tt.in))
		if n != tt.want || err != tt.err {
			t.Errorf("HeadEnd(%q) = %d, %v; want %d, %v", tt.in, n, err, tt.want, tt.err)
		}
	}
}

func TestParseResponseAccepts(t *testing.T) {
	many := append([]string{"HTTP/1.1 200 OK"}, fields(MaxFields)...)
	manyFields := make([]Field, MaxFields)
	for i := range manyFields {
		manyFields[i] = Field{"X-F" + strconv.Itoa(i), "v"}
	}
	tests := []struct {
		name string
		head string
		want Response
	}{
		{
			name: "length",
			head: head("HTTP/1.1 200 OK", "Content-Length: 2", "Content-Type: text/plain"),
			want: Response{Status: 200, Reason: "OK", HTTP11: true, ContentLength: 2,
				Fields: []Field{{"Content-Length", "2"}, {"Content-Type", "text/plain"}}},
		},
		{
			name: "no reason",
			head: head("HTTP/1.1 204"),
			want: Response{Status: 204, HTTP11: true, ContentLength: -1},
		},
		{
			name: "empty reason",
			head: head("HTTP/1.1 200 ", "Content-Length: 0"),
			want: Response{Status: 200, HTTP11: true, ContentLength: 0, Fields: []Field{{"Content-Length", "0"}}},
		},
		{
			name: "reason with spaces and tabs",
			head: head("HTTP/1.1 404 Not \tFound ", "Content-Length: 0"),
			want: Response{Status: 404, Reason: "Not \tFound ", HTTP11: true, ContentLength: 0,
				Fields: []Field{{"Content-Length", "0"}}},
		},
		{
			name: "lowest and highest status",
			head: head("HTTP/1.1 100 Continue"),
			want: Response{Status: 100, Reason: "Continue", HTTP11: true, ContentLength: -1},
		},
		{
			name: "status 999",
			head: head("HTTP/1.1 999 x", "Content-Length: 1"),
			want: Response{Status: 999, Reason: "x", HTTP11: true, ContentLength: 1,
				Fields: []Field{{"Content-Length", "1"}}},
		},
		{
			name: "chunked",
			head: head("HTTP/1.1 200 OK", "Transfer-Encoding: Chunked", "Trailer: X-Sum"),
			want: Response{Status: 200, Reason: "OK", HTTP11: true, Chunked: true, ContentLength: -1,
				Fields: []Field{{"Transfer-Encoding", "Chunked"}, {"Trailer", "X-Sum"}}, Hop: []int{0}},
		},
		{
			name: "identical duplicate lengths",
			head: head("HTTP/1.1 200 OK", "Content-Length: 5", "content-length:  5 "),
			want: Response{Status: 200, Reason: "OK", HTTP11: true, ContentLength: 5,
				Fields: []Field{{"Content-Length", "5"}, {"content-length", "5"}}},
		},
		{
			name: "Connection options are hop-by-hop",
			head: head("HTTP/1.1 200 OK", "Content-Length: 0", "X-Trace: 1", "Connection: x-trace, keep-alive",
				"Keep-Alive: timeout=5", "Server: s", "x-TRACE: 2", "Proxy-Authenticate: Basic", "Upgrade: h2c", "TE: x",
				"Proxy-Connection: close"),
			want: Response{Status: 200, Reason: "OK", HTTP11: true, ContentLength: 0,
				Fields: []Field{{"Content-Length", "0"}, {"X-Trace", "1"}, {"Connection", "x-trace, keep-alive"},
					{"Keep-Alive", "timeout=5"}, {"Server", "s"}, {"x-TRACE", "2"}, {"Proxy-Authenticate", "Basic"},
					{"Upgrade", "h2c"}, {"TE", "x"}, {"Proxy-Connection", "close"}},
				Hop: []int{2, 3, 6, 7, 8, 9, 1, 5}},
		},
		{
			name: "Connection: close",
			head: head("HTTP/1.1 200 OK", "Connection: Keep-Alive, Close", "Content-Length: 1"),
			want: Response{Status: 200, Reason: "OK", HTTP11: true, ContentLength: 1, Close: true,
				Fields: []Field{{"Connection", "Keep-Alive, Close"}, {"Content-Length", "1"}}, Hop: []int{0}},
		},
		{
			name: "HTTP/1.0 closes",
			head: head("HTTP/1.0 200 OK", "Content-Length: 1"),
			want: Response{Status: 200, Reason: "OK", ContentLength: 1, Close: true,
				Fields: []Field{{"Content-Length", "1"}}},
		},
		{
			name: "HTTP/1.0 keep-alive",
			head: head("HTTP/1.0 200 OK", "Content-Length: 1", "Connection: keep-alive"),
			want: Response{Status: 200, Reason: "OK", ContentLength: 1,
				Fields: []Field{{"Content-Length", "1"}, {"Connection", "keep-alive"}}, Hop: []int{1}},
		},
		{
			name: "HTTP/1.0 keep-alive and close",
			head: head("HTTP/1.0 200 OK", "Content-Length: 1", "Connection: keep-alive", "Connection: close"),
			want: Response{Status: 200, Reason: "OK", ContentLength: 1, Close: true,
				Fields: []Field{{"Content-Length", "1"}, {"Connection", "keep-alive"}, {"Connection", "close"}},
				Hop:    []int{1, 2}},
		},
		{
			name: "MaxFields fields",
			head: head(many...),
			want: Response{Status: 200, Reason: "OK", HTTP11: true, ContentLength: -1, Close: true, Fields: manyFields},
		},
		{
			name: "CL and TE: chunked, CL hop-by-hop, no reuse",
			head: head("HTTP/1.1 200 OK", "Content-Length: 10", "Transfer-Encoding: chunked"),
			want: Response{Status: 200, Reason: "OK", HTTP11: true, Chunked: true, ContentLength: -1, Close: true,
				Fields: []Field{{"Content-Length", "10"}, {"Transfer-Encoding", "chunked"}}, Hop: []int{1, 0}},
		},
		{
			name: "body delimited by close",
			head: head("HTTP/1.1 200 OK", "Content-Type: text/plain"),
			want: Response{Status: 200, Reason: "OK", HTTP11: true, ContentLength: -1, Close: true,
				Fields: []Field{{"Content-Type", "text/plain"}}},
		},
		{
			name: "304 without length keeps the connection",
			head: head("HTTP/1.1 304 Not Modified", "ETag: \"x\""),
			want: Response{Status: 304, Reason: "Not Modified", HTTP11: true, ContentLength: -1,
				Fields: []Field{{"ETag", "\"x\""}}},
		},
		{
			name: "upper-case Connection option",
			head: head("HTTP/1.1 200 OK", "Content-Length: 0", "Connection: X-Trace", "X-TRACE: 1", "x-trace: 2"),
			want: Response{Status: 200, Reason: "OK", HTTP11: true, ContentLength: 0,
				Fields: []Field{{"Content-Length", "0"}, {"Connection", "X-Trace"}, {"X-TRACE", "1"}, {"x-trace", "2"}},
				Hop:    []int{1, 2, 3}},
		},
		{
			name: "each hop-by-hop field listed once",
			head: head("HTTP/1.1 200 OK", "TE: x", "Connection: te, TE, connection, content-length, te",
				"Content-Length: 0", "Transfer-Encoding: chunked"),
			want: Response{Status: 200, Reason: "OK", HTTP11: true, Chunked: true, ContentLength: -1, Close: true,
				Fields: []Field{{"TE", "x"}, {"Connection", "te, TE, connection, content-length, te"},
					{"Content-Length", "0"}, {"Transfer-Encoding", "chunked"}},
				Hop: []int{0, 1, 3, 2}},
		},
		{
			name: "Trailer naming framing without chunking is inert",
			head: head("HTTP/1.1 200 OK", "Content-Length: 0", "Trailer: Content-Length"),
			want: Response{Status: 200, Reason: "OK", HTTP11: true, ContentLength: 0,
				Fields: []Field{{"Content-Length", "0"}, {"Trailer", "Content-Length"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Response
			if err := ParseResponse(tt.head, &r); err != nil {
				t.Fatalf("ParseResponse(%q) = %v", tt.head, err)
			}
			if !reflect.DeepEqual(r, tt.want) {
				t.Errorf("ParseResponse(%q)\n got %+v\nwant %+v", tt.head, r, tt.want)
			}
		})
	}
}

// rejectedResponses are heads a proxy must answer with 502 instead of
// forwarding.
var rejectedResponses = []struct {
	name, head string
	err        error
}{
	{"empty", "", ErrMalformed},
	{"no head end", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", ErrMalformed},
	{"bytes after the head", head("HTTP/1.1 200 OK", "Content-Length: 1") + "x", ErrMalformed},
	{"short line", head("HTTP/1.1 20"), ErrMalformed},
	{"no status", head("HTTP/1.1"), ErrMalformed},
	{"two-digit status", head("HTTP/1.1 20 OK"), ErrMalformed},
	{"four-digit status", head("HTTP/1.1 2000"), ErrMalformed},
	{"four-digit status and reason", head("HTTP/1.1 2000 OK"), ErrMalformed},
	{"letter in status", head("HTTP/1.1 2x0 OK"), ErrMalformed},
	{"signed status", head("HTTP/1.1 +20 OK"), ErrMalformed},
	{"status below 100", head("HTTP/1.1 099 OK"), ErrMalformed},
	{"status 000", head("HTTP/1.1 000 OK"), ErrMalformed},
	{"double space", head("HTTP/1.1  200 OK"), ErrMalformed},
	{"tab after version", head("HTTP/1.1\t200 OK"), ErrMalformed},
	{"tab after status", head("HTTP/1.1 200\tOK"), ErrMalformed},
	{"HTTP/1.2", head("HTTP/1.2 200 OK"), ErrMalformed},
	{"HTTP/2", head("HTTP/2 200 OK"), ErrMalformed},
	{"HTTP/2.0", head("HTTP/2.0 200 OK"), ErrMalformed},
	{"lower-case version", head("http/1.1 200 OK"), ErrMalformed},
	{"ICY", head("ICY 200 OK"), ErrMalformed},
	{"NUL in reason", head("HTTP/1.1 200 O\x00K"), ErrMalformed},
	{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 1\n\n", ErrMalformed},
	{"bare LF in fields", "HTTP/1.1 200 OK\r\nContent-Length: 1\nX: y\r\n\r\n", ErrMalformed},
	{"bare CR in fields", "HTTP/1.1 200 OK\r\nContent-Length: 1\rX: y\r\n\r\n", ErrMalformed},
	{"obs-fold", head("HTTP/1.1 200 OK", "X: a", " b"), ErrMalformed},
	{"first field folded", head("HTTP/1.1 200 OK", " X: a"), ErrMalformed},
	{"space before colon", head("HTTP/1.1 200 OK", "Content-Length : 1"), ErrMalformed},
	{"empty name", head("HTTP/1.1 200 OK", ": 1"), ErrMalformed},
	{"NUL in value", head("HTTP/1.1 200 OK", "X: \x00"), ErrMalformed},
	{"DEL in name", head("HTTP/1.1 200 OK", "X\x7f: 1"), ErrMalformed},
	{"differing lengths", head("HTTP/1.1 200 OK", "Content-Length: 5", "Content-Length: 6"), ErrMalformed},
	{"length list", head("HTTP/1.1 200 OK", "Content-Length: 5, 5"), ErrMalformed},
	{"negative length", head("HTTP/1.1 200 OK", "Content-Length: -1"), ErrMalformed},
	{"signed length", head("HTTP/1.1 200 OK", "Content-Length: +1"), ErrMalformed},
	{"empty length", head("HTTP/1.1 200 OK", "Content-Length:"), ErrMalformed},
	{"19-digit length", head("HTTP/1.1 200 OK", "Content-Length: 1000000000000000000"), ErrMalformed},
	{"TE gzip, chunked", head("HTTP/1.1 200 OK", "Transfer-Encoding: gzip, chunked"), ErrMalformed},
	{"TE chunked, gzip", head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked, gzip"), ErrMalformed},
	{"TE identity", head("HTTP/1.1 200 OK", "Transfer-Encoding: identity"), ErrMalformed},
	{"TE empty", head("HTTP/1.1 200 OK", "Transfer-Encoding:"), ErrMalformed},
	{"TE twice", head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"), ErrMalformed},
	{"TE chunked;x", head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked;x"), ErrMalformed},
	{"lengths with different text", head("HTTP/1.1 200 OK", "Content-Length: 5", "Content-Length: 05"), ErrMalformed},
	{"HTTP/1.0 TE", head("HTTP/1.0 200 OK", "Transfer-Encoding: chunked"), ErrMalformed},
	{"HTTP/1.0 TE and CL", head("HTTP/1.0 200 OK", "Connection: keep-alive", "Content-Length: 3",
		"Transfer-Encoding: chunked"), ErrMalformed},
	{"chunked Trailer: Content-Length", head("HTTP/1.1 200 OK", "Trailer: X-A, content-length",
		"Transfer-Encoding: chunked"), ErrMalformed},
	{"chunked Trailer: Transfer-Encoding", head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked",
		"Trailer: Transfer-Encoding"), ErrMalformed},
	{"chunked Trailer: Trailer", head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "trailer: x", "Trailer:  TRAILER "),
		ErrMalformed},
	{"Connection option not a token", head("HTTP/1.1 200 OK", "Connection: a b"), ErrMalformed},
	{"too many fields", head(append([]string{"HTTP/1.1 200 OK"}, fields(MaxResponseFields+1)...)...), ErrTooManyFields},
}

func TestParseResponseRejects(t *testing.T) {
	for _, tt := range rejectedResponses {
		t.Run(tt.name, func(t *testing.T) {
			var r Response
			if err := ParseResponse(tt.head, &r); err != tt.err {
				t.Fatalf("ParseResponse(%q) = %v (%+v); want %v", tt.head, err, r, tt.err)
			}
		})
	}
}

func TestResponseBodyless(t *testing.T) {
	tests := []struct {
		method string
		status int
		want   bool
	}{
		{"GET", 200, false},
		{"POST", 201, false},
		{"GET", 205, false},
		{"GET", 404, false},
		{"GET", 500, false},
		{"HEAD", 200, true},
		{"HEAD", 404, true},
		{"GET", 100, true},
		{"GET", 101, true},
		{"GET", 199, true},
		{"GET", 204, true},
		{"GET", 304, true},
		{"head", 200, false}, // methods are case-sensitive
		{"CONNECT", 200, true},
		{"CONNECT", 299, true},
		{"CONNECT", 407, false},
	}
	for _, tt := range tests {
		r := Response{Status: tt.status}
		if got := r.Bodyless(tt.method); got != tt.want {
			t.Errorf("Bodyless(%s %d) = %v; want %v", tt.method, tt.status, got, tt.want)
		}
	}
}

func TestResponseIsHop(t *testing.T) {
	var r Response
	h := head("HTTP/1.1 200 OK", "Content-Length: 9", "Connection: x-a", "X-A: 1", "X-B: 2", "Transfer-Encoding: chunked")
	if err := ParseResponse(h, &r); err != nil {
		t.Fatal(err)
	}
	want := []bool{true, true, true, false, true}
	for i, w := range want {
		if got := r.IsHop(i); got != w {
			t.Errorf("IsHop(%d) [%s] = %v; want %v", i, r.Fields[i].Name, got, w)
		}
	}
	if r.IsHop(-1) || r.IsHop(len(r.Fields)) {
		t.Error("IsHop out of range reported true")
	}
	if !r.Chunked || r.ContentLength != -1 {
		t.Errorf("CL+TE: Chunked=%v ContentLength=%d; want chunked, -1", r.Chunked, r.ContentLength)
	}
}

func TestIsRequestHopByHop(t *testing.T) {
	hop := []string{"Connection", "connection", "Keep-Alive", "KEEP-ALIVE", "TE", "te", "Transfer-Encoding",
		"Trailer", "Upgrade", "Proxy-Connection", "Proxy-Authenticate", "proxy-authorization"}
	for _, name := range hop {
		if !IsRequestHopByHop(name) {
			t.Errorf("IsRequestHopByHop(%q) = false", name)
		}
	}
	endToEnd := []string{"", "Host", "Content-Length", "Authorization", "Trailers", "Tf", "T", "Te-X",
		"Keep-Alive2", "Connectio", "Connection-X", "Upgrade-Insecure-Requests", "Proxy-Authorizatio", "X-Forwarded-For"}
	for _, name := range endToEnd {
		if IsRequestHopByHop(name) {
			t.Errorf("IsRequestHopByHop(%q) = true", name)
		}
	}
}

func TestEqualFold(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"", "", true},
		{"Host", "hOST", true},
		{"content-length", "Content-Length", true},
		{"Z", "z", true},
		{"a", "b", false},
		{"ab", "a", false},
		{"a", "ab", false},
		{"@", "`", false}, // 0x40 and 0x60 differ by the case bit but are not letters
		{"[", "{", false},
		{"\xc0", "\xe0", false}, // no folding outside ASCII
		{"\xc3\x89", "\xc3\xa9", false},
		{"k", "\u212a"[:1], false},
	}
	for _, tt := range tests {
		if got := EqualFold(tt.a, tt.b); got != tt.want {
			t.Errorf("EqualFold(%q, %q) = %v; want %v", tt.a, tt.b, got, tt.want)
		}
		if got := EqualFold(tt.b, tt.a); got != tt.want {
			t.Errorf("EqualFold(%q, %q) = %v; want %v", tt.b, tt.a, got, tt.want)
		}
	}
}

// benchRequest is what a keep-alive API client sends: ten fields, one a
// 600-byte bearer token.
var benchRequest = head(
	"POST /v1/analyze?lang=en&mode=fast HTTP/1.1",
	"Host: api.example.com",
	"User-Agent: contentguard-loadgen/1.0",
	"Accept: application/json",
	"Accept-Encoding: gzip, deflate, br",
	"Authorization: Bearer "+strings.Repeat("eyJhbGciOiJSUzI1NiJ9.", 600/21)+strings.Repeat("x", 600-600/21*21),
	"Content-Type: application/json",
	"Content-Length: 512",
	"X-Request-Id: 3f2a9c1e-8b7d-4e6f-9a0b-1c2d3e4f5a6b",
	"Traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	"Connection: keep-alive",
)

var benchResponse = head(
	"HTTP/1.1 200 OK",
	"Content-Type: application/json",
	"Content-Length: 1234",
	"Date: Fri, 27 Nov 2026 13:00:00 GMT",
	"Cache-Control: no-store",
	"X-Request-Id: 3f2a9c1e-8b7d-4e6f-9a0b-1c2d3e4f5a6b",
	"Connection: keep-alive",
)

// hopResponse makes ParseResponse track Connection options.
var hopResponse = head("HTTP/1.1 200 OK", "Connection: x-a, X-B", "X-A: 1", "x-b: 2", "Keep-Alive: 5",
	"Transfer-Encoding: chunked")

func TestParseAllocatesNothing(t *testing.T) {
	b := []byte(benchRequest + strings.Repeat("{}", 256))
	r := Request{Fields: make([]Field, 0, MaxFields)}
	resp := Response{Fields: make([]Field, 0, MaxFields), Hop: make([]int, 0, MaxFields)}
	allocs := testing.AllocsPerRun(100, func() {
		n, err := HeadEnd(b)
		if err != nil || n != len(benchRequest) {
			t.Fatalf("HeadEnd = %d, %v", n, err)
		}
		if err := ParseRequest(benchRequest, &r); err != nil {
			t.Fatal(err)
		}
		if err := ParseResponse(benchResponse, &resp); err != nil {
			t.Fatal(err)
		}
		if err := ParseResponse(hopResponse, &resp); err != nil || len(resp.Hop) != 5 {
			t.Fatalf("ParseResponse = %v, Hop %v", err, resp.Hop)
		}
	})
	if allocs != 0 {
		t.Errorf("HeadEnd+ParseRequest+ParseResponse allocate %v times a run; want 0", allocs)
	}
}

func BenchmarkParseRequest(b *testing.B) {
	r := Request{Fields: make([]Field, 0, MaxFields)}
	b.SetBytes(int64(len(benchRequest)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseRequest(benchRequest, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHeadEnd(b *testing.B) {
	buf := []byte(benchRequest + strings.Repeat("{}", 256))
	b.SetBytes(int64(len(benchRequest)))
	b.ReportAllocs()
	for b.Loop() {
		if n, err := HeadEnd(buf); n != len(benchRequest) || err != nil {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkParseResponse(b *testing.B) {
	r := Response{Fields: make([]Field, 0, MaxFields), Hop: make([]int, 0, MaxFields)}
	b.SetBytes(int64(len(benchResponse)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseResponse(benchResponse, &r); err != nil {
			b.Fatal(err)
		}
	}
}

// netHTTP is a real net/http server reached over in-memory pipes: the judge
// of whether net/http's server accepts a request head and how it reads it.
type netHTTP struct {
	srv   *http.Server
	conns chan net.Conn
	seen  chan *http.Request
	done  chan struct{}
	once  sync.Once
}

func newNetHTTP(tb testing.TB) *netHTTP {
	s := &netHTTP{
		conns: make(chan net.Conn),
		seen:  make(chan *http.Request, 1),
		done:  make(chan struct{}),
	}
	s.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.seen <- r
			w.WriteHeader(http.StatusNoContent)
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       5 * time.Second,
		WriteTimeout:      5 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	// Without keep-alive the server neither reads an unread body after
	// the handler nor waits for a next request.
	s.srv.SetKeepAlivesEnabled(false)
	go s.srv.Serve(s) //nolint:errcheck // returns when closed
	tb.Cleanup(func() { s.srv.Close() })
	return s
}

func (s *netHTTP) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	}
}

func (s *netHTTP) Close() error {
	s.once.Do(func() { close(s.done) })
	return nil
}

func (s *netHTTP) Addr() net.Addr { return &net.UnixAddr{Name: "pipe", Net: "pipe"} }

// serve sends head to the server and returns the request its handler saw,
// or an error saying how the server refused it.
func (s *netHTTP) serve(head []byte) (*http.Request, error) {
	client, server := net.Pipe()
	if err := client.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return nil, err
	}
	s.conns <- server
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		client.Write(head) //nolint:errcheck // a refused head shows in the response
	}()
	defer func() {
		client.Close()
		<-wrote
	}()
	resp, err := http.ReadResponse(bufio.NewReader(client), nil)
	if err != nil {
		return nil, fmt.Errorf("reading the server's response: %w", err)
	}
	if resp.StatusCode != http.StatusNoContent {
		return nil, fmt.Errorf("net/http server answered %s", resp.Status)
	}
	return <-s.seen, nil
}

// canonicalFields groups fields by canonical name as net/http's Header does.
func canonicalFields(fs []Field) http.Header {
	h := http.Header{}
	for _, f := range fs {
		k := textproto.CanonicalMIMEHeaderKey(f.Name)
		h[k] = append(h[k], f.Value)
	}
	return h
}

// checkRequestAgrees fails unless net/http, both http.ReadRequest and a
// real server, accepts data's head (the first n bytes, which ParseRequest
// read as r) and reads it exactly as r says.
func checkRequestAgrees(t *testing.T, s *netHTTP, data []byte, n int, r *Request) {
	t.Helper()
	br := bufio.NewReaderSize(bytes.NewReader(data), len(data)+16)
	req, err := http.ReadRequest(br)
	if err != nil {
		t.Fatalf("h1 accepted %q; http.ReadRequest: %v", data[:n], err)
	}
	if consumed := len(data) - br.Buffered(); consumed != n {
		t.Errorf("HeadEnd = %d; http.ReadRequest consumed %d bytes of %q", n, consumed, data)
	}
	want := canonicalFields(r.Fields)
	// net/http moves Host out of Header (r.Host is compared on its own).
	delete(want, "Host")
	compareRequest(t, "http.ReadRequest", data[:n], r, req, want)

	sreq, err := s.serve(data[:n])
	if err != nil {
		t.Fatalf("h1 accepted %q; %v", data[:n], err)
	}
	compareRequest(t, "net/http server", data[:n], r, sreq, want)
}

func compareRequest(t *testing.T, judge string, head []byte, r *Request, req *http.Request, fields http.Header) {
	t.Helper()
	// net/http adds Cache-Control to a request with "Pragma: no-cache".
	if p := req.Header["Pragma"]; len(p) > 0 && p[0] == "no-cache" && !slices.ContainsFunc(r.Fields, func(f Field) bool {
		return EqualFold(f.Name, "Cache-Control")
	}) {
		req.Header.Del("Cache-Control")
	}
	if !reflect.DeepEqual(http.Header(req.Header), fields) {
		t.Errorf("%q: fields differ\n  h1 %v\n%s %v", head, fields, judge, req.Header)
	}
	// The sidecar matches policy on the path as sent (requestPath in
	// sidecar/proxy.go), not on the decoded URL.Path.
	rawPath, _, _ := strings.Cut(req.RequestURI, "?")
	type view struct {
		Method, Target, Host, Path, RawQuery string
		ContentLength                        int64
		Close                                bool
	}
	got := view{r.Method, r.Target, r.Host, r.Path(), r.RawQuery(), r.ContentLength, r.Close}
	want := view{req.Method, req.RequestURI, req.Host, rawPath, req.URL.RawQuery, req.ContentLength, req.Close}
	if got != want {
		t.Errorf("%q:\n  h1 %+v\n%s %+v", head, got, judge, want)
	}
	if req.URL.Scheme != "" || req.URL.Host != "" || req.URL.Opaque != "" || req.URL.Fragment != "" {
		t.Errorf("%q: %s read URL %#v", head, judge, req.URL)
	}
	if len(req.TransferEncoding) != 0 {
		t.Errorf("%q: %s read transfer coding %q", head, judge, req.TransferEncoding)
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(benchRequest))
	f.Add([]byte(head("GET / HTTP/1.1", "Host: a") + "GET / HTTP/1.1\r\n"))
	f.Add([]byte(head("POST /a?b HTTP/1.1", "Host: h:1", "Content-Length: 3", "Connection: close") + "abc"))
	f.Add([]byte(head("GET /%41%2f?%zz HTTP/1.1", "Host: [::1]", "Pragma: no-cache")))
	for _, tt := range rejectedRequests {
		f.Add([]byte(tt.head))
	}
	s := newNetHTTP(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRequest(t, s, data)
	})
}

// FuzzRequestParts explores one request's method, target, Host and one
// field inside a well-formed frame, where FuzzParseRequest mostly breaks
// the frame.
func FuzzRequestParts(f *testing.F) {
	f.Add("GET", "/", "a", "X", "v")
	f.Add("POST", "/a%2F?q=%zz", "[::1]:80", "Content-Length", "5")
	f.Add("PUT", "/%", "a b", "Connection", "close, keep-alive")
	f.Add("GET", "//a/../b", "a:1", "Pragma", "no-cache")
	f.Add("DELETE", "/x", "a", "Transfer-Encoding", "chunked")
	s := newNetHTTP(f)
	f.Fuzz(func(t *testing.T, method, target, host, name, value string) {
		h := method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\n" + name + ": " + value + "\r\n\r\n"
		checkRequest(t, s, []byte(h))
	})
}

// checkRequest holds h1's reading of data against net/http's.
func checkRequest(t *testing.T, s *netHTTP, data []byte) {
	var r Request
	whole := ParseRequest(string(data), &r) == nil
	n, err := HeadEnd(data)
	if whole && n != len(data) {
		t.Fatalf("ParseRequest accepted %q; HeadEnd = %d, %v", data, n, err)
	}
	if err != nil || n < 0 {
		return
	}
	if ParseRequest(string(data[:n]), &r) != nil {
		return
	}
	// A caller reading the head piecemeal waits at every shorter
	// prefix: HeadEnd never refuses the start of a head it accepts.
	for k := 0; k < n; k++ {
		if m, err := HeadEnd(data[:k]); m != -1 || err != nil {
			t.Fatalf("HeadEnd(%q) = %d, %v; the whole head is accepted", data[:k], m, err)
		}
	}
	checkRequestAgrees(t, s, data, n, &r)
}

// checkHop holds r.Hop against a model written for clarity: the fields
// httputil.ReverseProxy drops from a response (bar Trailer, which h1 keeps
// with the chunked body it relays), the fields Connection names, and
// Content-Length when the body is chunked.
func checkHop(t *testing.T, head []byte, r *Response) {
	t.Helper()
	hop := map[string]bool{"Connection": true, "Proxy-Connection": true, "Keep-Alive": true,
		"Proxy-Authenticate": true, "Proxy-Authorization": true, "Te": true, "Transfer-Encoding": true, "Upgrade": true}
	if r.Chunked {
		hop["Content-Length"] = true
	}
	for _, f := range r.Fields {
		if textproto.CanonicalMIMEHeaderKey(f.Name) == "Connection" {
			for _, opt := range strings.Split(f.Value, ",") {
				hop[textproto.CanonicalMIMEHeaderKey(strings.Trim(opt, " \t"))] = true
			}
		}
	}
	for i, f := range r.Fields {
		if want := hop[textproto.CanonicalMIMEHeaderKey(f.Name)]; r.IsHop(i) != want {
			t.Errorf("%q: IsHop(%d) [%s] = %v; want %v", head, i, f.Name, !want, want)
		}
	}
	if len(r.Hop) > len(r.Fields) {
		t.Errorf("%q: %d hop-by-hop indexes for %d fields", head, len(r.Hop), len(r.Fields))
	}
}

// bodyAllowed mirrors RFC 9112 §6.3 for a response to GET.
func bodyAllowed(status int) bool {
	return status >= 200 && status != 204 && status != 304
}

func FuzzParseResponse(f *testing.F) {
	f.Add([]byte(benchResponse))
	f.Add([]byte(head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Content-Length: 3") + "3\r\nabc\r\n0\r\n\r\n"))
	f.Add([]byte(head("HTTP/1.0 200 OK", "Connection: keep-alive", "Content-Length: 0")))
	f.Add([]byte(head("HTTP/1.1 200 OK", "Connection: x-a", "X-A: 1")))
	f.Add([]byte(head("HTTP/1.1 304 Not Modified", "Content-Length: 7")))
	for _, tt := range rejectedResponses {
		f.Add([]byte(tt.head))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := HeadEnd(data)
		if err != nil || n < 0 {
			n = len(data)
		}
		var r Response
		if ParseResponse(string(data[:n]), &r) != nil {
			return
		}
		get, _ := http.NewRequest("GET", "http://a/", nil)
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), get)
		if err != nil {
			t.Fatalf("h1 accepted %q; http.ReadResponse: %v", data[:n], err)
		}
		checkResponseAgrees(t, data[:n], &r, resp)
	})
}

func checkResponseAgrees(t *testing.T, head []byte, r *Response, resp *http.Response) {
	t.Helper()
	if r.Status != resp.StatusCode || r.HTTP11 != (resp.ProtoMinor == 1) || resp.ProtoMajor != 1 {
		t.Errorf("%q: h1 status %d HTTP11 %v; net/http %d %s", head, r.Status, r.HTTP11, resp.StatusCode, resp.Proto)
	}
	if r.Reason != strings.TrimPrefix(resp.Status[3:], " ") {
		t.Errorf("%q: h1 reason %q; net/http status %q", head, r.Reason, resp.Status)
	}
	if bodyAllowed(r.Status) {
		chunked := len(resp.TransferEncoding) == 1 && resp.TransferEncoding[0] == "chunked"
		if r.Chunked != chunked {
			t.Errorf("%q: h1 chunked %v; net/http transfer coding %q", head, r.Chunked, resp.TransferEncoding)
		}
		if r.ContentLength != resp.ContentLength {
			t.Errorf("%q: h1 length %d; net/http %d", head, r.ContentLength, resp.ContentLength)
		}
	}
	// h1 does not reuse a connection after a response framed by both
	// Content-Length and Transfer-Encoding; net/http does.
	ambiguous := r.Chunked && slices.ContainsFunc(r.Fields, func(f Field) bool {
		return EqualFold(f.Name, "Content-Length")
	})
	if r.Close != (resp.Close || ambiguous) {
		t.Errorf("%q: h1 close %v; net/http %v", head, r.Close, resp.Close)
	}
	for _, i := range r.Hop {
		if i < 0 || i >= len(r.Fields) {
			t.Fatalf("%q: hop index %d out of range", head, i)
		}
	}
	checkHop(t, head, r)
	// The fields net/http leaves as they came agree with h1's.
	framing := []string{"Content-Length", "Transfer-Encoding", "Trailer", "Connection", "Cache-Control"}
	got := canonicalFields(r.Fields)
	for _, k := range framing {
		delete(got, k)
		delete(resp.Header, k)
	}
	if !reflect.DeepEqual(got, resp.Header) {
		t.Errorf("%q: fields differ\n  h1 %v\nhttp %v", head, got, resp.Header)
	}
}

// TestParseResponseObsText: a response's values and reason may carry
// obs-text (RFC 9110 §5.5), as net/http's client accepts; a request's may
// not (such requests go to net/http).
func TestParseResponseObsText(t *testing.T) {
	var r Response
	in := head("HTTP/1.1 200 \xc3\x89t\xc3\xa9", "Content-Disposition: attachment; filename=\"\xc3\xa9t\xc3\xa9.txt\"", "X: \x80\xff", "Content-Length: 0")
	if err := ParseResponse(in, &r); err != nil {
		t.Fatal(err)
	}
	if r.Reason != "\xc3\x89t\xc3\xa9" || r.Fields[0].Value != "attachment; filename=\"\xc3\xa9t\xc3\xa9.txt\"" || r.Fields[1].Value != "\x80\xff" {
		t.Fatalf("%+v", r)
	}
	for _, bad := range []string{"X: a\x7fb", "X: a\x00b", "X: a\x1bb"} {
		if err := ParseResponse(head("HTTP/1.1 200 OK", bad), &r); err != ErrMalformed {
			t.Errorf("%q: %v, want ErrMalformed", bad, err)
		}
	}
	var q Request
	if err := ParseRequest(head("GET / HTTP/1.1", "Host: a", "X: \xc3\xa9"), &q); err != ErrUnsupported {
		t.Errorf("obs-text in a request: %v, want ErrUnsupported", err)
	}
}

// TestParseResponseManyFields: a response may carry more fields than a
// request (one Set-Cookie each), up to MaxResponseFields.
func TestParseResponseManyFields(t *testing.T) {
	var r Response
	if err := ParseResponse(head(append([]string{"HTTP/1.1 200 OK"}, fields(MaxResponseFields)...)...), &r); err != nil || len(r.Fields) != MaxResponseFields {
		t.Fatalf("%d fields: %v", len(r.Fields), err)
	}
}
