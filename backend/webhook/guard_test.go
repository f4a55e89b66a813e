package webhook

import (
	"context"
	"errors"
	"net/netip"
	"testing"
)

func TestCheckURLRefusesPrivateTargets(t *testing.T) {
	g := Guard{Resolver: &staticResolver{
		answers: map[string][][]netip.Addr{
			"internal.example": {addrs("10.0.0.7")},
			"mixed.example":    {addrs("93.184.216.34", "192.168.1.1")},
			"metadata.example": {addrs("169.254.169.254")},
			"v6local.example":  {addrs("fd00::1")},
		},
		fallback: addrs("93.184.216.34"),
	}}
	refused := []string{
		"http://127.0.0.1/hook",
		"http://127.9.9.9:8080/hook",
		"http://10.0.0.1/",
		"http://172.16.5.4/",
		"http://192.168.0.10/",
		"http://[::1]/",
		"http://[::]/",
		"http://0.0.0.0/",
		"http://169.254.169.254/latest/meta-data/",
		"http://[fe80::1%25eth0]/",
		"http://[fc00::1]/",
		"http://[fd12:3456::1]/",
		"http://100.64.0.1/",
		"http://224.0.0.1/",
		"http://[ff02::1]/",
		"http://255.255.255.255/",
		"http://[::ffff:127.0.0.1]/",
		"http://[::ffff:10.0.0.1]/",
		"http://[::ffff:a9fe:a9fe]/", // 169.254.169.254, mapped, hex
		"http://[64:ff9b::7f00:1]/",  // NAT64 of 127.0.0.1
		"http://localhost/",
		"http://LOCALHOST./",
		"http://api.localhost/",
		"http://2130706433/", // 127.0.0.1 as one decimal number
		"http://0x7f000001/", // hex
		"http://0177.0.0.1/", // octal
		"http://127.1/",      // short form
		"http://internal.example/",
		"http://mixed.example/", // one private answer is enough
		"http://metadata.example/",
		"http://v6local.example/",
		"http://unresolvable.invalid/", // resolves to nothing: fail closed
	}
	g.Resolver.(*staticResolver).answers["unresolvable.invalid"] = [][]netip.Addr{nil}
	for _, raw := range refused {
		if _, err := g.CheckURL(context.Background(), raw); !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("CheckURL(%q) = %v, want ErrForbiddenAddress", raw, err)
		}
	}

	invalid := []string{
		"", "ftp://example.com/", "file:///etc/passwd", "gopher://example.com/",
		"http://user:pass@example.com/", "http:///nohost", "mailto:a@example.com",
		"http://example.com:0/", "http://example.com:99999/", "javascript:alert(1)",
		"http://exa mple.com/",
	}
	for _, raw := range invalid {
		if _, err := g.CheckURL(context.Background(), raw); !errors.Is(err, ErrInvalidURL) {
			t.Errorf("CheckURL(%q) = %v, want ErrInvalidURL", raw, err)
		}
	}

	allowed := []string{
		"https://hooks.example.com/contentguard",
		"http://93.184.216.34:8080/x",
		"https://[2606:2800:220:1:248:1893:25c8:1946]/",
		"http://1.1.1.1/",
	}
	for _, raw := range allowed {
		if _, err := g.CheckURL(context.Background(), raw); err != nil {
			t.Errorf("CheckURL(%q) = %v, want nil", raw, err)
		}
	}

	open := Guard{AllowPrivate: true}
	for _, raw := range []string{"http://127.0.0.1:9/", "http://localhost/", "http://[::1]/"} {
		if _, err := open.CheckURL(context.Background(), raw); err != nil {
			t.Errorf("AllowPrivate: CheckURL(%q) = %v, want nil", raw, err)
		}
	}
	if _, err := open.CheckURL(context.Background(), "ftp://127.0.0.1/"); !errors.Is(err, ErrInvalidURL) {
		t.Errorf("AllowPrivate still checks the scheme, got %v", err)
	}
}

func TestControlRefusesBlockedDialAddresses(t *testing.T) {
	var g Guard
	for _, a := range []string{"127.0.0.1:80", "[::1]:443", "[::ffff:127.0.0.1]:80", "10.1.2.3:443", "169.254.169.254:80", "100.100.0.1:80", "[fe80::1%eth0]:80", "nonsense", "example.com:80"} {
		if err := g.Control("tcp", a, nil); !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("Control(%q) = %v, want ErrForbiddenAddress", a, err)
		}
	}
	for _, a := range []string{"93.184.216.34:443", "[2606:4700::1111]:443"} {
		if err := g.Control("tcp", a, nil); err != nil {
			t.Errorf("Control(%q) = %v, want nil", a, err)
		}
	}
	if err := (Guard{AllowPrivate: true}).Control("tcp", "127.0.0.1:80", nil); err != nil {
		t.Errorf("AllowPrivate Control = %v", err)
	}
}
