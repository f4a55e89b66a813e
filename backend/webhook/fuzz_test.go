package webhook

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

// FuzzVerify: Verify never panics, accepts what Sign produced, and rejects
// any other header for the same body.
func FuzzVerify(f *testing.F) {
	f.Add([]byte("secret-secret-16"), []byte(`{"a":1}`), "sha256=00")
	f.Add([]byte("k"), []byte(""), "")
	f.Add([]byte("0123456789abcdef"), []byte("body"), "SHA256=ZZ")
	f.Fuzz(func(t *testing.T, secret, body []byte, header string) {
		good := Sign(secret, body)
		if len(secret) > 0 && !Verify(secret, body, good) {
			t.Fatalf("Verify rejects Sign's own output")
		}
		if Verify(secret, body, header) && !strings.EqualFold(header, good) {
			t.Fatalf("Verify accepted %q, the signature is %q", header, good)
		}
	})
}

// FuzzCheckURL: CheckURL never panics, and what it accepts is http(s), has
// a host, no user info, and no blocked or ambiguous-numeric host.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://hooks.example.com/x", "http://127.0.0.1/", "http://[::ffff:10.0.0.1]/",
		"http://2130706433/", "http://0x7f.1/", "http://[fe80::1%25lo]/", "http://a:b@c/",
		"http://example.com:65536/", "HTTP://EXAMPLE.COM/", "http://localhost./",
	} {
		f.Add(s)
	}
	g := Guard{Resolver: &staticResolver{fallback: addrs("93.184.216.34")}}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := g.CheckURL(context.Background(), raw)
		if err != nil {
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			t.Fatalf("accepted scheme %q", u.Scheme)
		}
		host := u.Hostname()
		if host == "" || u.User != nil {
			t.Fatalf("accepted %q: host %q user %v", raw, host, u.User)
		}
		if a, err := netip.ParseAddr(host); err == nil && Blocked(a) {
			t.Fatalf("accepted blocked address %q", raw)
		}
		if looksNumeric(strings.TrimSuffix(strings.ToLower(host), ".")) {
			if _, err := netip.ParseAddr(host); err != nil {
				t.Fatalf("accepted ambiguous numeric host %q", host)
			}
		}
	})
}
