package clientip

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func prefixes(t testing.TB, ss ...string) []netip.Prefix {
	t.Helper()
	var ps []netip.Prefix
	for _, s := range ss {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

func mustNew(t testing.TB, headers ...string) *Resolver {
	t.Helper()
	r, err := New(prefixes(t, "127.0.0.1/32", "10.0.0.0/8", "::ffff:192.168.0.0/112", "fd00::/8"), headers)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestNew(t *testing.T) {
	cases := []struct {
		headers []string
		wantErr string
	}{
		{nil, ""},
		{[]string{"X-Forwarded-For"}, ""},
		{[]string{"x-forwarded-for", "FORWARDED", "x-real-ip"}, ""},
		{[]string{"X-Real-IP"}, ""},
		{[]string{"X-Client-IP"}, "unsupported header"},
		{[]string{"True-Client-IP"}, "unsupported header"},
		{[]string{"X-Forwarded-For", "x-forwarded-for"}, "listed twice"},
	}
	for _, c := range cases {
		_, err := New(nil, c.headers)
		if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("New(%q) error = %v, want %q", c.headers, err, c.wantErr)
		}
	}
	if _, err := New([]netip.Prefix{{}}, nil); err == nil {
		t.Error("New accepted an invalid prefix")
	}
}

func TestClientIP(t *testing.T) {
	xff := mustNew(t, "X-Forwarded-For")
	fwd := mustNew(t, "Forwarded")
	real := mustNew(t, "X-Real-IP")
	pref := mustNew(t, "Forwarded", "X-Forwarded-For")
	cases := []struct {
		name string
		r    *Resolver
		peer string
		hdr  map[string][]string
		want string
	}{
		{"untrusted peer ignores XFF", xff, "203.0.113.9", map[string][]string{"X-Forwarded-For": {"1.1.1.1"}}, "203.0.113.9"},
		{"untrusted peer ignores X-Real-IP", real, "203.0.113.9", map[string][]string{"X-Real-Ip": {"1.1.1.1"}}, "203.0.113.9"},
		{"trusted peer, no header", xff, "10.0.0.1", nil, "10.0.0.1"},
		{"trusted peer, one hop", xff, "10.0.0.1", map[string][]string{"X-Forwarded-For": {"198.51.100.7"}}, "198.51.100.7"},
		{"spoofed left part is not believed", xff, "10.0.0.1", map[string][]string{"X-Forwarded-For": {"1.1.1.1, 198.51.100.7"}}, "198.51.100.7"},
		{"skip trusted hops", xff, "127.0.0.1", map[string][]string{"X-Forwarded-For": {"1.1.1.1, 198.51.100.7, 10.1.2.3, 10.9.9.9"}}, "198.51.100.7"},
		{"lines joined in order", xff, "127.0.0.1", map[string][]string{"X-Forwarded-For": {"1.1.1.1, 198.51.100.7", "10.1.2.3", " 10.9.9.9 "}}, "198.51.100.7"},
		{"all trusted: leftmost", xff, "127.0.0.1", map[string][]string{"X-Forwarded-For": {"10.0.0.5, 10.0.0.6"}}, "10.0.0.5"},
		{"garbage rightmost: peer", xff, "10.0.0.1", map[string][]string{"X-Forwarded-For": {"198.51.100.7, garbage"}}, "10.0.0.1"},
		{"garbage after trusted hop: that hop", xff, "10.0.0.1", map[string][]string{"X-Forwarded-For": {"198.51.100.7, nope, 10.2.2.2"}}, "10.2.2.2"},
		{"garbage left of client is never read", xff, "10.0.0.1", map[string][]string{"X-Forwarded-For": {"<script>, 198.51.100.7"}}, "198.51.100.7"},
		{"empty elements skipped", xff, "10.0.0.1", map[string][]string{"X-Forwarded-For": {"198.51.100.7,, ,"}}, "198.51.100.7"},
		{"empty header: peer", xff, "10.0.0.1", map[string][]string{"X-Forwarded-For": {""}}, "10.0.0.1"},
		{"XFF with port", xff, "10.0.0.1", map[string][]string{"X-Forwarded-For": {"198.51.100.7:4711"}}, "198.51.100.7"},
		{"XFF bracketed IPv6 with port", xff, "10.0.0.1", map[string][]string{"X-Forwarded-For": {"[2001:db8::7]:4711"}}, "2001:db8::7"},
		{"XFF bare IPv6 with zone", xff, "10.0.0.1", map[string][]string{"X-Forwarded-For": {"fe80::1%eth0"}}, "fe80::1"},
		{"XFF mapped address unmapped", xff, "10.0.0.1", map[string][]string{"X-Forwarded-For": {"::ffff:198.51.100.7"}}, "198.51.100.7"},
		{"mapped trusted hop is skipped", xff, "10.0.0.1", map[string][]string{"X-Forwarded-For": {"198.51.100.7, ::ffff:10.3.3.3"}}, "198.51.100.7"},
		{"mapped peer is unmapped and trusted", xff, "::ffff:10.0.0.1", map[string][]string{"X-Forwarded-For": {"198.51.100.7"}}, "198.51.100.7"},
		{"mapped untrusted peer is unmapped", xff, "::ffff:203.0.113.9", nil, "203.0.113.9"},
		{"peer zone stripped", xff, "fe80::9%eth0", nil, "fe80::9"},
		{"trusted IPv6 peer", xff, "fd00::1", map[string][]string{"X-Forwarded-For": {"2001:db8::1, fd00::2"}}, "2001:db8::1"},
		{"prefix given mapped is unmapped", xff, "192.168.3.4", map[string][]string{"X-Forwarded-For": {"198.51.100.7"}}, "198.51.100.7"},

		{"Forwarded simple", fwd, "10.0.0.1", map[string][]string{"Forwarded": {"for=198.51.100.7;proto=https"}}, "198.51.100.7"},
		{"Forwarded quoted IPv6 with port", fwd, "10.0.0.1", map[string][]string{"Forwarded": {`for="[2001:db8:cafe::17]:4711"`}}, "2001:db8:cafe::17"},
		{"Forwarded case-insensitive name", fwd, "10.0.0.1", map[string][]string{"Forwarded": {"For=198.51.100.7"}}, "198.51.100.7"},
		{"Forwarded walk", fwd, "10.0.0.1", map[string][]string{"Forwarded": {"for=1.1.1.1, for=198.51.100.7;by=10.0.0.2", "for=10.0.0.3"}}, "198.51.100.7"},
		{"Forwarded unknown stops the walk", fwd, "10.0.0.1", map[string][]string{"Forwarded": {"for=198.51.100.7, for=unknown, for=10.0.0.3"}}, "10.0.0.3"},
		{"Forwarded obfuscated stops the walk", fwd, "10.0.0.1", map[string][]string{"Forwarded": {`for=198.51.100.7, for="_hidden"`}}, "10.0.0.1"},
		{"Forwarded obfuscated port is fine", fwd, "10.0.0.1", map[string][]string{"Forwarded": {`for="198.51.100.7:_p1"`}}, "198.51.100.7"},
		{"Forwarded element without for", fwd, "10.0.0.1", map[string][]string{"Forwarded": {"for=198.51.100.7, proto=https"}}, "10.0.0.1"},
		{"Forwarded bare IPv6 is invalid", fwd, "10.0.0.1", map[string][]string{"Forwarded": {`for="2001:db8::1"`}}, "10.0.0.1"},
		{"Forwarded comma in a quoted value", fwd, "10.0.0.1", map[string][]string{"Forwarded": {`for=198.51.100.7;host="a,b"`}}, "198.51.100.7"},
		{"Forwarded unbalanced quote on the left is never read", fwd, "10.0.0.1", map[string][]string{"Forwarded": {`for="1.1.1.1, for=198.51.100.7`}}, "198.51.100.7"},
		{"Forwarded backslash stops", fwd, "10.0.0.1", map[string][]string{"Forwarded": {`for="198.51.100\.7"`}}, "10.0.0.1"},
		{"Forwarded duplicate for", fwd, "10.0.0.1", map[string][]string{"Forwarded": {"for=1.1.1.1;for=198.51.100.7"}}, "10.0.0.1"},

		{"X-Real-IP", real, "10.0.0.1", map[string][]string{"X-Real-Ip": {" 198.51.100.7 "}}, "198.51.100.7"},
		{"X-Real-IP list refused", real, "10.0.0.1", map[string][]string{"X-Real-Ip": {"1.1.1.1, 198.51.100.7"}}, "10.0.0.1"},
		{"X-Real-IP twice refused", real, "10.0.0.1", map[string][]string{"X-Real-Ip": {"1.1.1.1", "198.51.100.7"}}, "10.0.0.1"},

		{"preference: first present wins", pref, "10.0.0.1", map[string][]string{"Forwarded": {"for=198.51.100.1"}, "X-Forwarded-For": {"198.51.100.2"}}, "198.51.100.1"},
		{"preference: falls to the next when absent", pref, "10.0.0.1", map[string][]string{"X-Forwarded-For": {"198.51.100.2"}}, "198.51.100.2"},
		{"preference: a present but broken header does not fall through", pref, "10.0.0.1", map[string][]string{"Forwarded": {"for=unknown"}, "X-Forwarded-For": {"198.51.100.2"}}, "10.0.0.1"},
	}
	for _, c := range cases {
		got := c.r.ClientIP(netip.MustParseAddr(c.peer), http.Header(c.hdr))
		if got != netip.MustParseAddr(c.want) {
			t.Errorf("%s: ClientIP = %v, want %s", c.name, got, c.want)
		}
	}
	if got := xff.ClientIP(netip.Addr{}, nil); got.IsValid() {
		t.Errorf("invalid peer: got %v", got)
	}
}

func TestClientIPBounds(t *testing.T) {
	r := mustNew(t, "X-Forwarded-For")
	peer := netip.MustParseAddr("10.0.0.1")

	// 63 trusted hops then the client: found. One more trusted hop: the
	// walk gives up at MaxHops and answers the last trusted hop it read.
	hops := []string{"198.51.100.7"}
	for i := 0; i < MaxHops-1; i++ {
		hops = append(hops, "10.0.0.9")
	}
	h := http.Header{"X-Forwarded-For": {strings.Join(hops, ",")}}
	if got := r.ClientIP(peer, h); got.String() != "198.51.100.7" {
		t.Errorf("%d hops: %v", len(hops), got)
	}
	h = http.Header{"X-Forwarded-For": {strings.Join(append(hops, "10.0.0.8"), ",")}}
	if got := r.ClientIP(peer, h); got.String() != "10.0.0.9" {
		t.Errorf("%d hops: %v, want the leftmost trusted hop read (10.0.0.9)", len(hops)+1, got)
	}

	// Padding on the left (what a client controls) cannot push out the
	// client address appended on the right.
	h = http.Header{"X-Forwarded-For": {strings.Repeat(" ", 1<<20) + "1.1.1.1, 198.51.100.7"}}
	if got := r.ClientIP(peer, h); got.String() != "198.51.100.7" {
		t.Errorf("left padding: %v", got)
	}
	// A right-hand element beyond the byte budget is not read.
	h = http.Header{"X-Forwarded-For": {"198.51.100.7" + strings.Repeat(" ", MaxHeaderBytes)}}
	if got := r.ClientIP(peer, h); got != peer {
		t.Errorf("over budget: %v, want the peer", got)
	}
	if _, ok := ParseXForwardedFor([]string{strings.Repeat("1.1.1.1,", MaxHops+1)}); ok {
		t.Error("ParseXForwardedFor accepted more than MaxHops elements")
	}
}

func TestParse(t *testing.T) {
	cases := []struct {
		forwarded bool
		values    []string
		want      string // addresses joined by " ", or "!" for not ok
	}{
		{false, nil, ""},
		{false, []string{"192.0.2.1, 2001:db8::1", "198.51.100.1"}, "192.0.2.1 2001:db8::1 198.51.100.1"},
		{false, []string{"\t192.0.2.1\t,198.51.100.1 "}, "192.0.2.1 198.51.100.1"},
		{false, []string{"192.0.2.1, x"}, "!"},
		{false, []string{"unknown"}, "!"},
		{false, []string{"192.0.2.1:"}, "!"},
		{false, []string{"192.0.2.1:123456"}, "!"},
		{false, []string{"[192.0.2.1]:80"}, "!"},
		{false, []string{"[2001:db8::1"}, "!"},
		{false, []string{"[2001:db8::1]x"}, "!"},
		{false, []string{`"192.0.2.1"`}, "!"},
		{false, []string{"192.0.2.1:_p"}, "!"},
		{false, []string{"01.2.3.4"}, "!"},
		{true, []string{`for=192.0.2.60;proto=http;by=203.0.113.43`}, "192.0.2.60"},
		{true, []string{`for=192.0.2.43, for="[2001:db8:cafe::17]"`}, "192.0.2.43 2001:db8:cafe::17"},
		{true, []string{`for=192.0.2.43`, `for="[::ffff:192.0.2.44]:80"`}, "192.0.2.43 192.0.2.44"},
		{true, []string{`;for=192.0.2.43;;`}, "192.0.2.43"},
		{true, []string{`for=unknown`}, "!"},
		{true, []string{`for="_gazonk"`}, "!"},
		{true, []string{`by=1.2.3.4`}, "!"},
		{true, []string{`for=`}, "!"},
		{true, []string{`for=""`}, "!"},
		{true, []string{`for="192.0.2.1`}, "!"},
		{true, []string{`for="19"2.0.2.1"`}, "!"},
		{true, []string{`=192.0.2.1`}, "!"},
		{true, []string{`f r=192.0.2.1`}, "!"},
		{true, []string{`for=192.0.2.1:_`}, "!"},
		{true, []string{`for="[fe80::1%25eth0]"`}, "fe80::1"},
	}
	for _, c := range cases {
		var addrs []netip.Addr
		var ok bool
		if c.forwarded {
			addrs, ok = ParseForwarded(c.values)
		} else {
			addrs, ok = ParseXForwardedFor(c.values)
		}
		got := "!"
		if ok {
			var ss []string
			for _, a := range addrs {
				ss = append(ss, a.String())
			}
			got = strings.Join(ss, " ")
		} else if addrs != nil {
			t.Errorf("%q: not ok but returned %v", c.values, addrs)
		}
		if got != c.want {
			t.Errorf("forwarded=%v %q = %q, want %q", c.forwarded, c.values, got, c.want)
		}
	}
}

// candidates returns every address that can be read from some substring of
// s between separator characters: a superset of what the header holds.
func candidates(s string) map[netip.Addr]bool {
	isSep := func(c byte) bool { return strings.IndexByte(",; \t\"[]=:%", c) >= 0 }
	set := map[netip.Addr]bool{}
	for i := 0; i <= len(s); i++ {
		if i > 0 && !isSep(s[i-1]) {
			continue
		}
		for j := i + 1; j <= len(s); j++ {
			if j < len(s) && !isSep(s[j]) {
				continue
			}
			if a, err := netip.ParseAddr(s[i:j]); err == nil {
				set[a.Unmap().WithZone("")] = true
			}
		}
	}
	return set
}

func fuzzWalk(t *testing.T, header string, a, b string) {
	r := mustNew(t, header)
	peer := netip.MustParseAddr("10.0.0.1")
	values := []string{a}
	if b != "" {
		values = append(values, b)
	}
	got := r.ClientIP(peer, http.Header{textCanon(header): values})
	if len(a)+len(b) > 512 || got == peer {
		return
	}
	if !candidates(a)[got] && !candidates(b)[got] {
		t.Fatalf("ClientIP = %v is neither the peer nor in %q %q", got, a, b)
	}
}

func textCanon(h string) string {
	if h == "X-Forwarded-For" || h == "Forwarded" {
		return h
	}
	return "X-Real-Ip"
}

func FuzzXForwardedFor(f *testing.F) {
	f.Add("1.1.1.1, 198.51.100.7", "10.0.0.2")
	f.Add("[2001:db8::1]:80,::ffff:10.0.0.1", "")
	f.Add("fe80::1%eth0, garbage", "")
	f.Add(",,,", " ")
	f.Fuzz(func(t *testing.T, a, b string) {
		ParseXForwardedFor([]string{a, b})
		fuzzWalk(t, "X-Forwarded-For", a, b)
	})
}

func FuzzForwarded(f *testing.F) {
	f.Add(`for=192.0.2.60;proto=http;by=203.0.113.43`, `for="[2001:db8:cafe::17]:4711"`)
	f.Add(`for=unknown, for="_x"`, "")
	f.Add(`for="1.1.1.1, for=10.0.0.3`, `for=10.0.0.4;host="a,b"`)
	f.Add(`for="\"", for=1.2.3.4`, "")
	f.Fuzz(func(t *testing.T, a, b string) {
		ParseForwarded([]string{a, b})
		fuzzWalk(t, "Forwarded", a, b)
	})
}

func BenchmarkClientIP(b *testing.B) {
	r := mustNew(b, "X-Forwarded-For")
	fr := mustNew(b, "Forwarded")
	for _, bc := range []struct {
		name string
		r    *Resolver
		peer string
		h    http.Header
	}{
		{"untrusted-peer", r, "203.0.113.9", http.Header{"X-Forwarded-For": {"1.1.1.1"}}},
		{"xff-3-hops", r, "10.0.0.1", http.Header{"X-Forwarded-For": {"1.1.1.1, 198.51.100.7, 10.1.2.3, 10.9.9.9"}}},
		{"forwarded-2-hops", fr, "10.0.0.1", http.Header{"Forwarded": {`for=198.51.100.7;proto=https, for="[fd00::2]:443"`}}},
	} {
		peer := netip.MustParseAddr(bc.peer)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				bc.r.ClientIP(peer, bc.h)
			}
		})
	}
}

func TestManyEmptyLinesStayBounded(t *testing.T) {
	lines := make([]string, MaxHeaderBytes)
	lines[0] = "198.51.100.7"
	if _, ok := ParseXForwardedFor(lines); ok {
		t.Error("ParseXForwardedFor read past the byte budget through empty lines")
	}
	r := mustNew(t, "X-Forwarded-For")
	if got := r.ClientIP(netip.MustParseAddr("10.0.0.1"), http.Header{"X-Forwarded-For": lines}); got.String() != "10.0.0.1" {
		t.Errorf("ClientIP = %v, want the peer", got)
	}
}
