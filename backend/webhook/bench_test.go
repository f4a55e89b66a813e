package webhook

import (
	"bytes"
	"net/netip"
	"testing"
)

func BenchmarkSign1KiB(b *testing.B) {
	secret, body := []byte("0123456789abcdef0123456789abcdef"), bytes.Repeat([]byte("x"), 1024)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		_ = Sign(secret, body)
	}
}

func BenchmarkVerify1KiB(b *testing.B) {
	secret, body := []byte("0123456789abcdef0123456789abcdef"), bytes.Repeat([]byte("x"), 1024)
	sig := Sign(secret, body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if !Verify(secret, body, sig) {
			b.Fatal("verify failed")
		}
	}
}

func BenchmarkBlocked(b *testing.B) {
	addrs := []netip.Addr{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("2606:4700::1111"), netip.MustParseAddr("10.1.2.3")}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = Blocked(addrs[i%len(addrs)])
		i++
	}
}
