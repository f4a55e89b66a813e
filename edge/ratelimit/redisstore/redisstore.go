// Package redisstore is a [ratelimit.Store] kept in Redis, so that every
// gateway replica (Kong, Traefik, sidecars) spends from one budget per key.
//
// Each decision is one atomic Lua script run: read the key's TAT, apply GCRA,
// write the new TAT with an expiry for when the bucket is full again (a full
// bucket is the same as no key, so idle keys vanish by themselves). The
// script reads the clock with Redis's TIME, so gateways whose clocks disagree
// still share one consistent budget; the now passed to Allow is ignored.
//
// The script only decides. It returns the TAT it found and the time it used,
// and Allow derives the Result with [ratelimit.GCRA] from those same two
// numbers, so both stores share one definition of the maths; Allow reports an
// error if the script's decision ever differs from GCRA's.
//
// Native only: this package imports go-redis and must not be used by code
// that runs under Yaegi.
package redisstore

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/contentguard/contentguard/edge/ratelimit"
)

// gcraScript is GCRA (see package ratelimit) on microseconds.
//
//	KEYS[1]  the bucket's key
//	ARGV[1]  T, the emission interval in µs (≥ 1)
//	ARGV[2]  B, the burst
//	returns  {allowed (0/1), TAT found (µs, 0 = none), now (µs)}
//
// Lua numbers are float64: exact for integers below 2^53, and ratelimit.Limit
// validation keeps now + B·T there. string.format('%.0f') writes numbers
// as plain integers, never in exponent notation.
const gcraScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local found = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local tat = found
if tat < now then tat = now end
if tat > now + burst * interval then tat = now + burst * interval end
local new_tat = tat + interval
if new_tat - burst * interval > now then
  return {0, found, now}
end
local ttl_ms = math.ceil((new_tat - now) / 1000)
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', string.format('%.0f', ttl_ms))
return {1, found, now}
`

// Options configures [New].
type Options struct {
	// Prefix is put before every key (default "cg:rl:").
	Prefix string
	// Timeout, when > 0, bounds each decision as a whole: the wait for a
	// pooled connection, the write and the read together, so that a Redis
	// that hangs costs a decision no more than Timeout, not a pool wait plus
	// a read timeout. The client must honour context deadlines (see
	// [FailFast]).
	//
	// Decisions waiting together also fail together. Redis runs one command
	// at a time: when the oldest decision still waiting has had no answer,
	// the ones sent after it will not have one either. So a decision's
	// deadline is Timeout after the start of the oldest decision in flight
	// (its own start when none is): when Redis stops answering, every
	// decision waiting on it fails one Timeout after the first of them was
	// sent, instead of each one Timeout after its own start.
	Timeout time.Duration
}

// Store is a Redis-backed [ratelimit.Store].
type Store struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration
	script  *redis.Script
	waiting inflight
}

// inflight keeps the start times of the decisions waiting on Redis, oldest
// first (decisions start in time order, so appending keeps the order).
type inflight struct {
	mu    sync.Mutex
	order list.List // of time.Time
}

// add records a decision starting at start and returns its element and the
// start of the oldest decision in flight, itself included.
func (w *inflight) add(start time.Time) (*list.Element, time.Time) {
	w.mu.Lock()
	e := w.order.PushBack(start)
	oldest := w.order.Front().Value.(time.Time)
	w.mu.Unlock()
	if oldest.After(start) { // a clock step backwards: never extend
		oldest = start
	}
	return e, oldest
}

func (w *inflight) remove(e *list.Element) {
	w.mu.Lock()
	w.order.Remove(e)
	w.mu.Unlock()
}

// FailFast sets the client options that keep a rate-limit decision on the
// request path short when Redis is slow or gone: timeout for dialling, each
// read and write, and the pool wait; no retries (the policy's onError
// decides at once instead); and context deadlines honoured, so that
// Options.Timeout bounds a decision as a whole.
func FailFast(opts *redis.Options, timeout time.Duration) {
	opts.DialTimeout = 2 * timeout
	opts.ReadTimeout = timeout
	opts.WriteTimeout = timeout
	opts.PoolTimeout = timeout
	opts.MaxRetries = -1
	opts.DialerRetries = 1
	opts.ContextTimeoutEnabled = true
}

// New returns a Store using client. The script is loaded on first use
// (EVALSHA, falling back to EVAL when Redis does not have it cached).
func New(client redis.UniversalClient, opts Options) *Store {
	prefix := opts.Prefix
	if prefix == "" {
		prefix = "cg:rl:"
	}
	return &Store{client: client, prefix: prefix, timeout: opts.Timeout, script: redis.NewScript(gcraScript)}
}

// Allow decides one request for key by Redis's clock; now is ignored (see
// the package comment). It fails when Redis does, or for a limit that does
// not validate; wrap the store with [ratelimit.WithFallback] to decide what
// happens then.
func (s *Store) Allow(ctx context.Context, key string, l ratelimit.Limit, _ time.Time) (ratelimit.Result, error) {
	if s.timeout > 0 {
		e, oldest := s.waiting.add(time.Now())
		defer s.waiting.remove(e)
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, oldest.Add(s.timeout))
		defer cancel()
	}
	d, err := s.decide(ctx, key, l)
	if err != nil {
		return ratelimit.Result{Allowed: false, RetryAfter: time.Second}, err
	}
	return d.result, nil
}

// decision is one script run: what it found and decided, and the Result.
type decision struct {
	allowed    bool
	found, now int64 // µs since 1970; found 0 = no key
	result     ratelimit.Result
}

func (s *Store) decide(ctx context.Context, key string, l ratelimit.Limit) (decision, error) {
	if err := l.Validate(); err != nil {
		return decision{}, fmt.Errorf("redisstore: limit: %w", err)
	}
	interval := int64(l.Interval() / time.Microsecond)
	reply, err := s.script.Run(ctx, s.client, []string{s.prefix + key}, interval, l.BurstSize()).Int64Slice()
	if err != nil {
		return decision{}, fmt.Errorf("redisstore: rate limit script for %q: %w", key, err)
	}
	if len(reply) != 3 {
		return decision{}, fmt.Errorf("redisstore: rate limit script for %q: %d values returned, want 3", key, len(reply))
	}
	d := decision{allowed: reply[0] == 1, found: reply[1], now: reply[2]}
	var tat time.Time
	if d.found != 0 {
		tat = time.UnixMicro(d.found)
	}
	_, d.result = ratelimit.GCRA(tat, time.UnixMicro(d.now), l)
	if d.result.Allowed != d.allowed {
		return decision{}, fmt.Errorf("redisstore: script decided allowed=%v but GCRA says %v (tat %d, now %d)", d.allowed, d.result.Allowed, d.found, d.now)
	}
	return d, nil
}
