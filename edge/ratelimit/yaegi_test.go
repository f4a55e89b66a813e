package ratelimit_test

import (
	"strconv"
	"testing"

	"github.com/contentguard/contentguard/internal/yaegitest"
)

// TestUnderYaegi runs the package in the Yaegi interpreter, as the Traefik
// plugin does, and checks real outcomes: the 3-per-hour example through the
// memory store, a refusal's headers, IPv6 grouping and the fallback.
func TestUnderYaegi(t *testing.T) {
	i := yaegitest.New(t, yaegitest.Package("github.com/contentguard/contentguard/edge/ratelimit", "."),
		yaegitest.Package("github.com/contentguard/contentguard/edge/internal/alarm", "../internal/alarm"))
	yaegitest.Eval(t, i, `
import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/contentguard/contentguard/edge/ratelimit"
)

type failing struct{}

func (failing) Allow(ctx context.Context, key string, l ratelimit.Limit, now time.Time) (ratelimit.Result, error) {
	return ratelimit.Result{}, errors.New("down")
}

func run() string {
	m := ratelimit.NewMemory(ratelimit.MemoryOptions{MaxKeys: 1000, Shards: 4})
	defer m.Close()
	l := ratelimit.Limit{Rate: 3, Per: time.Hour, Burst: 3}
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	out := ""
	var last ratelimit.Result
	for _, at := range []time.Duration{0, 0, 0, 0, 19 * time.Minute, 20 * time.Minute, 20 * time.Minute} {
		r, err := m.Allow(context.Background(), "k", l, t0.Add(at))
		if err != nil {
			return err.Error()
		}
		out += fmt.Sprintf("%v/%d/%s ", r.Allowed, r.Remaining, r.RetryAfter)
		last = r
	}
	out += fmt.Sprint(ratelimit.Headers(ratelimit.StyleBoth, last)) + " "
	out += ratelimit.IPKey(netip.MustParseAddr("2001:db8:1:2:3:4:5:6")) + " "
	fallbacks := 0
	s := ratelimit.WithFallback(failing{}, m, ratelimit.OnErrorDeny, func(err error) { fallbacks++ })
	r, err := s.Allow(context.Background(), "x", l, t0)
	out += fmt.Sprintf("%v/%s/%d/%v/%v", r.Allowed, r.RetryAfter, fallbacks, err, r.StoreDown)
	long := strings.Repeat("z", ratelimit.MaxKeyBytes+1)
	hour := ratelimit.Limit{Rate: 1, Per: time.Hour}
	first, _ := m.Allow(context.Background(), long, hour, t0)
	second, _ := m.Allow(context.Background(), long, hour, t0)
	other, _ := m.Allow(context.Background(), long+"x", hour, t0)
	out += fmt.Sprintf(" long:%v/%v/%v", first.Allowed, second.Allowed, other.Allowed)

	// Two stores sweeping at once, by their own clocks, then closed.
	later := func() time.Time { return t0.Add(time.Hour) }
	a := ratelimit.NewMemory(ratelimit.MemoryOptions{SweepInterval: time.Millisecond, Now: later})
	b := ratelimit.NewMemory(ratelimit.MemoryOptions{SweepInterval: time.Millisecond, Now: later})
	second1 := ratelimit.Limit{Rate: 1, Per: time.Second}
	a.Allow(context.Background(), "gone", second1, t0)
	b.Allow(context.Background(), "gone", second1, t0)
	deadline := time.Now().Add(10 * time.Second)
	for (a.Len() != 0 || b.Len() != 0) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	out += fmt.Sprintf(" swept:%d/%d", a.Len(), b.Len())
	a.Close()
	b.Close()
	return out
}
`)
	v := yaegitest.Eval(t, i, "run()")
	want := "true/2/0s true/1/0s true/0/0s false/0/20m0s false/0/1m0s true/0/0s false/0/20m0s " +
		"[[RateLimit-Limit 3] [RateLimit-Remaining 0] [RateLimit-Reset 3600] [X-RateLimit-Limit 3] [X-RateLimit-Remaining 0] [X-RateLimit-Reset 3600] [Retry-After 1200]] " +
		"2001:db8:1:2::/64 false/1s/1/<nil>/true long:true/false/true swept:0/0"
	if got := v.String(); got != want {
		t.Fatalf("under Yaegi:\n got %s\nwant %s", got, want)
	}
}

// BenchmarkUnderYaegi measures one interpreted memory-store decision plus
// its headers, as the Traefik plugin would run them (1 key, 1000 keys).
func BenchmarkUnderYaegi(b *testing.B) {
	i := yaegitest.New(b, yaegitest.Package("github.com/contentguard/contentguard/edge/ratelimit", "."),
		yaegitest.Package("github.com/contentguard/contentguard/edge/internal/alarm", "../internal/alarm"))
	yaegitest.Eval(b, i, `
import (
	"context"
	"strconv"
	"time"

	"github.com/contentguard/contentguard/edge/ratelimit"
)

var (
	m    = ratelimit.NewMemory(ratelimit.MemoryOptions{})
	l    = ratelimit.Limit{Rate: 100, Per: time.Minute, Burst: 20}
	now  = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	dst  = make([][2]string, 0, 8)
	keys = makeKeys()
)

func makeKeys() []string {
	out := make([]string, 1000)
	for i := 0; i < len(out); i++ {
		out[i] = "ip:10.0." + strconv.Itoa(i)
	}
	return out
}

func loop(n, spread int) {
	for i := 0; i < n; i++ {
		r, _ := m.Allow(context.Background(), keys[i%spread], l, now)
		dst = ratelimit.AppendHeaders(dst[:0], ratelimit.StyleIETF, r)
	}
}
`)
	v := yaegitest.Eval(b, i, "loop")
	loop := v.Interface().(func(int, int))
	for _, spread := range []int{1, 1000} {
		b.Run("keys="+strconv.Itoa(spread), func(b *testing.B) {
			b.ReportAllocs()
			loop(b.N, spread)
		})
	}
}
