package ratelimit

import (
	"strconv"
	"time"
)

// Header styles for [Headers].
const (
	// StyleIETF: RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset as in
	// draft-ietf-httpapi-ratelimit-headers (Reset in delta seconds).
	StyleIETF = "ietf"
	// StyleLegacy: X-RateLimit-Limit, X-RateLimit-Remaining,
	// X-RateLimit-Reset, what the original service's clients read.
	// X-RateLimit-Reset carries delta seconds (seconds until the bucket is
	// full again), like RateLimit-Reset, not an epoch time.
	StyleLegacy = "legacy"
	// StyleBoth sends both sets.
	StyleBoth = "both"
	// StyleNone sends neither (Retry-After still goes out on refusals).
	StyleNone = "none"
)

// ValidStyle reports whether style is one of the Style constants.
func ValidStyle(style string) bool {
	return style == StyleIETF || style == StyleLegacy || style == StyleBoth || style == StyleNone
}

// Headers renders r as response header fields in the given style. Numbers
// are whole seconds rounded up. Retry-After (≥ 1) is always present when r
// refuses, whatever the style. An unknown style renders as StyleIETF.
func Headers(style string, r Result) [][2]string {
	return AppendHeaders(make([][2]string, 0, 7), style, r)
}

// AppendHeaders is [Headers] appending to dst. All values share one string,
// so it allocates once (plus dst's growth if it is too small). It is written
// flat, with few calls, because under Yaegi every call and branch costs.
func AppendHeaders(dst [][2]string, style string, r Result) [][2]string {
	ietf := style != StyleLegacy && style != StyleNone
	legacy := style == StyleLegacy || style == StyleBoth
	if !ietf && !legacy {
		if !r.Allowed {
			dst = append(dst, [2]string{"Retry-After", strconv.FormatInt(RetryAfterSeconds(r.RetryAfter), 10)})
		}
		return dst
	}
	remaining := r.Remaining
	if remaining < 0 {
		remaining = 0
	}
	b := make([]byte, 0, 64)
	b = strconv.AppendInt(b, int64(r.Limit), 10)
	endLimit := len(b)
	b = strconv.AppendInt(b, int64(remaining), 10)
	endRemaining := len(b)
	b = strconv.AppendInt(b, ceilSeconds(r.Reset), 10)
	endReset := len(b)
	if !r.Allowed {
		b = strconv.AppendInt(b, RetryAfterSeconds(r.RetryAfter), 10)
	}
	values := string(b)
	limit, rem, reset := values[:endLimit], values[endLimit:endRemaining], values[endRemaining:endReset]
	if ietf {
		dst = append(dst,
			[2]string{"RateLimit-Limit", limit},
			[2]string{"RateLimit-Remaining", rem},
			[2]string{"RateLimit-Reset", reset})
	}
	if legacy {
		dst = append(dst,
			[2]string{"X-RateLimit-Limit", limit},
			[2]string{"X-RateLimit-Remaining", rem},
			[2]string{"X-RateLimit-Reset", reset})
	}
	if !r.Allowed {
		dst = append(dst, [2]string{"Retry-After", values[endReset:]})
	}
	return dst
}

// RetryAfterSeconds renders d for a Retry-After field: whole seconds rounded
// up, at least 1 (a 0 would invite an immediate retry storm).
func RetryAfterSeconds(d time.Duration) int64 {
	s := ceilSeconds(d)
	if s < 1 {
		return 1
	}
	return s
}

// ceilSeconds is d in whole seconds rounded up; 0 for d ≤ 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}
