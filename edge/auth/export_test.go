package auth

// CacheLen reports how many tokens v's cache holds (tests only).
func CacheLen(v *Verifier) int {
	if v.cache == nil {
		return 0
	}
	n := 0
	for i := 0; i < len(v.cache.shards); i++ {
		s := v.cache.shards[i]
		s.mu.RLock()
		n += len(s.entries)
		s.mu.RUnlock()
	}
	return n
}
