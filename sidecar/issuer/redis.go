package issuer

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Store shared by sidecar replicas, so that a refresh token
// rotated on one replica is spent on all of them and reuse is detected
// wherever it happens.
//
// Layout (prefix default "contentguard:rt:"):
//
//	<prefix>t:<hex sha256>  hash {fam, sub, kind, scope, exp (unix ms), spent}
//	<prefix>f:<family>      "0" live, "1" revoked
//
// Expiry is decided by the exp field against the issuer's clock; Redis TTLs
// (exp plus a margin) only collect garbage. Rotation and reuse detection run
// in one Lua script, so they are atomic. The script derives the family key
// from the token's hash, so a Redis Cluster needs the whole prefix in one
// hash slot: use a prefix with a hash tag, e.g. "{cg}:rt:".
type Redis struct {
	client redis.UniversalClient
	prefix string
}

// gcMargin keeps keys a little past their expiry, so that a clock skew
// between replicas never turns "expired" into "unknown" early.
const gcMargin = time.Minute

// NewRedis returns a store on client under prefix (default "contentguard:rt:").
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	if prefix == "" {
		prefix = "contentguard:rt:"
	}
	return &Redis{client: client, prefix: prefix}
}

func (r *Redis) tokenKey(h Hash) string    { return r.prefix + "t:" + hex.EncodeToString(h[:]) }
func (r *Redis) familyKey(f string) string { return r.prefix + "f:" + f }

func ttlMillis(expires, now time.Time) int64 {
	d := expires.Sub(now) + gcMargin
	if d < gcMargin {
		d = gcMargin
	}
	return d.Milliseconds()
}

// createScript: KEYS[1] token, KEYS[2] family; ARGV fam, sub, kind, scope,
// exp ms, ttl ms.
var createScript = redis.NewScript(`
redis.call('HSET', KEYS[1], 'fam', ARGV[1], 'sub', ARGV[2], 'kind', ARGV[3], 'scope', ARGV[4], 'exp', ARGV[5], 'spent', '0')
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('SET', KEYS[2], '0', 'NX')
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[6]) then redis.call('PEXPIRE', KEYS[2], ARGV[6]) end
return 1
`)

// Create implements Store.
func (r *Redis) Create(ctx context.Context, h Hash, rec Record, now time.Time) error {
	err := createScript.Run(ctx, r.client, []string{r.tokenKey(h), r.familyKey(rec.Family)},
		rec.Family, rec.Subject, rec.Kind, strings.Join(rec.Scopes, " "),
		rec.Expires.UnixMilli(), ttlMillis(rec.Expires, now)).Err()
	if err != nil {
		return fmt.Errorf("issuer: redis store: create: %w", err)
	}
	return nil
}

// rotateScript: KEYS[1] old token, KEYS[2] next token; ARGV now ms, next exp
// ms, next ttl ms, family key prefix. A spent token is checked before expiry:
// replaying a spent token is theft whether or not it has expired.
var rotateScript = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'fam', 'sub', 'kind', 'scope', 'exp', 'spent')
if not f[1] then return {'invalid'} end
local famkey = ARGV[4] .. f[1]
if redis.call('GET', famkey) ~= '0' then return {'invalid'} end
if f[6] == '1' then
  redis.call('SET', famkey, '1', 'KEEPTTL')
  return {'reused'}
end
if tonumber(f[5]) <= tonumber(ARGV[1]) then return {'invalid'} end
redis.call('HSET', KEYS[1], 'spent', '1')
redis.call('HSET', KEYS[2], 'fam', f[1], 'sub', f[2], 'kind', f[3], 'scope', f[4], 'exp', ARGV[2], 'spent', '0')
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if redis.call('PTTL', famkey) < tonumber(ARGV[3]) then redis.call('PEXPIRE', famkey, ARGV[3]) end
return {'ok', f[1], f[2], f[3], f[4], f[5]}
`)

// Rotate implements Store.
func (r *Redis) Rotate(ctx context.Context, old, next Hash, nextExpires, now time.Time) (Record, error) {
	res, err := rotateScript.Run(ctx, r.client, []string{r.tokenKey(old), r.tokenKey(next)},
		now.UnixMilli(), nextExpires.UnixMilli(), ttlMillis(nextExpires, now), r.prefix+"f:").StringSlice()
	if err != nil {
		return Record{}, fmt.Errorf("issuer: redis store: rotate: %w", err)
	}
	switch {
	case len(res) == 1 && res[0] == "reused":
		return Record{}, ErrReused
	case len(res) == 6 && res[0] == "ok":
		exp, perr := strconv.ParseInt(res[5], 10, 64)
		if perr != nil {
			return Record{}, fmt.Errorf("issuer: redis store: bad exp %q: %w", res[5], perr)
		}
		return Record{Family: res[1], Subject: res[2], Kind: res[3], Scopes: strings.Fields(res[4]), Expires: time.UnixMilli(exp)}, nil
	}
	return Record{}, ErrInvalidToken
}

// revokeScript: KEYS[1] token; ARGV family key prefix.
var revokeScript = redis.NewScript(`
local fam = redis.call('HGET', KEYS[1], 'fam')
if not fam then return 0 end
local famkey = ARGV[1] .. fam
if redis.call('EXISTS', famkey) == 0 then return 0 end
redis.call('SET', famkey, '1', 'KEEPTTL')
return 1
`)

// Revoke implements Store.
func (r *Redis) Revoke(ctx context.Context, h Hash, _ time.Time) error {
	if err := revokeScript.Run(ctx, r.client, []string{r.tokenKey(h)}, r.prefix+"f:").Err(); err != nil {
		return fmt.Errorf("issuer: redis store: revoke: %w", err)
	}
	return nil
}
