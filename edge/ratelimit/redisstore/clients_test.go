package redisstore

import (
	"testing"
	"time"

	"github.com/contentguard/contentguard/edge/ratelimit"
)

// TestClientsOnePerURL: one store per URL however often it is asked for,
// sharing the budget; a bad URL is an error; Close lets a later Get connect
// afresh.
func TestClientsOnePerURL(t *testing.T) {
	s := startRedis(t)
	var c Clients
	url := "redis://" + s.Addr() + "/0"
	a, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Get(url)
	if err != nil || a != b {
		t.Fatalf("second Get: %v, same store %v", err, a == b)
	}
	l := ratelimit.Limit{Rate: 1, Per: time.Hour, Burst: 1}
	if r, err := a.Allow(ctx, "k", l, time.Now()); err != nil || !r.Allowed {
		t.Fatalf("first: %+v %v", r, err)
	}
	if r, err := b.Allow(ctx, "k", l, time.Now()); err != nil || r.Allowed {
		t.Fatalf("second spends the same budget: %+v %v", r, err)
	}
	if _, err := c.Get("http://not-redis"); err == nil {
		t.Fatal("a non-redis URL was accepted")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Allow(ctx, "k", l, time.Now()); err == nil {
		t.Fatal("a closed client still answered")
	}
	d, err := c.Get(url)
	if err != nil || d == a {
		t.Fatalf("Get after Close: %v, reused the closed store %v", err, d == a)
	}
}
