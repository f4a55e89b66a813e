package kong

import (
	"crypto/rand"
	"encoding/binary"
	"strconv"
	"sync"
	"time"

	"github.com/contentguard/contentguard/edge"
)

// pending is an allowed request between its Access and its Log phase: the
// decision holds the circuit breaker's ticket, which only Observe on the
// engine that decided may hand back.
type pending struct {
	engine *edge.Engine
	d      edge.Decision
	method string
	start  time.Time
}

// inflight holds the pending requests of a node, by the key Access passes to
// Log in kong.ctx.shared. It is bounded: it keeps the newest cap entries,
// and the entry the next one displaces is handed back for release (its Log
// never came: Kong lost the request, or it ran for longer than cap others
// took to arrive).
//
// Keys count up from a random start, so that a Log phase meant for an
// earlier plugin-server process (Kong restarts it when it dies) finds
// nothing rather than another request's ticket.
type inflight struct {
	mu      sync.Mutex
	next    uint64
	ring    []uint64 // ring[k%cap] is 1 + the key of the entry put k-th; 0 is empty
	entries map[uint64]*pending
}

func newInflight(capacity int) *inflight {
	var seed [8]byte
	_, _ = rand.Read(seed[:]) // crypto/rand does not fail on supported platforms
	return &inflight{
		next:    binary.LittleEndian.Uint64(seed[:]) >> 1,
		ring:    make([]uint64, capacity),
		entries: make(map[uint64]*pending, capacity/16),
	}
}

// put stores p and returns its key, and the entry it displaced, if any.
func (f *inflight) put(p *pending) (key string, displaced *pending) {
	f.mu.Lock()
	k := f.next
	f.next++
	slot := &f.ring[k%uint64(len(f.ring))]
	if *slot != 0 {
		if old, ok := f.entries[*slot-1]; ok {
			delete(f.entries, *slot-1)
			displaced = old
		}
	}
	*slot = k + 1
	f.entries[k] = p
	f.mu.Unlock()
	return strconv.FormatUint(k, 36), displaced
}

// take removes and returns the entry stored under key.
func (f *inflight) take(key string) (*pending, bool) {
	k, err := strconv.ParseUint(key, 36, 64)
	if err != nil {
		return nil, false
	}
	f.mu.Lock()
	p, ok := f.entries[k]
	delete(f.entries, k)
	f.mu.Unlock()
	return p, ok
}

// len is the number of pending entries.
func (f *inflight) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.entries)
}
