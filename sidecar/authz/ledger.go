package authz

import (
	"container/list"
	"sync"
	"time"
)

// ledger remembers, per instance, the nonces of rejection keys: issued here
// (Pending counts them until rendered) and rendered here (a key renders
// once per instance). It is bounded: the oldest entries go first when full,
// and expired ones whenever an entry is added. Forgetting an issued key
// loses nothing (the key holds the rejection); forgetting a rendered one
// lets it render once more before it expires, which answers the same.
type ledger struct {
	mu     sync.Mutex
	max    int
	byKey  map[string]*list.Element
	order  *list.List // of *ledgerEntry, oldest first
	issued int        // entries not rendered
}

type ledgerEntry struct {
	nonce    string
	expires  time.Time
	rendered bool
}

func newLedger(max int) *ledger {
	return &ledger{max: max, byKey: map[string]*list.Element{}, order: list.New()}
}

// issue records a key issued here.
func (l *ledger) issue(nonce string, expires, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.add(nonce, expires, now, false)
}

// render reports whether the key may render here (it has not yet), and
// records that it has.
func (l *ledger) render(nonce string, expires, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.byKey[nonce]; ok {
		le := e.Value.(*ledgerEntry)
		if le.rendered {
			return false
		}
		le.rendered = true
		l.issued--
		return true
	}
	l.add(nonce, expires, now, true)
	return true
}

// add inserts an entry (l.mu held), first dropping expired entries and,
// when full, the oldest.
func (l *ledger) add(nonce string, expires, now time.Time, rendered bool) {
	for e := l.order.Front(); e != nil; e = l.order.Front() {
		le := e.Value.(*ledgerEntry)
		if now.Before(le.expires) && len(l.byKey) < l.max {
			break
		}
		l.drop(e)
	}
	l.byKey[nonce] = l.order.PushBack(&ledgerEntry{nonce: nonce, expires: expires, rendered: rendered})
	if !rendered {
		l.issued++
	}
}

func (l *ledger) drop(e *list.Element) {
	le := e.Value.(*ledgerEntry)
	l.order.Remove(e)
	delete(l.byKey, le.nonce)
	if !le.rendered {
		l.issued--
	}
}

// issuedCount is the number of keys issued here, not rendered here, and
// not expired at now.
func (l *ledger) issuedCount(now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for e := l.order.Front(); e != nil && !now.Before(e.Value.(*ledgerEntry).expires); e = l.order.Front() {
		l.drop(e)
	}
	return l.issued
}
