package requestid

import (
	"encoding/hex"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestValid(t *testing.T) {
	cases := []struct {
		id   string
		want bool
	}{
		{"", false},
		{"a", true},
		{"0190a5f2-7c3e-7b1a-9c2d-3e4f5a6b7c8d", true},
		{"trace:abc.DEF_123-x", true},
		{strings.Repeat("a", MaxLen), true},
		{strings.Repeat("a", MaxLen+1), false},
		{"abc def", false},
		{"abc\r\nX-Evil: 1", false},
		{"abc\n", false},
		{"abc\x00", false},
		{"abc\t", false},
		{"caf\u00e9", false},
		{"abc/def", false},
		{"abc+def", false},
		{"abc=", false},
		{"\"quoted\"", false},
		{"a;b", false},
		{"a,b", false},
	}
	for _, c := range cases {
		if got := Valid(c.id); got != c.want {
			t.Errorf("Valid(%q) = %v, want %v", c.id, got, c.want)
		}
	}
}

// parseUUID decodes the canonical 36-character form and returns the bytes.
func parseUUID(t testing.TB, s string) [16]byte {
	t.Helper()
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		t.Fatalf("%q is not in 8-4-4-4-12 form", s)
	}
	if strings.ToLower(s) != s {
		t.Fatalf("%q is not lower case", s)
	}
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	copy(u[:], b)
	return u
}

func unixMilli(u [16]byte) int64 {
	var ms int64
	for i := 0; i < 6; i++ {
		ms = ms<<8 | int64(u[i])
	}
	return ms
}

func TestNewV7(t *testing.T) {
	before := time.Now().UnixMilli()
	id := NewV7()
	after := time.Now().UnixMilli()
	if !Valid(id) {
		t.Fatalf("NewV7() = %q is not Valid", id)
	}
	u := parseUUID(t, id)
	if v := u[6] >> 4; v != 7 {
		t.Errorf("version = %d, want 7 (%s)", v, id)
	}
	if u[8]>>6 != 2 {
		t.Errorf("variant bits = %b, want 10 (%s)", u[8]>>6, id)
	}
	if ms := unixMilli(u); ms < before || ms > after {
		t.Errorf("timestamp %d not within [%d, %d]", ms, before, after)
	}
	if NewV7() == id {
		t.Error("two NewV7 calls returned the same id")
	}
}

func TestNewV4(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := NewV4()
		u := parseUUID(t, id)
		if u[6]>>4 != 4 || u[8]>>6 != 2 {
			t.Fatalf("%s: version %d variant %b", id, u[6]>>4, u[8]>>6)
		}
		if seen[id] {
			t.Fatalf("duplicate %s", id)
		}
		seen[id] = true
	}
}

// TestV7SortsByTime: the timestamp leads, so an earlier millisecond sorts
// first however the random bits fall.
func TestV7SortsByTime(t *testing.T) {
	ms := []int64{0, 1, 255, 256, 1 << 40, 1<<48 - 2, time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC).UnixMilli()}
	sort.Slice(ms, func(i, j int) bool { return ms[i] < ms[j] })
	var prev string
	for i := 0; i < len(ms); i++ {
		var lowest, highest [16]byte
		for k := 6; k < 16; k++ {
			highest[k] = 0xff
		}
		lo := format(encodeV7(&lowest, ms[i]))
		hi := format(encodeV7(&highest, ms[i]))
		if lo >= hi {
			t.Fatalf("ms %d: %s >= %s", ms[i], lo, hi)
		}
		if prev != "" && prev >= lo {
			t.Fatalf("highest id of the previous ms %s >= lowest id of ms %d %s", prev, ms[i], lo)
		}
		if got := unixMilli(parseUUID(t, lo)); got != ms[i] {
			t.Fatalf("timestamp round trip: %d != %d", got, ms[i])
		}
		prev = hi
	}
}

func TestV7GeneratorMonotonic(t *testing.T) {
	g := &V7Generator{}
	prev := g.New()
	for i := 0; i < 20000; i++ {
		id := g.New()
		if id <= prev {
			t.Fatalf("not increasing: %s then %s", prev, id)
		}
		u := parseUUID(t, id)
		if u[6]>>4 != 7 || u[8]>>6 != 2 {
			t.Fatalf("%s: bad version/variant", id)
		}
		prev = id
	}
}

func TestV7GeneratorClockBackwards(t *testing.T) {
	g := &V7Generator{}
	first := g.New()
	// Pretend the previous ID came from a later clock reading.
	g.mu.Lock()
	g.lastMs += 60000
	g.mu.Unlock()
	a := g.New()
	b := g.New()
	if !(first < a && a < b) {
		t.Fatalf("not increasing after the clock stepped back: %s %s %s", first, a, b)
	}
	if unixMilli(parseUUID(t, b)) != unixMilli(parseUUID(t, a)) {
		t.Fatal("timestamp should stay at the last one seen while the clock is behind")
	}
}

func TestV7GeneratorCounterOverflow(t *testing.T) {
	g := &V7Generator{}
	g.New()
	g.mu.Lock()
	g.lastMs += 60000 // stay in "the same millisecond"
	ms := g.lastMs
	g.hi, g.lo = hiMask, loMask
	g.mu.Unlock()
	id := g.New()
	if got := unixMilli(parseUUID(t, id)); got != ms+1 {
		t.Fatalf("overflow should advance the timestamp to %d, got %d", ms+1, got)
	}
}

func TestV7GeneratorConcurrent(t *testing.T) {
	g := &V7Generator{}
	const workers, each = 4, 2000
	out := make([][]string, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				out[w] = append(out[w], g.New())
			}
		}(w)
	}
	wg.Wait()
	seen := make(map[string]bool, workers*each)
	for w := 0; w < workers; w++ {
		for i := 0; i < each; i++ {
			id := out[w][i]
			if seen[id] {
				t.Fatalf("duplicate %s", id)
			}
			seen[id] = true
			if i > 0 && out[w][i-1] >= id {
				t.Fatalf("worker %d not increasing: %s then %s", w, out[w][i-1], id)
			}
		}
	}
}

func TestForFormat(t *testing.T) {
	cases := []struct {
		format  string
		version byte
		wantErr bool
	}{
		{"", 7, false},
		{"uuidv7", 7, false},
		{"uuidv4", 4, false},
		{"UUIDv7", 0, true},
		{"ulid", 0, true},
	}
	for _, c := range cases {
		gen, err := ForFormat(c.format)
		if c.wantErr {
			if err == nil || !strings.Contains(err.Error(), c.format) {
				t.Errorf("ForFormat(%q) error = %v, want one naming the format", c.format, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("ForFormat(%q): %v", c.format, err)
		}
		u := parseUUID(t, gen())
		if u[6]>>4 != c.version {
			t.Errorf("ForFormat(%q) made version %d", c.format, u[6]>>4)
		}
	}
}

func TestResolve(t *testing.T) {
	gen := func() string { return "generated" }
	cases := []struct {
		incoming  string
		trust     bool
		want      string
		generated bool
	}{
		{"abc-123", true, "abc-123", false},
		{"abc-123", false, "generated", true},
		{"", true, "generated", true},
		{"bad id", true, "generated", true},
		{"a\r\nb", true, "generated", true},
		{strings.Repeat("x", MaxLen+1), true, "generated", true},
	}
	for _, c := range cases {
		id, generated := Resolve(c.incoming, c.trust, gen)
		if id != c.want || generated != c.generated {
			t.Errorf("Resolve(%q, %v) = %q, %v; want %q, %v", c.incoming, c.trust, id, generated, c.want, c.generated)
		}
	}
	id, generated := Resolve("", true, nil)
	if !generated || parseUUID(t, id)[6]>>4 != 7 {
		t.Errorf("Resolve with nil generator = %q, %v; want a fresh UUIDv7", id, generated)
	}
}

var validOracle = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

func FuzzValid(f *testing.F) {
	for _, s := range []string{"", "a", "abc-123", "a b", "a\r\nb", "caf\u00e9", strings.Repeat("z", 129), "0190a5f2-7c3e-7b1a-9c2d-3e4f5a6b7c8d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Valid(s)
		if got != validOracle.MatchString(s) {
			t.Fatalf("Valid(%q) = %v, regexp says %v", s, got, !got)
		}
		if got && (len(s) > MaxLen || strings.ContainsAny(s, "\r\n \t\x00") || strings.IndexFunc(s, func(r rune) bool { return r >= 0x80 }) >= 0) {
			t.Fatalf("Valid accepted %q", s)
		}
	})
}

func BenchmarkValid(b *testing.B) {
	id := "0190a5f2-7c3e-7b1a-9c2d-3e4f5a6b7c8d"
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if !Valid(id) {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkNewV7(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = NewV7()
	}
}

func BenchmarkV7GeneratorNew(b *testing.B) {
	g := &V7Generator{}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = g.New()
	}
}

func BenchmarkNewV4(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = NewV4()
	}
}
