package sidecar_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/contentguard/contentguard/internal/syncbuf"
	"github.com/contentguard/contentguard/internal/tcptest"
	"github.com/contentguard/contentguard/sidecar"
)

// strictUpstream parses everything it receives with net/http's own request
// parser and remembers the first thing that does not parse: whatever a
// client sends the sidecar, what reaches the upstream must be well-formed
// HTTP/1.1, one request after another.
type strictUpstream struct {
	addr string
	mu   sync.Mutex
	bad  error
}

func startStrictUpstream(tb testing.TB) *strictUpstream {
	u := &strictUpstream{}
	u.addr = tcptest.Serve(tb, u.serve)
	return u
}

func (u *strictUpstream) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		// An idle pooled connection may wait long: only a request begun
		// must arrive whole, and promptly.
		_ = c.SetReadDeadline(time.Time{})
		if _, err := br.Peek(1); err != nil {
			return
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		req, err := http.ReadRequest(br)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
				u.fail(err)
			}
			return
		}
		for name, values := range req.Header {
			if !httpguts.ValidHeaderFieldName(name) {
				u.fail(fmt.Errorf("invalid header name %q", name))
			}
			for _, v := range values {
				if !httpguts.ValidHeaderFieldValue(v) {
					u.fail(fmt.Errorf("invalid value %q of %s", v, name))
				}
			}
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			// A body cut short, then the connection closed: the sidecar
			// streams bodies and closes the upstream connection when the
			// client's ends early. Anything else is a broken frame.
			if !errors.Is(err, io.ErrUnexpectedEOF) && !isReset(err) {
				u.fail(err)
			}
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
			return
		}
	}
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}

func (u *strictUpstream) fail(err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.bad == nil {
		u.bad = err
	}
}

func (u *strictUpstream) err() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.bad
}

// FuzzFastPath writes arbitrary bytes to a sidecar connection (then closes
// its write side) and holds three things: the sidecar never panics (a
// recovered panic is logged, and fails the run), whatever reaches the
// upstream parses as HTTP/1.1 requests, and the first answer, if any,
// parses as an HTTP/1.1 response.
func FuzzFastPath(f *testing.F) {
	for _, seed := range []string{
		"GET /x HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: a\r\n\r\nGET /y HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /z HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: a\r\nX-Auth-Subject: root\r\nX_Request_ID: planted\r\nConnection: close\r\n\r\n",
		"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\nGET /x?q=1 HTTP/1.0\r\n\r\n",
		"GET /a/../../b HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: a\r\n Folded: x\r\n\r\n",
		"GET /x HTTP/1.1\nHost: a\n\n",
		"\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /%zz HTTP/1.1\r\nHost: a\r\nTe: trailers\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	up := startStrictUpstream(f)
	var logs syncbuf.Buffer
	sc := startSidecar(f, sidecar.Options{
		Policy: parsePolicy(f, basicPolicy), Upstream: "http://" + up.addr,
		Logger: newJSONLogger(&logs), DisableAccessLog: true,
		ReadHeaderTimeout: time.Second, ReadTimeout: time.Second,
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := net.Dial("tcp", sc.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write(data)
		_ = c.(*net.TCPConn).CloseWrite()
		answer, _ := io.ReadAll(c)
		if len(answer) > 0 {
			if _, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(answer)), nil); err != nil {
				t.Fatalf("the first answer does not parse: %v\n%q", err, answer)
			}
		}
		if err := up.err(); err != nil {
			t.Fatalf("the upstream received something that is not HTTP/1.1: %v (input %q)", err, data)
		}
		if strings.Contains(logs.String(), "panic") {
			t.Fatalf("panic:\n%s", logs.String())
		}
	})
}
