package ratelimit

// Sweeps reports how many periodic sweeps m has done (tests wait on it).
func Sweeps(m *Memory) int64 { return m.sweeps.Load() }
