package auth

import (
	"sync"
	"time"
)

// tokenCache remembers verified tokens by the SHA-256 of the token. It is
// split into shards, each a map under its own lock, so concurrent hits rarely
// contend. Capacity is a hard bound: a full shard evicts before inserting,
// preferring an entry that is already dead, else whichever comes first in Go's
// randomised map iteration (random eviction — no LRU bookkeeping on the hit
// path, and hit rates within a few percent of LRU for skewed workloads).
type tokenCache struct {
	shards []*cacheShard
}

type cacheShard struct {
	mu      sync.RWMutex
	entries map[[32]byte]*cacheEntry
	limit   int
}

// cacheEntry is one verified token. Entries are immutable once stored.
type cacheEntry struct {
	id       Identity
	notAfter time.Time // exp + skew: refused from this instant on
	prov     *provider
	gen      int64 // provider key-set generation it was verified under
}

const (
	maxCacheShards = 16
	// evictionProbes is how many entries a full shard inspects looking for
	// a dead one before evicting the first it saw.
	evictionProbes = 4
)

func newTokenCache(size int) *tokenCache {
	n := maxCacheShards
	if size < n {
		n = size
	}
	c := &tokenCache{shards: make([]*cacheShard, n)}
	for i := 0; i < n; i++ {
		limit := size / n
		if i < size%n {
			limit++
		}
		c.shards[i] = &cacheShard{entries: make(map[[32]byte]*cacheEntry), limit: limit}
	}
	return c
}

// cached returns the cache's entry for a token if the token is still
// unexpired at now and its provider's keys have not changed since it was
// verified, else nil. (A function with the shard and the check inline: it
// is on the path of nearly every request, interpreted in Traefik.)
func cached(c *tokenCache, sum *[32]byte, now time.Time) *cacheEntry {
	s := c.shards[int(sum[0])%len(c.shards)]
	s.mu.RLock()
	e := s.entries[*sum]
	s.mu.RUnlock()
	if e == nil || !now.Before(e.notAfter) || e.prov.gen.Load() != e.gen {
		return nil
	}
	return e
}

func alive(e *cacheEntry, now time.Time) bool {
	return now.Before(e.notAfter) && e.prov.gen.Load() == e.gen
}

// put stores a verified token, evicting one entry if the shard is full.
func cachePut(c *tokenCache, sum *[32]byte, e *cacheEntry, now time.Time) {
	s := c.shards[int(sum[0])%len(c.shards)]
	s.mu.Lock()
	if _, exists := s.entries[*sum]; !exists && len(s.entries) >= s.limit {
		evictOneLocked(s, now)
	}
	s.entries[*sum] = e
	s.mu.Unlock()
}

func evictOneLocked(s *cacheShard, now time.Time) {
	var victim [32]byte
	probes := 0
	for k, e := range s.entries {
		if probes == 0 {
			victim = k
		}
		if !alive(e, now) {
			victim = k
			break
		}
		probes++
		if probes >= evictionProbes {
			break
		}
	}
	delete(s.entries, victim)
}
