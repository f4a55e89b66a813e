package redisstore

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/contentguard/contentguard/backend/webhook"
	"github.com/contentguard/contentguard/backend/webhook/storetest"
	"github.com/contentguard/contentguard/internal/redistest"
)

// TestContract runs the store contract against a real redis-server, each
// subtest under a prefix of its own.
func TestContract(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Start(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	var n atomic.Int32
	storetest.Run(t, func(*testing.T) webhook.Store {
		return New(rdb, Options{
			Prefix:         fmt.Sprintf("test%d:", n.Add(1)),
			MaxDeadLetters: storetest.MaxDeadLetters, MaxDeadLettersTotal: storetest.MaxDeadLettersTotal,
		})
	})
}
