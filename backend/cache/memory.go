package cache

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// Memory is an LRU cache with a per-entry time to live and a bound on the
// number of entries; the least recently used entry is evicted when full and
// an expired entry is dropped when read.
type Memory struct {
	ttl        time.Duration
	maxEntries int
	now        func() time.Time

	mu    sync.Mutex
	order *list.List // front = most recently used; values are *entry
	index map[string]*list.Element
}

type entry struct {
	key     string
	value   []byte
	expires time.Time
}

// MemoryOption adjusts a Memory cache.
type MemoryOption func(*Memory)

// WithClock replaces time.Now (tests use it to expire entries without sleeping).
func WithClock(now func() time.Time) MemoryOption { return func(m *Memory) { m.now = now } }

// NewMemory returns an empty cache keeping at most maxEntries (minimum 1)
// for ttl each (a ttl ≤ 0 means entries never expire).
func NewMemory(maxEntries int, ttl time.Duration, opts ...MemoryOption) *Memory {
	if maxEntries < 1 {
		maxEntries = 1
	}
	m := &Memory{ttl: ttl, maxEntries: maxEntries, now: time.Now, order: list.New(), index: map[string]*list.Element{}}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Get returns a copy of the live value under key.
func (m *Memory) Get(_ context.Context, key string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.index[key]
	if !ok {
		return nil, false, nil
	}
	e := el.Value.(*entry)
	if m.ttl > 0 && !m.now().Before(e.expires) {
		m.order.Remove(el)
		delete(m.index, key)
		return nil, false, nil
	}
	m.order.MoveToFront(el)
	return append([]byte(nil), e.value...), true, nil
}

// Set stores a copy of value under key, evicting the least recently used
// entry when the cache is full.
func (m *Memory) Set(_ context.Context, key string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := &entry{key: key, value: append([]byte(nil), value...), expires: m.now().Add(m.ttl)}
	if el, ok := m.index[key]; ok {
		el.Value = e
		m.order.MoveToFront(el)
		return nil
	}
	m.index[key] = m.order.PushFront(e)
	for m.order.Len() > m.maxEntries {
		last := m.order.Back()
		m.order.Remove(last)
		delete(m.index, last.Value.(*entry).key)
	}
	return nil
}

// Len returns the number of entries held, expired ones included until read.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.order.Len()
}
