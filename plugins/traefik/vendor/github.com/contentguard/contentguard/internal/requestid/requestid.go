// Package requestid validates incoming request IDs and generates new ones
// (RFC 9562 UUIDv7 or UUIDv4).
//
// An incoming ID is well-formed when it is 1..MaxLen bytes of
// [A-Za-z0-9._:-]: nothing that could split a header (CR, LF), hide in a log
// line (spaces, control characters) or be rendered differently by another
// system (non-ASCII). Anything else is replaced by a generated ID.
//
// It is the one place of the request-ID rules: the engine (package edge),
// the Kong plugin and telemetry's middleware all use it, and it depends on
// none of them. It runs under the Yaegi interpreter (Traefik plugin):
// standard library only, no generics.
package requestid

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/contentguard/contentguard/internal/httpsyntax"
)

// MaxLen is the longest request ID that Valid accepts, in bytes.
const MaxLen = 128

// Valid reports whether id is 1..MaxLen bytes of [A-Za-z0-9._:-].
func Valid(id string) bool {
	n := len(id)
	if n == 0 || n > MaxLen {
		return false
	}
	// A precomputed byte filter, not a byte loop: one call into compiled
	// code under Yaegi, and no set-up per call compiled.
	return len(idFilter.Replace(id)) == n
}

// idFilter drops every byte that may not appear in a request ID
// ([A-Za-z0-9._:-]). Built once, never changed.
var idFilter = httpsyntax.NewFilter("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-")

// Generator returns a new request ID on every call. Generators returned by
// ForFormat are safe for concurrent use.
type Generator func() string

// ForFormat returns the generator for a policy's requestID.format: "uuidv7"
// (also the default for "") or "uuidv4". A "uuidv7" generator is monotonic:
// see V7Generator.
func ForFormat(format string) (Generator, error) {
	// A func literal, not NewV4 itself: Yaegi v0.16.1 cannot return a
	// package-level function as a named func type (reflect.Set panics).
	switch format {
	case "", "uuidv7":
		g := &V7Generator{}
		return g.New, nil
	case "uuidv4":
		return func() string { return NewV4() }, nil
	}
	return nil, fmt.Errorf("requestid: unknown format %q (want \"uuidv7\" or \"uuidv4\")", format)
}

// Resolve picks the ID for a request. A well-formed incoming ID is kept only
// when the policy trusts incoming IDs; otherwise (absent, malformed or not
// trusted) gen makes a new one and generated is true. A nil gen means NewV7.
func Resolve(incoming string, trust bool, gen Generator) (id string, generated bool) {
	if trust && Valid(incoming) {
		return incoming, false
	}
	if gen == nil {
		return NewV7(), true
	}
	return gen(), true
}

// NewV4 returns a random UUID (RFC 9562 §5.4) in its 36-character form.
func NewV4() string {
	var u [16]byte
	randomBytes(u[:])
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // variant 10
	return format(&u)
}

// NewV7 returns a time-ordered UUID (RFC 9562 §5.7): 48 bits of Unix time in
// milliseconds, version 7, variant 10 and 74 bits from crypto/rand. IDs from
// different milliseconds sort by time as strings; within one millisecond
// their order is random. Use a V7Generator for strict monotonicity.
func NewV7() string {
	var u [16]byte
	randomBytes(u[6:])
	return format(encodeV7(&u, time.Now().UnixMilli()))
}

// V7Generator generates UUIDv7s that strictly increase, as strings and as
// bytes, for the life of the generator — also within one millisecond and
// when the wall clock steps back.
//
// It follows RFC 9562 §6.2 method 2 ("monotonic random"): the 74 bits after
// the timestamp are one counter. A new millisecond starts it at a random
// value; another ID in the same (or an earlier) millisecond adds a random
// increment of 1..2^32 to the previous value, so IDs stay unguessable. If the
// counter would overflow, the timestamp is advanced by one millisecond, as
// §6.2 allows. The zero value is ready to use.
type V7Generator struct {
	mu     sync.Mutex
	lastMs int64
	hi     uint64 // upper 12 counter bits (rand_a)
	lo     uint64 // lower 62 counter bits (rand_b)

	// entropy is crypto/rand output read in blocks and spent 16 bytes an
	// ID, under mu: one getrandom call serves 32 IDs instead of one. Bytes
	// are never reused (spent is the first unspent byte).
	entropy [512]byte
	spent   int
}

const (
	loBits = 62
	loMask = 1<<loBits - 1
	hiMask = 1<<12 - 1
)

// New returns the next UUIDv7 of g.
//
// It is written for the Traefik plugin's interpreter as well, where every
// call costs: one clock read, one lock, the counter kept in g, and the
// text made by one hex encoding.
func (g *V7Generator) New() string {
	now := time.Now().UnixMilli()
	g.mu.Lock()
	if g.spent == 0 || g.spent+16 > len(g.entropy) {
		randomBytes(g.entropy[:])
		g.spent = 0
	}
	r := g.entropy[g.spent : g.spent+16]
	g.spent += 16
	if now > g.lastMs {
		g.lastMs = now
		g.hi = uint64(binary.BigEndian.Uint16(r[4:6])) & hiMask
		g.lo = binary.BigEndian.Uint64(r[8:16]) & loMask
	} else {
		// Same or earlier millisecond: step the counter by 1..2^32, taken
		// from r[0:4] (a new millisecond uses r[4:], so no random bits
		// are shared).
		g.lo += uint64(binary.BigEndian.Uint32(r[0:4])) + 1
		if g.lo > loMask {
			carry(g, r)
		}
	}
	var u [16]byte
	binary.BigEndian.PutUint64(u[0:8], uint64(g.lastMs)<<16|0x7000|g.hi) // version 7
	binary.BigEndian.PutUint64(u[8:16], g.lo|0x8000000000000000)         // variant 10
	g.mu.Unlock()
	return format(&u)
}

// carry moves the overflow of the lower counter bits into the upper ones,
// and past them into the timestamp. A function of its own: the interpreter
// of the Traefik plugin allocates a slot per expression of a function on
// every call, and this one runs about once in 2^30 IDs.
func carry(g *V7Generator, r []byte) {
	g.lo &= loMask
	g.hi++
	if g.hi > hiMask {
		g.lastMs++
		g.hi = uint64(binary.BigEndian.Uint16(r[4:6])) & hiMask
		g.lo = binary.BigEndian.Uint64(r[8:16]) & loMask
	}
}

// encodeV7 writes the timestamp, version and variant into u, whose bytes
// 6..15 already hold the counter or random bits.
func encodeV7(u *[16]byte, ms int64) *[16]byte {
	t := uint64(ms)
	u[0] = byte(t >> 40)
	u[1] = byte(t >> 32)
	u[2] = byte(t >> 24)
	u[3] = byte(t >> 16)
	u[4] = byte(t >> 8)
	u[5] = byte(t)
	u[6] = u[6]&0x0f | 0x70 // version 7
	u[8] = u[8]&0x3f | 0x80 // variant 10
	return u
}

// randomBytes fills b from crypto/rand. Since Go 1.24 crypto/rand.Read never
// fails (the runtime aborts instead); the check guards older toolchains and
// interpreters, where a silent all-zero ID would be worse than a crash.
func randomBytes(b []byte) {
	if _, err := rand.Read(b); err != nil {
		panic("requestid: crypto/rand failed: " + err.Error())
	}
}

// format renders u in the canonical 8-4-4-4-12 lower-case form: one
// hex.Encode (compiled code under Yaegi), then the groups moved right, last
// first, to make room for the dashes.
func format(u *[16]byte) string {
	var b [36]byte
	hex.Encode(b[:32], u[:])
	copy(b[24:36], b[20:32])
	copy(b[19:23], b[16:20])
	copy(b[14:18], b[12:16])
	copy(b[9:13], b[8:12])
	b[8] = '-'
	b[13] = '-'
	b[18] = '-'
	b[23] = '-'
	return string(b[:])
}
