package upstream

import "testing"

// TestParseTarget: the URL's host is the Host header and the breaker's
// name as written; the address dialled has the scheme's port when the URL
// names none (an upstream of http://backend is dialled at backend:80, as
// http.Transport would).
func TestParseTarget(t *testing.T) {
	for _, c := range []struct{ url, host, addr, base string }{
		{"http://127.0.0.1:8081", "127.0.0.1:8081", "127.0.0.1:8081", ""},
		{"http://backend", "backend", "backend:80", ""},
		{"https://api.example.com/v1/", "api.example.com", "api.example.com:443", "/v1"},
		{"https://[::1]:8443/base", "[::1]:8443", "[::1]:8443", "/base"},
		{"http://[::1]", "[::1]", "[::1]:80", ""},
		{"http://backend:", "backend:", "backend:80", ""},
	} {
		tg, err := ParseTarget(c.url)
		if err != nil {
			t.Fatalf("%s: %v", c.url, err)
		}
		if tg.Host != c.host || tg.Name != c.host || tg.Addr != c.addr || tg.Base != c.base {
			t.Errorf("%s: %+v, want host %q addr %q base %q", c.url, tg, c.host, c.addr, c.base)
		}
	}
	for _, bad := range []string{"", "ftp://h", "http://u:p@h", "http://h/?q=1", "http:///x", "http://h#f"} {
		if _, err := ParseTarget(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
