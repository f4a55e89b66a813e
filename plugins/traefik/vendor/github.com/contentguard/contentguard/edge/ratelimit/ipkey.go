package ratelimit

import "net/netip"

// IPKey is the rate-limit key for a client address: an IPv4 address as is
// (an IPv4-mapped IPv6 address counts as IPv4), an IPv6 address as its /64
// ("2001:db8:1:2::/64"). One IPv6 host usually owns a whole /64 and can rotate
// through it at will; grouping makes that rotation share one bucket. The zone
// is dropped. The invalid (zero) Addr gives "".
func IPKey(addr netip.Addr) string {
	if !addr.IsValid() {
		return ""
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		return addr.String()
	}
	p, err := addr.Prefix(64)
	if err != nil {
		return "" // unreachable: 64 ≤ 128 for every IPv6 address
	}
	return p.String()
}
