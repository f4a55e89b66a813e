// Package redisstore keeps webhook endpoints, their statistics and the
// delivery queue in Redis (a webhook.Store), so every API replica and job
// worker shares the registrations, any of them can send any delivery, and
// nothing is lost when a process dies.
//
// Keys, under a prefix ("contentguard:webhook:" by default):
//
//	eps                 zset   endpoint IDs by creation time (ms)
//	ep:<id>             hash   url, events (comma-separated), secret, created_at
//	st:<id>             hash   the endpoint's counters and last attempt
//	totals              hash   attempts, succeeded, failed, dropped
//	d:<id>              hash   one delivery: target, body, status, attempts, lease, last attempt
//	due                 zset   pending delivery IDs by next attempt (ms); a claim moves
//	                           the score to the end of its lease
//	dead:<owner>        zset   an owner's dead letters by failure time (ms)
//	dead                zset   every dead letter, for the total bound
//
// Every change is one Lua script, so a process killed between two commands
// cannot leave half a delivery. The scripts build keys from the prefix:
// this needs a single Redis (or Sentinel), not Redis Cluster. Redis holds
// secrets and payloads: treat it as trusted storage.
package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/contentguard/contentguard/backend/webhook"
)

// Options configure New. Zero values take the defaults in brackets.
type Options struct {
	Prefix string // key prefix ["contentguard:webhook:"]
	// MaxDeadLetters bounds the dead letters kept per owner [1000].
	MaxDeadLetters int
	// MaxDeadLettersTotal bounds the dead letters kept in all [100000].
	MaxDeadLettersTotal int
}

// Store is the Redis webhook.Store.
type Store struct {
	rdb  redis.UniversalClient
	opts Options
}

var _ webhook.Store = (*Store)(nil)

// New returns a store on rdb; it does not own (or close) the client.
func New(rdb redis.UniversalClient, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = "contentguard:webhook:"
	}
	if opts.MaxDeadLetters <= 0 {
		opts.MaxDeadLetters = 1000
	}
	if opts.MaxDeadLettersTotal <= 0 {
		opts.MaxDeadLettersTotal = 100000
	}
	return &Store{rdb: rdb, opts: opts}
}

func (s *Store) key(parts ...string) string { return s.opts.Prefix + strings.Join(parts, ":") }

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v string) *time.Time {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || v == "" {
		return nil
	}
	t := time.UnixMilli(n).UTC()
	return &t
}

// addEndpointScript: KEYS eps, ep; ARGV max, id, created ms, then the
// endpoint's fields as name, value pairs.
var addEndpointScript = redis.NewScript(`
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV, 4))
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
return 1`)

// AddEndpoint implements webhook.Store.
func (s *Store) AddEndpoint(ctx context.Context, e webhook.EndpointRecord, max int) error {
	n, err := addEndpointScript.Run(ctx, s.rdb, []string{s.key("eps"), s.key("ep", e.ID)},
		max, e.ID, ms(e.CreatedAt),
		"url", e.URL, "events", strings.Join(e.Events, ","), "secret", e.Secret,
		"created_at", e.CreatedAt.UTC().Format(time.RFC3339Nano)).Int()
	if err != nil {
		return fmt.Errorf("redisstore: adding endpoint: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %d endpoints", webhook.ErrRegistryFull, max)
	}
	return nil
}

// Endpoints implements webhook.Store.
func (s *Store) Endpoints(ctx context.Context) ([]webhook.EndpointRecord, error) {
	ids, err := s.rdb.ZRange(ctx, s.key("eps"), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: listing endpoints: %w", err)
	}
	hashes, err := s.hashes(ctx, "ep", ids)
	if err != nil {
		return nil, fmt.Errorf("redisstore: reading endpoints: %w", err)
	}
	out := make([]webhook.EndpointRecord, 0, len(ids))
	for i, m := range hashes {
		if len(m) == 0 {
			continue // deleted meanwhile
		}
		created, _ := time.Parse(time.RFC3339Nano, m["created_at"])
		out = append(out, webhook.EndpointRecord{
			Endpoint: webhook.Endpoint{ID: ids[i], URL: m["url"], Events: strings.Split(m["events"], ","), CreatedAt: created},
			Secret:   m["secret"],
		})
	}
	return out, nil
}

// deleteEndpointScript: KEYS eps, ep, st, dead:<id>, dead; ARGV id,
// delivery key prefix.
var deleteEndpointScript = redis.NewScript(`
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('DEL', KEYS[2], KEYS[3])
for _, id in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  redis.call('DEL', ARGV[2] .. id)
  redis.call('ZREM', KEYS[5], id)
end
redis.call('DEL', KEYS[4])
return 1`)

// DeleteEndpoint implements webhook.Store.
func (s *Store) DeleteEndpoint(ctx context.Context, id string) error {
	n, err := deleteEndpointScript.Run(ctx, s.rdb,
		[]string{s.key("eps"), s.key("ep", id), s.key("st", id), s.key("dead", id), s.key("dead")},
		id, s.key("d", "")).Int()
	if err != nil {
		return fmt.Errorf("redisstore: deleting endpoint: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %q", webhook.ErrNotFound, id)
	}
	return nil
}

// enqueueScript: KEYS due, totals; ARGV limit, delivery key prefix, then
// per delivery enqueueFields values. Returns {added, existing, dropped}.
var enqueueScript = redis.NewScript(`
local limit = tonumber(ARGV[1])
local pending = redis.call('ZCARD', KEYS[1])
local added, existing, dropped = 0, 0, 0
for i = 3, #ARGV, 10 do
  local id = ARGV[i]
  local key = ARGV[2] .. id
  if redis.call('EXISTS', key) == 1 then
    existing = existing + 1
  elseif pending >= limit then
    dropped = dropped + 1
  else
    redis.call('HSET', key, 'event_id', ARGV[i+1], 'event', ARGV[i+2], 'endpoint_id', ARGV[i+3],
      'job_id', ARGV[i+4], 'url', ARGV[i+5], 'secret', ARGV[i+6], 'body', ARGV[i+7],
      'created_at', ARGV[i+8], 'next_at', ARGV[i+9], 'status', 'pending', 'attempts', 0, 'lease', '')
    redis.call('ZADD', KEYS[1], ARGV[i+9], id)
    pending = pending + 1
    added = added + 1
  end
end
if dropped > 0 then redis.call('HINCRBY', KEYS[2], 'dropped', dropped) end
return {added, existing, dropped}`)

func (s *Store) enqueueArgs(ds []webhook.Delivery, limit int) (keys []string, args []any) {
	args = make([]any, 0, 2+10*len(ds))
	args = append(args, limit, s.key("d", ""))
	for _, d := range ds {
		secret := d.Secret
		if d.EndpointID != "" {
			secret = "" // read from the endpoint when claimed
		}
		next := d.CreatedAt
		if d.NextAttemptAt != nil {
			next = *d.NextAttemptAt
		}
		args = append(args, d.ID, d.EventID, d.Event, d.EndpointID, d.JobID, d.URL, secret, string(d.Body), ms(d.CreatedAt), ms(next))
	}
	return []string{s.key("due"), s.key("totals")}, args
}

func enqueueResult(v any, err error) (webhook.EnqueueResult, error) {
	if err != nil {
		return webhook.EnqueueResult{}, fmt.Errorf("redisstore: recording deliveries: %w", err)
	}
	n, ok := v.([]any)
	if !ok || len(n) != 3 {
		return webhook.EnqueueResult{}, fmt.Errorf("redisstore: recording deliveries: unexpected answer %v", v)
	}
	return webhook.EnqueueResult{Added: int(n[0].(int64)), Existing: int(n[1].(int64)), Dropped: int(n[2].(int64))}, nil
}

// Enqueue implements webhook.Store.
func (s *Store) Enqueue(ctx context.Context, ds []webhook.Delivery, limit int) (webhook.EnqueueResult, error) {
	if len(ds) == 0 {
		return webhook.EnqueueResult{}, nil
	}
	keys, args := s.enqueueArgs(ds, limit)
	return enqueueResult(enqueueScript.Run(ctx, s.rdb, keys, args...).Result())
}

// EnqueueTx queues the recording of ds into a caller's MULTI/EXEC
// transaction, so that it happens together with the caller's own writes
// (a job's final state and its deliveries are one step). Call the returned
// function after the transaction ran for what was recorded; pass that to
// webhook.Deliverer.Recorded.
func (s *Store) EnqueueTx(ctx context.Context, tx redis.Pipeliner, ds []webhook.Delivery, limit int) func() (webhook.EnqueueResult, error) {
	if len(ds) == 0 {
		return func() (webhook.EnqueueResult, error) { return webhook.EnqueueResult{}, nil }
	}
	keys, args := s.enqueueArgs(ds, limit)
	// EVAL, not EVALSHA: inside MULTI a missing script fails only at EXEC.
	cmd := enqueueScript.Eval(ctx, tx, keys, args...)
	return func() (webhook.EnqueueResult, error) { return enqueueResult(cmd.Result()) }
}

// SameRedis reports whether c reaches the same Redis server and database
// as the store, by writing a random key through c and reading it through
// the store. EnqueueTx needs that: a transaction runs on one server.
func (s *Store) SameRedis(ctx context.Context, c redis.Cmdable) (bool, error) {
	key, val := s.key("probe", token()), token()
	if err := c.Set(ctx, key, val, time.Minute).Err(); err != nil {
		return false, fmt.Errorf("redisstore: probing: %w", err)
	}
	defer c.Del(context.WithoutCancel(ctx), key)
	got, err := s.rdb.Get(ctx, key).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("redisstore: probing: %w", err)
	}
	return got == val, nil
}

// claimScript: KEYS due, totals; ARGV now ms, max, lease ms, key prefix,
// lease token. Returns {dropped, fields of claimed delivery 1, ...}.
var claimScript = redis.NewScript(`
local p = ARGV[4]
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local out = {0}
local dropped = 0
for n, id in ipairs(ids) do
  local key = p .. 'd:' .. id
  local d = redis.call('HMGET', key, 'endpoint_id', 'status')
  if d[2] ~= 'pending' then
    redis.call('ZREM', KEYS[1], id)
  else
    local ep = {false, false}
    if d[1] ~= '' then ep = redis.call('HMGET', p .. 'ep:' .. d[1], 'url', 'secret') end
    if d[1] ~= '' and not ep[1] then
      redis.call('DEL', key)
      redis.call('ZREM', KEYS[1], id)
      dropped = dropped + 1
    else
      redis.call('HINCRBY', key, 'attempts', 1)
      redis.call('HSET', key, 'lease', ARGV[5] .. '.' .. n)
      redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[3]), id)
      local f = redis.call('HGETALL', key)
      table.insert(f, 'id')
      table.insert(f, id)
      if ep[1] then
        table.insert(f, 'url')
        table.insert(f, ep[1])
        table.insert(f, 'secret')
        table.insert(f, ep[2])
      end
      table.insert(out, f)
    end
  end
end
if dropped > 0 then redis.call('HINCRBY', KEYS[2], 'dropped', dropped) end
out[1] = dropped
return out`)

// Claim implements webhook.Store.
func (s *Store) Claim(ctx context.Context, now time.Time, max int, lease time.Duration) ([]webhook.Delivery, int, error) {
	v, err := claimScript.Run(ctx, s.rdb, []string{s.key("due"), s.key("totals")},
		ms(now), max, lease.Milliseconds(), s.opts.Prefix, token()).Slice()
	if err != nil {
		return nil, 0, fmt.Errorf("redisstore: claiming deliveries: %w", err)
	}
	dropped := int(v[0].(int64))
	out := make([]webhook.Delivery, 0, len(v)-1)
	for _, f := range v[1:] {
		out = append(out, decode(pairs(f)))
	}
	return out, dropped, nil
}

// token is a random claim token; the script appends the claim's index.
func token() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// pairs turns a flat field, value list (later fields win) into a map.
func pairs(v any) map[string]string {
	list, _ := v.([]any)
	m := make(map[string]string, len(list)/2)
	for i := 0; i+1 < len(list); i += 2 {
		k, _ := list[i].(string)
		val, _ := list[i+1].(string)
		m[k] = val
	}
	return m
}

// decode reads a delivery hash.
func decode(m map[string]string) webhook.Delivery {
	d := webhook.Delivery{
		ID: m["id"], EventID: m["event_id"], Event: m["event"], EndpointID: m["endpoint_id"], JobID: m["job_id"],
		URL: m["url"], Secret: m["secret"], Body: []byte(m["body"]), Status: webhook.DeliveryStatus(m["status"]),
		NextAttemptAt: fromMS(m["next_at"]), LastAttemptAt: fromMS(m["last_at"]),
		LastError: m["last_error"], Lease: m["lease"],
	}
	d.Attempts, _ = strconv.Atoi(m["attempts"])
	d.LastStatus, _ = strconv.Atoi(m["last_status"])
	if t := fromMS(m["created_at"]); t != nil {
		d.CreatedAt = *t
	}
	return d
}

// settleScript: KEYS due, totals, d:<id>; ARGV key prefix, id, lease,
// delivered (1/0), retry ms or "", at ms, status, error, endpoint id,
// owner, max dead per owner, max dead in all.
var settleScript = redis.NewScript(`
local p, id = ARGV[1], ARGV[2]
local cur = redis.call('HMGET', KEYS[3], 'lease', 'status')
if cur[1] ~= ARGV[3] or cur[2] ~= 'pending' then return 0 end
local delivered, retry = ARGV[4] == '1', ARGV[5]
local final = delivered or retry == ''
redis.call('HINCRBY', KEYS[2], 'attempts', 1)
if delivered then redis.call('HINCRBY', KEYS[2], 'succeeded', 1)
elseif final then redis.call('HINCRBY', KEYS[2], 'failed', 1) end
local ep = ARGV[9]
if ep ~= '' and redis.call('EXISTS', p .. 'ep:' .. ep) == 1 then
  local sk = p .. 'st:' .. ep
  redis.call('HINCRBY', sk, 'attempts', 1)
  redis.call('HSET', sk, 'last_status', ARGV[7], 'last_error', ARGV[8], 'last_at', ARGV[6])
  if delivered then redis.call('HINCRBY', sk, 'succeeded', 1)
  elseif final then redis.call('HINCRBY', sk, 'failed', 1) end
end
if delivered then
  redis.call('DEL', KEYS[3])
  redis.call('ZREM', KEYS[1], id)
  return 1
end
redis.call('HSET', KEYS[3], 'lease', '', 'last_status', ARGV[7], 'last_error', ARGV[8], 'last_at', ARGV[6])
if retry ~= '' then
  redis.call('HSET', KEYS[3], 'next_at', retry)
  redis.call('ZADD', KEYS[1], retry, id)
  return 1
end
redis.call('HSET', KEYS[3], 'status', 'failed', 'next_at', '')
redis.call('ZREM', KEYS[1], id)
local own, all = p .. 'dead:' .. ARGV[10], p .. 'dead'
redis.call('ZADD', own, ARGV[6], id)
redis.call('ZADD', all, ARGV[6], id)
while redis.call('ZCARD', own) > tonumber(ARGV[11]) do
  local old = redis.call('ZPOPMIN', own)[1]
  redis.call('ZREM', all, old)
  redis.call('DEL', p .. 'd:' .. old)
end
while redis.call('ZCARD', all) > tonumber(ARGV[12]) do
  local old = redis.call('ZPOPMIN', all)[1]
  local o = redis.call('HMGET', p .. 'd:' .. old, 'endpoint_id', 'job_id')
  local owner = o[1]
  if not owner or owner == '' then owner = o[2] or '' end
  redis.call('ZREM', p .. 'dead:' .. owner, old)
  redis.call('DEL', p .. 'd:' .. old)
end
return 1`)

// Settle implements webhook.Store.
func (s *Store) Settle(ctx context.Context, d webhook.Delivery, o webhook.Outcome) error {
	delivered, retry := "0", ""
	if o.Delivered {
		delivered = "1"
	} else if !o.RetryAt.IsZero() {
		retry = strconv.FormatInt(ms(o.RetryAt), 10)
	}
	n, err := settleScript.Run(ctx, s.rdb, []string{s.key("due"), s.key("totals"), s.key("d", d.ID)},
		s.opts.Prefix, d.ID, d.Lease, delivered, retry, ms(o.At), o.Status, o.Error, d.EndpointID, d.Owner(),
		s.opts.MaxDeadLetters, s.opts.MaxDeadLettersTotal).Int()
	if err != nil {
		return fmt.Errorf("redisstore: recording an attempt of %s: %w", d.ID, err)
	}
	if n == 0 {
		return webhook.ErrLeaseLost
	}
	return nil
}

// DeadLetters implements webhook.Store.
func (s *Store) DeadLetters(ctx context.Context, owner string, limit int) ([]webhook.Delivery, error) {
	ids, err := s.rdb.ZRevRange(ctx, s.key("dead", owner), 0, int64(limit)-1).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: listing dead letters: %w", err)
	}
	out, err := s.load(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("redisstore: reading dead letters: %w", err)
	}
	return out, nil
}

// hashes reads the hashes <kind>:<id> of ids in one round trip; a missing
// one reads as an empty map.
func (s *Store) hashes(ctx context.Context, kind string, ids []string) ([]map[string]string, error) {
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, s.key(kind, id))
		}
		return nil
	}); err != nil {
		return nil, err
	}
	out := make([]map[string]string, len(ids))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}

// load reads deliveries by ID, skipping any that are gone.
func (s *Store) load(ctx context.Context, ids []string) ([]webhook.Delivery, error) {
	hashes, err := s.hashes(ctx, "d", ids)
	if err != nil {
		return nil, err
	}
	out := make([]webhook.Delivery, 0, len(ids))
	for i, m := range hashes {
		if len(m) == 0 {
			continue
		}
		m["id"] = ids[i]
		d := decode(m)
		if d.EndpointID != "" {
			d.Secret = ""
		}
		out = append(out, d)
	}
	return out, nil
}

// redeliverScript: KEYS due, d:<id>, dead:<owner>, dead; ARGV id, owner,
// now ms, limit. Returns 1, or -1 (no such dead letter), -2 (queue full).
var redeliverScript = redis.NewScript(`
local m = redis.call('HMGET', KEYS[2], 'status', 'endpoint_id', 'job_id')
if m[1] ~= 'failed' then return -1 end
local owner = m[2]
if owner == '' then owner = m[3] end
if owner ~= ARGV[2] then return -1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return -2 end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('HSET', KEYS[2], 'status', 'pending', 'attempts', 0, 'next_at', ARGV[3], 'lease', '')
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1`)

// Redeliver implements webhook.Store.
func (s *Store) Redeliver(ctx context.Context, owner, id string, now time.Time, limit int) (webhook.Delivery, error) {
	n, err := redeliverScript.Run(ctx, s.rdb,
		[]string{s.key("due"), s.key("d", id), s.key("dead", owner), s.key("dead")},
		id, owner, ms(now), limit).Int()
	switch {
	case err != nil:
		return webhook.Delivery{}, fmt.Errorf("redisstore: redelivering %s: %w", id, err)
	case n == -1:
		return webhook.Delivery{}, fmt.Errorf("%w: %q", webhook.ErrDeliveryNotFound, id)
	case n == -2:
		return webhook.Delivery{}, fmt.Errorf("%w: %d pending", webhook.ErrQueueFull, limit)
	}
	ds, err := s.load(ctx, []string{id})
	if err != nil || len(ds) == 0 {
		return webhook.Delivery{}, errors.Join(fmt.Errorf("redisstore: reading redelivered %s", id), err)
	}
	return ds[0], nil
}

// QueueStats implements webhook.Store.
func (s *Store) QueueStats(ctx context.Context) (webhook.QueueStats, error) {
	var pending, dead *redis.IntCmd
	var oldest *redis.ZSliceCmd
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		pending = p.ZCard(ctx, s.key("due"))
		dead = p.ZCard(ctx, s.key("dead"))
		oldest = p.ZRangeWithScores(ctx, s.key("due"), 0, 0)
		return nil
	}); err != nil {
		return webhook.QueueStats{}, fmt.Errorf("redisstore: reading queue size: %w", err)
	}
	st := webhook.QueueStats{Pending: int(pending.Val()), DeadLetters: int(dead.Val())}
	if z := oldest.Val(); len(z) == 1 {
		st.OldestDue = time.UnixMilli(int64(z[0].Score)).UTC()
	}
	return st, nil
}

// Stats implements webhook.Store.
func (s *Store) Stats(ctx context.Context) (webhook.Stats, error) {
	eps, err := s.Endpoints(ctx)
	if err != nil {
		return webhook.Stats{}, err
	}
	ids := make([]string, len(eps))
	for i, e := range eps {
		ids[i] = e.ID
	}
	counters, err := s.hashes(ctx, "st", ids)
	var t map[string]string
	if err == nil {
		t, err = s.rdb.HGetAll(ctx, s.key("totals")).Result()
	}
	if err != nil {
		return webhook.Stats{}, fmt.Errorf("redisstore: reading statistics: %w", err)
	}
	st := webhook.Stats{
		Endpoints: make([]webhook.EndpointStats, len(eps)),
		Totals: webhook.Totals{
			Attempts: atoi64(t["attempts"]), Succeeded: atoi64(t["succeeded"]),
			Failed: atoi64(t["failed"]), Dropped: atoi64(t["dropped"]),
		},
	}
	for i, e := range eps {
		m := counters[i]
		es := webhook.EndpointStats{
			ID: e.ID, URL: e.URL, Attempts: atoi64(m["attempts"]), Succeeded: atoi64(m["succeeded"]),
			Failed: atoi64(m["failed"]), LastError: m["last_error"], LastAttemptAt: fromMS(m["last_at"]),
		}
		es.LastStatus, _ = strconv.Atoi(m["last_status"])
		st.Endpoints[i] = es
	}
	return st, nil
}

func atoi64(v string) int64 {
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}
