package sidecar

import (
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/contentguard/contentguard/edge/ratelimit"
	"github.com/contentguard/contentguard/edge/ratelimit/redisstore"
)

// redisTimeout bounds one rate-limit decision in Redis (pool wait, write
// and read together): a decision is on the request path, so a slow or dead
// Redis must fail fast into the policy's onError behaviour rather than hold
// requests. After the first such failure ratelimit.WithFallback stops asking
// Redis for every request at once (see there).
const redisTimeout = 250 * time.Millisecond

// redisStores keeps one client per Redis URL across reloads, so a reload
// neither reconnects nor leaks connections.
type redisStores struct {
	mu    sync.Mutex
	byURL map[string]*redisStore
}

type redisStore struct {
	client *redis.Client
	store  *redisstore.Store
}

func (r *redisStores) get(url string) (ratelimit.Store, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.byURL[url]; ok {
		return s.store, nil
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("sidecar: rate-limit store: %w", err)
	}
	redisstore.FailFast(opts, redisTimeout)
	client := redis.NewClient(opts)
	s := &redisStore{client: client, store: redisstore.New(client, redisstore.Options{Timeout: redisTimeout})}
	r.byURL[url] = s
	return s.store, nil
}

func (r *redisStores) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var first error
	for url, s := range r.byURL {
		if err := s.client.Close(); err != nil && first == nil {
			first = fmt.Errorf("sidecar: close redis %s: %w", url, err)
		}
		delete(r.byURL, url)
	}
	return first
}
