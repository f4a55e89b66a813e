package cache

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/contentguard/contentguard/internal/clocktest"
	"github.com/contentguard/contentguard/internal/redistest"
)

type input struct {
	Content   string  `json:"content"`
	Threshold float64 `json:"threshold"`
}

func TestKeyHashesTheWholeInput(t *testing.T) {
	prefix := strings.Repeat("same first hundred characters ", 4) // 120 chars
	a, _ := Key("analyze", input{Content: prefix + "ending one", Threshold: 0.8})
	b, _ := Key("analyze", input{Content: prefix + "ending two", Threshold: 0.8})
	if a == b {
		t.Fatal("texts sharing their first 100 characters collide (the original's defect)")
	}
	c, _ := Key("analyze", input{Content: prefix + "ending one", Threshold: 0.5})
	d, _ := Key("quality", input{Content: prefix + "ending one", Threshold: 0.8})
	if a == c || a == d {
		t.Fatal("options or operation do not change the key")
	}
	again, _ := Key("analyze", input{Content: prefix + "ending one", Threshold: 0.8})
	if a != again || len(a) != 64 {
		t.Fatalf("key not stable hex sha256: %q %q", a, again)
	}
	if _, err := Key("x", func() {}); err == nil {
		t.Fatal("unencodable input accepted")
	}
}

func TestMemoryTTL(t *testing.T) {
	clock := clocktest.New(time.Unix(1000, 0))
	m := NewMemory(10, 300*time.Second, WithClock(clock.Now))
	ctx := context.Background()
	_ = m.Set(ctx, "k", []byte("v"))
	clock.Advance(299 * time.Second)
	if v, ok, _ := m.Get(ctx, "k"); !ok || string(v) != "v" {
		t.Fatal("entry gone before its TTL")
	}
	clock.Advance(time.Second)
	if _, ok, _ := m.Get(ctx, "k"); ok {
		t.Fatal("entry alive at its TTL")
	}
	if m.Len() != 0 {
		t.Fatal("expired entry not dropped")
	}
}

func TestMemoryLRUBound(t *testing.T) {
	m := NewMemory(2, time.Minute)
	ctx := context.Background()
	_ = m.Set(ctx, "a", []byte("1"))
	_ = m.Set(ctx, "b", []byte("2"))
	_, _, _ = m.Get(ctx, "a") // a is now the most recently used
	_ = m.Set(ctx, "c", []byte("3"))
	if _, ok, _ := m.Get(ctx, "b"); ok {
		t.Fatal("least recently used entry not evicted")
	}
	for _, k := range []string{"a", "c"} {
		if _, ok, _ := m.Get(ctx, k); !ok {
			t.Fatalf("%s evicted", k)
		}
	}
	if m.Len() != 2 {
		t.Fatalf("len %d", m.Len())
	}
	v, _, _ := m.Get(ctx, "a")
	v[0] = 'X'
	if w, _, _ := m.Get(ctx, "a"); !bytes.Equal(w, []byte("1")) {
		t.Fatal("Get exposes the stored slice")
	}
}

func TestRedisCache(t *testing.T) {
	addr := redistest.Start(t)
	client, err := NewRedisFromURL("redis://" + addr + "/0")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c := NewRedis(client, "cg:test:", time.Minute)
	ctx := context.Background()
	if _, ok, err := c.Get(ctx, "k"); ok || err != nil {
		t.Fatalf("empty cache: ok=%v err=%v", ok, err)
	}
	if err := c.Set(ctx, "k", []byte("value")); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := c.Get(ctx, "k"); !ok || err != nil || string(v) != "value" {
		t.Fatalf("got %q %v %v", v, ok, err)
	}
	ttl, err := client.TTL(ctx, "cg:test:k").Result()
	if err != nil || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("TTL in redis = %v (%v)", ttl, err)
	}
	// An unreachable Redis is an error (the caller computes), not a hit.
	dead := NewRedis(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1}), "", time.Minute)
	if _, ok, err := dead.Get(ctx, "k"); ok || err == nil {
		t.Fatalf("dead redis: ok=%v err=%v", ok, err)
	}
	if _, err := NewRedisFromURL("http://nope"); err == nil {
		t.Fatal("bad URL accepted")
	}
}
