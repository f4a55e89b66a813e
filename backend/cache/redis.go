package cache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keeps entries in Redis with SET ... EX ttl, so every replica of the
// backend shares one cache and Redis does the expiry.
type Redis struct {
	client redis.UniversalClient
	prefix string
	ttl    time.Duration
}

// NewRedis uses client with keys "<prefix><sha256>" living ttl.
func NewRedis(client redis.UniversalClient, prefix string, ttl time.Duration) *Redis {
	return &Redis{client: client, prefix: prefix, ttl: ttl}
}

// Get reads key; redis.Nil is a miss, any other failure an error.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, bool, error) {
	v, err := r.client.Get(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("cache: redis get: %w", err)
	}
	return v, true, nil
}

// Set writes key with the TTL.
func (r *Redis) Set(ctx context.Context, key string, value []byte) error {
	if err := r.client.Set(ctx, r.prefix+key, value, r.ttl).Err(); err != nil {
		return fmt.Errorf("cache: redis set: %w", err)
	}
	return nil
}

// NewRedisFromURL parses a redis:// or rediss:// URL (REDIS_URL) into a
// client with bounded dial, read and write timeouts.
func NewRedisFromURL(url string) (*redis.Client, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("cache: REDIS_URL: %w", err)
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 2 * time.Second
	}
	opts.ReadTimeout = 2 * time.Second
	opts.WriteTimeout = 2 * time.Second
	return redis.NewClient(opts), nil
}
