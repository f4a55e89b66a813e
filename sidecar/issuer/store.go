package issuer

import (
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"
)

// Hash is the SHA-256 of a refresh token. Stores keep only hashes, so a
// leaked store does not leak usable tokens.
type Hash [32]byte

// HashToken hashes a refresh token as presented by a client.
func HashToken(token string) Hash { return sha256.Sum256([]byte(token)) }

// Record is what a refresh token stands for.
type Record struct {
	// Family is shared by a token and every token rotated from it; reusing
	// a spent token revokes the whole family.
	Family  string
	Subject string
	// Kind is the principal's kind: "user" (password grant).
	Kind    string
	Scopes  []string
	Expires time.Time
}

// Errors of Store.Rotate. Both answer invalid_grant; ErrReused also means the
// family is now revoked.
var (
	// ErrInvalidToken: unknown, expired, or of a revoked family.
	ErrInvalidToken = errors.New("refresh token unknown, expired or revoked")
	// ErrReused: the token was already spent; its family has been revoked.
	ErrReused = errors.New("refresh token reused; its family is revoked")
)

// Store keeps refresh-token state. Implementations must make Rotate atomic:
// two concurrent rotations of one token must see exactly one success.
type Store interface {
	// Create stores the first token of a new family.
	Create(ctx context.Context, h Hash, rec Record, now time.Time) error
	// Rotate spends old and stores next in old's family, expiring at
	// nextExpires, and returns old's record. A spent old revokes the family
	// and returns ErrReused; an unknown or expired old, or one whose family
	// is revoked, returns ErrInvalidToken.
	Rotate(ctx context.Context, old, next Hash, nextExpires, now time.Time) (Record, error)
	// Revoke revokes the family of h. Unknown tokens are not an error
	// (RFC 7009 §2.2).
	Revoke(ctx context.Context, h Hash, now time.Time) error
}

// DefaultMemoryEntries bounds the memory store.
const DefaultMemoryEntries = 100_000

// Memory is a bounded in-process Store, for a single sidecar. Spent tokens
// are kept until they expire so that reuse is detected; when the store is
// full, expired entries go first, then the oldest.
type Memory struct {
	mu       sync.Mutex
	max      int
	tokens   map[Hash]*list.Element // of *memToken
	order    *list.List             // insertion order ≈ expiry order (one TTL per issuer)
	families map[string]*memFamily
	evicted  int64
}

type memToken struct {
	hash  Hash
	rec   Record
	spent bool
}

type memFamily struct {
	revoked bool
	refs    int // tokens of the family still stored
}

// NewMemory returns a memory store holding at most maxEntries tokens
// (DefaultMemoryEntries when maxEntries <= 0).
func NewMemory(maxEntries int) *Memory {
	if maxEntries <= 0 {
		maxEntries = DefaultMemoryEntries
	}
	return &Memory{
		max:      maxEntries,
		tokens:   make(map[Hash]*list.Element),
		order:    list.New(),
		families: make(map[string]*memFamily),
	}
}

// Create implements Store.
func (m *Memory) Create(_ context.Context, h Hash, rec Record, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.families[rec.Family]
	if f == nil {
		f = &memFamily{}
		m.families[rec.Family] = f
	}
	m.insert(h, rec, f, now)
	return nil
}

// Rotate implements Store.
func (m *Memory) Rotate(_ context.Context, old, next Hash, nextExpires, now time.Time) (Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.tokens[old]
	if !ok {
		return Record{}, ErrInvalidToken
	}
	t := el.Value.(*memToken)
	f := m.families[t.rec.Family]
	if f == nil || f.revoked {
		return Record{}, ErrInvalidToken
	}
	if t.spent {
		f.revoked = true
		return Record{}, ErrReused
	}
	if !now.Before(t.rec.Expires) {
		return Record{}, ErrInvalidToken
	}
	t.spent = true
	rec := t.rec
	nrec := rec
	nrec.Expires = nextExpires
	m.insert(next, nrec, f, now)
	return rec, nil
}

// Revoke implements Store.
func (m *Memory) Revoke(_ context.Context, h Hash, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.tokens[h]; ok {
		if f := m.families[el.Value.(*memToken).rec.Family]; f != nil {
			f.revoked = true
		}
	}
	return nil
}

// Len reports how many tokens (live and spent) are stored.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.tokens)
}

// Evicted reports how many unexpired tokens were dropped because the store
// was full.
func (m *Memory) Evicted() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.evicted
}

// insert adds a token, first dropping expired ones from the front and, if
// still full, the oldest. Called with mu held.
func (m *Memory) insert(h Hash, rec Record, f *memFamily, now time.Time) {
	for e := m.order.Front(); e != nil; e = m.order.Front() {
		t := e.Value.(*memToken)
		if now.Before(t.rec.Expires) && len(m.tokens) < m.max {
			break
		}
		if now.Before(t.rec.Expires) {
			m.evicted++
		}
		m.remove(e)
	}
	if el, dup := m.tokens[h]; dup { // 256 random bits: never, but stay consistent
		m.remove(el)
	}
	f.refs++
	m.tokens[h] = m.order.PushBack(&memToken{hash: h, rec: rec})
}

func (m *Memory) remove(e *list.Element) {
	t := e.Value.(*memToken)
	m.order.Remove(e)
	delete(m.tokens, t.hash)
	if f := m.families[t.rec.Family]; f != nil {
		f.refs--
		if f.refs <= 0 {
			delete(m.families, t.rec.Family)
		}
	}
}
