package exchange

import (
	"net/http"
	"net/netip"
	"strings"
)

// PeerAddr is a connection's remote address ("host:port"), unmapped; the
// zero Addr when it does not parse.
func PeerAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// TrustedPeer reports whether peer is in one of the trusted prefixes.
func TrustedPeer(trusted []netip.Prefix, peer netip.Addr) bool {
	for _, p := range trusted {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// ForwardedValues are the X-Forwarded-For, -Proto and -Host values to send
// upstream for a request with header in (canonical names) and Host host,
// from peer. A trusted proxy's chain is extended with it; anyone else's
// chain is discarded and a fresh one starts at the peer, so a client cannot
// plant addresses the upstream would believe. An empty xff or host is not
// sent.
func ForwardedValues(in http.Header, host string, tls bool, peer string, trusted bool) (xff, proto, fhost string) {
	xff = peer
	proto = "http"
	if tls {
		proto = "https"
	}
	fhost = host
	if trusted {
		if prior := in["X-Forwarded-For"]; len(prior) > 0 {
			xff = strings.Join(prior, ", ")
			if peer != "" {
				xff += ", " + peer
			}
		}
		if v := in.Get("X-Forwarded-Proto"); v == "http" || v == "https" {
			proto = v
		}
		if v := in.Get("X-Forwarded-Host"); v != "" {
			fhost = v
		}
	}
	if !printable(fhost) {
		fhost = ""
	}
	return xff, proto, fhost
}

// printable reports whether s has no control bytes (net/http's server has
// validated Host already; this keeps the proxy safe behind other servers).
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
