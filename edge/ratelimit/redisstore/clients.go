package redisstore

import (
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/contentguard/contentguard/edge/ratelimit"
)

// Timeout bounds one rate-limit decision in Redis (pool wait, write and
// read together) for the stores of Clients: a decision is on the request
// path, so a slow or dead Redis must fail fast into the policy's onError
// behaviour rather than hold requests. After the first such failure
// ratelimit.WithFallback stops asking Redis for every request at once.
const Timeout = 250 * time.Millisecond

// Clients keeps one Redis client and Store per URL for the life of a data
// plane, so that a policy reload neither reconnects nor leaks connections.
// URLs come from policies, not requests. The zero value is ready to use; it
// is safe for concurrent use.
type Clients struct {
	mu    sync.Mutex
	byURL map[string]client
}

type client struct {
	rdb   *redis.Client
	store *Store
}

// Get returns the store on the Redis at url (redis:// or rediss://),
// connecting on first use with fail-fast timeouts and no retries.
func (c *Clients) Get(url string) (ratelimit.Store, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.byURL[url]; ok {
		return s.store, nil
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redisstore: %w", err)
	}
	FailFast(opts, Timeout)
	rdb := redis.NewClient(opts)
	s := client{rdb: rdb, store: New(rdb, Options{Timeout: Timeout})}
	if c.byURL == nil {
		c.byURL = make(map[string]client)
	}
	c.byURL[url] = s
	return s.store, nil
}

// Close closes every client; a later Get connects afresh.
func (c *Clients) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var first error
	for url, s := range c.byURL {
		if err := s.rdb.Close(); err != nil && first == nil {
			first = fmt.Errorf("redisstore: close %s: %w", url, err)
		}
		delete(c.byURL, url)
	}
	return first
}
