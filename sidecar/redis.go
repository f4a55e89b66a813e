package sidecar

import (
	"github.com/contentguard/contentguard/edge/ratelimit"
	"github.com/contentguard/contentguard/edge/ratelimit/redisstore"
)

// redisStores keeps one Redis client per URL across reloads, so a reload
// neither reconnects nor leaks connections.
type redisStores struct{ clients redisstore.Clients }

func (r *redisStores) get(url string) (ratelimit.Store, error) { return r.clients.Get(url) }

func (r *redisStores) close() error { return r.clients.Close() }
