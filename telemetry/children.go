package telemetry

import "sync"

// maxChildren bounds a Children cache; past it, lookups go to the vector
// every time. Label values are bounded anyway; this bounds the cache even
// if a caller's are not.
const maxChildren = 4096

// Children caches the children of a metric vector (counters, observers)
// under a comparable key made of their label values. WithLabelValues hashes
// the values and locks the vector on every call; a map lookup under a read
// lock costs a fraction of that, which matters on a proxy's per-request path.
// The zero value is ready to use.
type Children[K comparable, M any] struct {
	mu sync.RWMutex
	m  map[K]M
}

// Get returns the child for k, creating it with create (the vector's
// WithLabelValues) the first time.
func (c *Children[K, M]) Get(k K, create func() M) M {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = create()
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[K]M)
	}
	if len(c.m) < maxChildren {
		c.m[k] = v
	}
	c.mu.Unlock()
	return v
}
