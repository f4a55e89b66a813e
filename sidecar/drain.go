package sidecar

// The drain delay.
//
// On SIGTERM Kubernetes (and most orchestrators) stops routing new
// connections to the pod at about the time the process is told to stop, but
// clients keep the keep-alive connections they have, and keep sending on
// them. If those connections were simply closed when the listener closes,
// requests already on their way would meet a closed socket: lost, or
// retried by the client only when it knows the request is idempotent. So
// during Options.DrainDelay (with /readyz already 503):
//
//   - every answer, on both paths, says Connection: close: a client in the
//     middle of using a connection learns from the answer itself that the
//     connection ends there, and opens a new one — which the load balancer
//     sends elsewhere;
//   - connections that have been idle for drainIdleAfter are closed: their
//     clients are not in the middle of anything, and see the close long
//     before they would have sent a request into it. A connection in use is
//     never closed under a client that is about to send on it.
//
// After the delay the listener closes, and what is left is drained as
// before (Serve).

import (
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/contentguard/contentguard/sidecar/fastpath"
)

// drainIdleAfter is how long a connection must have been idle for the drain
// to close it (at most half the drain delay).
const drainIdleAfter = time.Second

// drainIdleFor is the idle time after which the drain closes a connection,
// for a drain delay of delay.
func drainIdleFor(delay time.Duration) time.Duration {
	return min(drainIdleAfter, delay/2)
}

// idleConns tracks the net/http server's idle connections and since when
// (http.Server.ConnState), so that the drain can close those idle for a
// while.
type idleConns struct {
	mu    sync.Mutex
	since map[net.Conn]time.Time
}

func newIdleConns() *idleConns { return &idleConns{since: map[net.Conn]time.Time{}} }

// track is the http.Server's ConnState hook.
func (ic *idleConns) track(c net.Conn, st http.ConnState) {
	ic.mu.Lock()
	if st == http.StateIdle {
		ic.since[c] = time.Now()
	} else {
		delete(ic.since, c)
	}
	ic.mu.Unlock()
}

// closeIdle closes the connections idle since before cutoff.
func (ic *idleConns) closeIdle(cutoff time.Time) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	for c, since := range ic.since {
		if since.Before(cutoff) {
			_ = c.Close()
			delete(ic.since, c)
		}
	}
}

// drainDelay serves for delay with every answer saying Connection: close,
// closing the connections of both paths once they have been idle for
// drainIdleFor(delay).
func (s *Server) drainDelay(delay time.Duration, fast *fastpath.Server, idle *idleConns) {
	if fast != nil {
		fast.LastCall()
	}
	// (The net/http path reads s.draining through nethttp.Sidecar.)
	idleFor := drainIdleFor(delay)
	end := time.NewTimer(delay)
	defer end.Stop()
	tick := time.NewTicker(max(idleFor/4, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-end.C:
			return
		case now := <-tick.C:
			cutoff := now.Add(-idleFor)
			if fast != nil {
				fast.CloseIdle(cutoff)
			}
			idle.closeIdle(cutoff)
		}
	}
}
