package sidecar

// Whose fault: a request body that fails to arrive is the client's, and
// the upstream's timeout runs only once the whole request is handed over.
// Both paths apply the same rules (edge.Outcome.ClientFault, and
// edge.Engine.ClientFailure for the answer, edge.BodyFault for whose
// fault a body's read error is); see docs/security.md.

import (
	"io"
	"net/http"
	"sync"
	"time"
)

// orReadTimeout is d, or the server's read timeout when the decision has no
// body timeout (a zero deadline would mean none at all).
func orReadTimeout(d, readTimeout time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return readTimeout
}

// clientBody is the request body on the net/http path, as the transport
// reads it to send it upstream. It remembers the first read error, which
// makes the exchange the client's fault, and at the body's end it starts
// the upstream's own timeout and lifts the body's read deadline (net/http
// watches the idle connection with a background read while the upstream
// works: a deadline left behind would end the request).
type clientBody struct {
	io.ReadCloser
	x    *exchange
	rc   *http.ResponseController
	once sync.Once

	mu  sync.Mutex
	err error
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.once.Do(b.handedOver)
	case err != nil:
		b.mu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
	}
	return n, err
}

// handedOver runs once the transport has read the whole body.
func (b *clientBody) handedOver() {
	_ = b.rc.SetReadDeadline(time.Time{})
	b.x.timer.restart(b.x.d.Timeout)
}

// failure is the first read error, or nil.
func (b *clientBody) failure() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// upstreamTimer is the upstream timeout of one attempt on the net/http
// path. While the body streams it runs for the body's timeout plus the
// upstream's (an upstream that stops reading it is still bounded); when the
// body has been handed over it restarts with the upstream's timeout alone.
// The transport's goroutine restarts it while the handler's stops it, hence
// the lock.
type upstreamTimer struct {
	mu    sync.Mutex
	t     *time.Timer
	armed bool // running for this attempt
	fired bool
}

func (u *upstreamTimer) start(d time.Duration, expire func()) {
	u.mu.Lock()
	u.t = time.AfterFunc(d, expire)
	u.armed = true
	u.mu.Unlock()
}

// restart runs the timer again for d from now, unless it was stopped or
// has fired.
func (u *upstreamTimer) restart(d time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.armed {
		return
	}
	if !u.t.Stop() {
		u.armed, u.fired = false, true
		return
	}
	u.t.Reset(d)
}

// stop stops the timer and reports whether it had fired.
func (u *upstreamTimer) stop() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.armed {
		u.armed = false
		if !u.t.Stop() {
			u.fired = true
		}
	}
	return u.fired
}
