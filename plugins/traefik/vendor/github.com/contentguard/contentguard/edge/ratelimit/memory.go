package ratelimit

import (
	"context"
	"crypto/sha256"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/contentguard/contentguard/edge/internal/alarm"
)

// Store keeps one GCRA state per key and decides requests against it.
// Implementations must be safe for concurrent use.
type Store interface {
	Allow(ctx context.Context, key string, l Limit, now time.Time) (Result, error)
}

// MemoryOptions configures [NewMemory].
type MemoryOptions struct {
	// MaxKeys is a hard bound on the keys held (default 1<<21), rounded up
	// to a multiple of Shards. At the bound a new key evicts an old one (see
	// [Memory]).
	MaxKeys int
	// Shards is the number of independently locked maps (default 64).
	Shards int
	// SweepInterval, when > 0, starts one goroutine that removes expired
	// keys (TAT ≤ Now()) every SweepInterval until [Memory.Close], so that
	// the keys of clients gone idle are dropped even when no new client
	// comes. Without it expired keys are removed only on insert (see
	// [Memory]). DefaultSweepInterval suits a gateway.
	SweepInterval time.Duration
	// Now is the periodic sweep's clock (default time.Now); Allow takes its
	// own now.
	Now func() time.Time
}

// DefaultSweepInterval is the periodic sweep the data planes run: an idle
// client's key lives at most its bucket's refill time plus this.
const DefaultSweepInterval = 10 * time.Second

// MaxKeyBytes is the longest key stored as it is. A longer key — a header
// or claim value the client chose — is stored as a 17-byte digest (a marker
// byte and 128 bits of its SHA-256), so that no client can make a key cost
// more memory than a short one: keys are never compared other than for
// equality, and a collision of 128-bit digests is out of reach.
const MaxKeyBytes = 64

const (
	defaultMaxKeys = 1 << 21
	defaultShards  = 64
	// minSweepLen is the shard size below which inserts never sweep.
	minSweepLen = 1024
	// evictionSamples is how many keys an insert into a full shard looks at,
	// Redis-style, to choose the one to evict.
	evictionSamples = 5
)

// Memory is an in-process [Store]: sharded maps from key to TAT.
//
// Memory stays bounded. A key whose TAT ≤ now is expired (its bucket is full,
// exactly like a key never seen) and may be dropped at any time:
//   - when an insert finds its shard grown to twice its size after the last
//     sweep, the shard drops every expired key (amortised O(1) per insert),
//     and rebuilds its map when it has shrunk to a quarter (Go maps never give
//     memory back on delete);
//   - with SweepInterval set, a goroutine sweeps every shard that often (the
//     same sweep, map rebuild included), so that the keys of clients gone
//     idle go even when no new client comes — a flood of distinct clients
//     leaves nothing behind once their buckets have refilled;
//   - when a shard is at its share of MaxKeys, an insert samples a few keys
//     and evicts the one with the smallest TAT — an expired key if sampled,
//     otherwise the key with the least debt, whose loss gives its owner the
//     fewest extra requests.
//
// Refused requests never insert a key, and no key takes more than
// MaxKeyBytes (longer ones are stored as digests), so the store's memory is
// bounded by MaxKeys times the cost of one key: docs/benchmarks-ratelimit.md
// measures it (about 80 bytes for an IPv4 key, at most 125 for any).
type Memory struct {
	shards   []memoryShard
	perShard int
	seed     maphash.Seed // picks a key's shard
	now      func() time.Time

	alarm   *alarm.Alarm // the sweeper's sleep; Close stops it
	stopped chan struct{}
	sweeps  atomic.Int64 // periodic sweeps done (tests wait on it)
}

type memoryShard struct {
	mu      sync.Mutex
	tats    map[string]int64 // key → TAT, µs since 1970
	sweepAt int              // len(tats) at which the next insert sweeps
	peak    int              // the largest len(tats) since the map was made
}

// NewMemory returns an empty in-process store. Call Close when done if
// opts.SweepInterval > 0 (Close is always safe to call).
func NewMemory(opts MemoryOptions) *Memory {
	maxKeys := opts.MaxKeys
	if maxKeys <= 0 {
		maxKeys = defaultMaxKeys
	}
	shards := opts.Shards
	if shards <= 0 {
		shards = defaultShards
	}
	if shards > maxKeys {
		shards = maxKeys
	}
	m := &Memory{
		shards:   make([]memoryShard, shards),
		perShard: (maxKeys + shards - 1) / shards,
		seed:     maphash.MakeSeed(),
		now:      opts.Now,
		alarm:    alarm.New(nil),
		stopped:  make(chan struct{}),
	}
	if m.now == nil {
		m.now = time.Now
	}
	for i := 0; i < len(m.shards); i++ {
		m.shards[i].tats = make(map[string]int64)
		m.shards[i].sweepAt = minSweepLen
	}
	if opts.SweepInterval > 0 {
		go m.sweepEvery(opts.SweepInterval)
	} else {
		close(m.stopped)
	}
	return m
}

// Close stops the periodic sweeper, if any, and waits for it to exit. The
// store keeps working after Close, sweeping on insert only.
func (m *Memory) Close() {
	m.alarm.Stop()
	<-m.stopped
}

// Len is the number of keys held, expired ones included.
func (m *Memory) Len() int {
	n := 0
	for i := 0; i < len(m.shards); i++ {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.tats)
		s.mu.Unlock()
	}
	return n
}

// Allow decides one request for key at now. It fails only for a limit that
// does not validate or a now outside 1970…2155.
func (m *Memory) Allow(ctx context.Context, key string, l Limit, now time.Time) (Result, error) {
	interval, burst, problem := limitMicros(l.Rate, l.Per, l.Burst)
	nowMicros := now.UnixMicro()
	if problem != "" || nowMicros < 0 || nowMicros > maxNowMicros {
		return denyInvalid, badInput(l, now, problem)
	}
	if len(key) > MaxKeyBytes {
		key = digestKey(key)
	}
	// maphash, one native call, costs far less under Yaegi than a hash loop.
	s := &m.shards[maphash.String(m.seed, key)%uint64(len(m.shards))]
	s.mu.Lock()
	tat, found := s.tats[key]
	newTAT, r := gcraMicros(tat, nowMicros, interval, burst)
	if r.Allowed {
		if !found {
			makeRoom(s, nowMicros, m.perShard)
			key = strings.Clone(key) // do not pin a larger buffer the key was cut from
		}
		s.tats[key] = newTAT
	}
	s.mu.Unlock()
	return r, nil
}

// digestKey is what a key longer than MaxKeyBytes is stored as: a NUL byte
// (which no header value, claim or address key starts with) and the first
// 16 bytes of its SHA-256.
func digestKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	var b [17]byte
	copy(b[1:], sum[:16])
	return string(b[:])
}

// makeRoom runs before a new key is inserted into s (locked): it sweeps when
// the shard has doubled since the last sweep and evicts when it is full.
func makeRoom(s *memoryShard, now int64, capacity int) {
	if len(s.tats) >= s.sweepAt {
		s.sweep(now)
	}
	if len(s.tats) < capacity {
		return
	}
	// Full of live keys: evict the smallest TAT among a few sampled ones. Map
	// iteration starts at a random position, which makes the sample random.
	victim, victimTAT, n := "", int64(0), 0
	for k, tat := range s.tats {
		if n == 0 || tat < victimTAT {
			victim, victimTAT = k, tat
		}
		n++
		if n == evictionSamples {
			break
		}
	}
	delete(s.tats, victim)
}

// sweep drops every expired key of s (locked) and schedules the next sweep
// for when the shard has doubled again.
func (s *memoryShard) sweep(now int64) {
	if len(s.tats) > s.peak {
		s.peak = len(s.tats)
	}
	for k, tat := range s.tats {
		if tat <= now {
			delete(s.tats, k)
		}
	}
	if len(s.tats) < s.peak/4 {
		// Go maps keep their buckets after deletes: copy the survivors into a
		// right-sized map so a past flood of keys does not hold memory forever.
		fresh := make(map[string]int64, len(s.tats))
		for k, tat := range s.tats {
			fresh[k] = tat
		}
		s.tats = fresh
		s.peak = len(fresh)
	}
	s.sweepAt = 2 * len(s.tats)
	if s.sweepAt < minSweepLen {
		s.sweepAt = minSweepLen
	}
}

// sweepEvery sweeps all shards by the store's clock every interval until
// Close.
func (m *Memory) sweepEvery(every time.Duration) {
	defer close(m.stopped)
	for m.alarm.Sleep(every) {
		m.sweepAll(m.now())
		m.sweeps.Add(1)
	}
}

// sweepAll drops every key expired at now, one shard at a time.
func (m *Memory) sweepAll(now time.Time) {
	nowMicros := now.UnixMicro()
	for i := 0; i < len(m.shards); i++ {
		s := &m.shards[i]
		s.mu.Lock()
		s.sweep(nowMicros)
		s.mu.Unlock()
	}
}
