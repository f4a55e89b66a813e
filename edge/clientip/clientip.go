// Package clientip finds the real client address of a request behind
// reverse proxies, without letting the client choose it.
//
// The rule: when the connecting peer is not a trusted proxy, the client is
// the peer and forwarding headers are ignored entirely — anyone can send
// them. When the peer is trusted, the first configured header present on the
// request is read right to left (each proxy appends the address it saw), hops
// that are themselves trusted proxies are skipped, and the first untrusted
// address is the client. If every address is trusted, the leftmost one is the
// client.
//
// Fail closed: an element that cannot be read (garbage, "unknown", an
// obfuscated RFC 7239 node such as "_hidden", broken quoting) stops the walk,
// and the answer is the last address read to its right — a trusted proxy, or
// the peer. Nothing left of the first untrusted hop is ever believed, so a
// client cannot inject an address that we accept. The same holds when the
// header is longer than MaxHops elements or MaxHeaderBytes bytes: reading
// stops there, counted from the right, so a client that pads the header
// cannot push out what the trusted proxies appended.
//
// All addresses, the peer included, are unmapped (::ffff:192.0.2.1 is
// 192.0.2.1) and lose their IPv6 zone, so one client has one form.
//
// The package runs under the Yaegi interpreter (Traefik plugin): standard
// library only, no generics.
package clientip

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/textproto"
	"strings"

	"github.com/contentguard/contentguard/internal/httpsyntax"
)

// Bounds on the work done for one header.
const (
	MaxHops        = 64   // elements read, counted from the right
	MaxHeaderBytes = 8192 // bytes read, counted from the right
)

// Header kinds the Resolver understands.
const (
	kindXForwardedFor = iota
	kindForwarded
	kindXRealIP
)

// source is one configured header: its canonical name and its kind.
type source struct {
	name string
	kind int
}

// Resolver finds the client address of requests. It is immutable and safe
// for concurrent use.
type Resolver struct {
	trusted []netip.Prefix
	sources []source
}

// New returns a Resolver that trusts the given proxy networks and reads the
// given headers, in order of preference: the first one present on a request
// is the one used. Header names are matched case-insensitively against
// X-Forwarded-For, Forwarded (RFC 7239) and X-Real-IP; any other name is an
// error. IPv4-mapped IPv6 prefixes (::ffff:10.0.0.0/104) are unmapped.
func New(trusted []netip.Prefix, headers []string) (*Resolver, error) {
	r := &Resolver{}
	for i := 0; i < len(trusted); i++ {
		p := trusted[i]
		if !p.IsValid() {
			return nil, fmt.Errorf("clientip: trusted proxy %d (%q) is not a valid prefix", i, p.String())
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		r.trusted = append(r.trusted, p.Masked())
	}
	for i := 0; i < len(headers); i++ {
		name := textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(headers[i]))
		kind := -1
		switch name {
		case "X-Forwarded-For":
			kind = kindXForwardedFor
		case "Forwarded":
			kind = kindForwarded
		case "X-Real-Ip":
			kind = kindXRealIP
		default:
			return nil, fmt.Errorf("clientip: unsupported header %q (want X-Forwarded-For, Forwarded or X-Real-IP)", headers[i])
		}
		for j := 0; j < len(r.sources); j++ {
			if r.sources[j].kind == kind {
				return nil, fmt.Errorf("clientip: header %q listed twice", headers[i])
			}
		}
		r.sources = append(r.sources, source{name: name, kind: kind})
	}
	return r, nil
}

// Trusted reports whether a, unmapped and without its zone, is in a trusted
// proxy network.
func (r *Resolver) Trusted(a netip.Addr) bool {
	return inPrefixes(r.trusted, a.Unmap().WithZone(""))
}

// inPrefixes reports whether a is in one of ps.
func inPrefixes(ps []netip.Prefix, a netip.Addr) bool {
	for i := 0; i < len(ps); i++ {
		if ps[i].Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP returns the client address of a request that arrived from peer
// with headers h. An invalid peer is returned as is (the zero Addr).
func (r *Resolver) ClientIP(peer netip.Addr, h http.Header) netip.Addr {
	if !peer.Is4() {
		// (An IPv4 address has neither a mapping nor a zone to drop: the
		// common case is one compiled call under Yaegi.)
		peer = peer.Unmap().WithZone("")
		if !peer.IsValid() {
			return peer
		}
	}
	trusted := false
	for i := 0; i < len(r.trusted) && !trusted; i++ {
		trusted = r.trusted[i].Contains(peer)
	}
	if !trusted {
		return peer
	}
	return forwardedClient(r, peer, h)
}

// forwardedClient is ClientIP for a peer the policy trusts: the client is
// read from the first forwarding field present. (A function of its own:
// the Traefik plugin's interpreter allocates a slot per expression of a
// function on every call, and most peers are not trusted proxies.)
func forwardedClient(r *Resolver, peer netip.Addr, h http.Header) netip.Addr {
	for i := 0; i < len(r.sources); i++ {
		values := h[r.sources[i].name]
		if len(values) == 0 {
			continue
		}
		if r.sources[i].kind == kindXRealIP {
			return realIP(peer, values)
		}
		client, _ := scan(values, r.sources[i].kind == kindForwarded, r.trusted, peer, nil)
		return client
	}
	return peer
}

// realIP reads X-Real-IP: exactly one line holding one bare address,
// otherwise the peer.
func realIP(peer netip.Addr, values []string) netip.Addr {
	if len(values) != 1 || len(values[0]) > MaxHeaderBytes {
		return peer
	}
	a, err := netip.ParseAddr(strings.Trim(values[0], " \t"))
	if err != nil {
		return peer
	}
	return a.Unmap().WithZone("")
}

// ParseXForwardedFor returns the addresses of X-Forwarded-For header lines,
// left to right: the lines joined in order, split at commas, spaces and tabs
// trimmed, empty elements skipped. An element is an IPv4 or IPv6 address,
// optionally with a port ("192.0.2.1:4711", "[2001:db8::1]:4711"), which some
// proxies add. ok is false, with no addresses, when any element cannot be
// read or the header exceeds MaxHops elements or MaxHeaderBytes bytes.
func ParseXForwardedFor(values []string) ([]netip.Addr, bool) {
	return parseAll(values, false)
}

// ParseForwarded returns the for= addresses of RFC 7239 Forwarded header
// lines, left to right. Values may be quoted; IPv6 addresses must be in
// brackets ("[2001:db8::1]:4711"); ports, including obfuscated ones ("_p1"),
// are dropped. ok is false, with no addresses, when any element has no
// readable for= address — "unknown" and obfuscated identifiers ("_hidden")
// included — or the header exceeds MaxHops elements or MaxHeaderBytes bytes.
// A backslash (quoted-pair) anywhere makes the element unreadable: no address
// needs one, and refusing it keeps the right-to-left scan exact.
func ParseForwarded(values []string) ([]netip.Addr, bool) {
	return parseAll(values, true)
}

func parseAll(values []string, forwarded bool) ([]netip.Addr, bool) {
	var addrs []netip.Addr
	if _, ok := scan(values, forwarded, nil, netip.Addr{}, &addrs); !ok {
		return nil, false
	}
	for i, j := 0, len(addrs)-1; i < j; i, j = i+1, j-1 {
		addrs[i], addrs[j] = addrs[j], addrs[i]
	}
	return addrs, true
}

// scan reads a forwarding header right to left: the last element of the last
// line first. In Forwarded (forwarded set) a comma inside a quoted string
// does not split; a backslash or unbalanced quotes make the element
// unreadable. Empty elements are skipped.
//
// With collect nil it walks as ClientIP does: trusted hops are skipped, the
// first untrusted address is returned; at an unreadable element or a bound
// it returns the last address read (initially peer), and ok is false.
// With collect set it appends every address, right to left, and ok is false
// at the first unreadable element or bound.
//
// It is one function with few calls per element because every interpreted
// call costs a microsecond or more under Yaegi; the byte scans are strings
// functions, compiled code there too.
func scan(values []string, forwarded bool, trusted []netip.Prefix, peer netip.Addr, collect *[]netip.Addr) (netip.Addr, bool) {
	last := peer
	budget := MaxHeaderBytes // bytes left, counted from the right
	hops := 0
	special := ","
	if forwarded {
		special = ",\"\\"
	}
	for line := len(values) - 1; line >= 0; line-- {
		s := values[line]
		end := len(s) // the unread part of the line is s[:end]
		for end >= 0 {
			// Find the comma before the element, looking no further left
			// than the budget allows.
			lo := end - budget
			if lo < 0 {
				lo = 0
			}
			in := false
			start := end
			for {
				k := strings.LastIndexAny(s[lo:start], special)
				if k < 0 {
					if lo > 0 || in || end+1 > budget {
						return last, false // too long, or an unclosed quote
					}
					start = -1
					break
				}
				start = lo + k
				c := s[start]
				if c == '\\' {
					return last, false
				}
				if c == '"' {
					in = !in
				} else if !in {
					break // the comma
				}
			}
			elem := strings.Trim(s[start+1:end], " \t")
			budget -= end - start // the element and its comma
			end = start           // -1 when the line is used up
			if elem == "" {
				continue
			}
			hops++
			if hops > MaxHops {
				return last, false
			}
			var a netip.Addr
			var err error
			if !forwarded {
				a, err = netip.ParseAddr(elem) // the common case, without a call
			}
			if forwarded || err != nil {
				var ok bool
				if a, ok = parseElement(elem, forwarded); !ok {
					return last, false
				}
			}
			a = a.Unmap().WithZone("")
			if collect != nil {
				*collect = append(*collect, a)
				continue
			}
			if !inPrefixes(trusted, a) {
				return a, true
			}
			last = a
		}
		budget-- // the implied comma between lines
		if budget < 0 && line > 0 {
			return last, false
		}
	}
	return last, true // all trusted: the leftmost
}

// parseElement reads one list element of either header.
func parseElement(elem string, forwarded bool) (netip.Addr, bool) {
	if forwarded {
		node, ok := forwardedFor(elem)
		if !ok {
			return netip.Addr{}, false
		}
		elem = node
	}
	return parseNode(elem, forwarded)
}

// parseNode reads an address with an optional port: "192.0.2.1",
// "192.0.2.1:80", "[2001:db8::1]", "[2001:db8::1]:80", and — outside
// Forwarded, which requires brackets — a bare IPv6 address.
func parseNode(s string, forwarded bool) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	if s[0] == '[' {
		k := strings.IndexByte(s, ']')
		if k < 0 {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(s[1:k])
		if err != nil || !a.Is6() || !validPort(s[k+1:], forwarded) {
			return netip.Addr{}, false
		}
		return a, true
	}
	if !forwarded {
		if a, err := netip.ParseAddr(s); err == nil {
			return a, true
		}
	}
	host, port := s, ""
	if k := strings.IndexByte(s, ':'); k >= 0 {
		host, port = s[:k], s[k:]
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is4() || !validPort(port, forwarded) {
		return netip.Addr{}, false
	}
	return a, true
}

// validPort accepts "", ":" followed by 1..5 digits, or in Forwarded an
// obfuscated port (RFC 7239 §6.3: "_" followed by ALPHA / DIGIT / "." / "_" / "-").
func validPort(p string, forwarded bool) bool {
	if p == "" {
		return true
	}
	if p[0] != ':' || len(p) < 2 {
		return false
	}
	p = p[1:]
	if forwarded && p[0] == '_' {
		return len(p) >= 2 && len(obfFilter.Replace(p[1:])) == len(p)-1
	}
	return len(p) <= 5 && len(digitFilter.Replace(p)) == len(p)
}

// Byte filters (see httpsyntax.NewFilter), built once and never changed:
// the characters after the "_" of an obfuscated port (RFC 7239 §6.3), and
// digits.
var (
	obfFilter   = httpsyntax.NewFilter("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
	digitFilter = httpsyntax.NewFilter("0123456789")
)

// forwardedFor returns the node of the single for= parameter of one
// Forwarded element (RFC 7239 §4), unquoted. The element comes from the
// scanner, so its quotes are balanced and it holds no backslash.
func forwardedFor(elem string) (string, bool) {
	node, found := "", false
	rest := elem
	for len(rest) > 0 {
		// Split off one pair at the first ';' outside quotes.
		pair := rest
		rest = ""
		in := false
		from := 0
		for { // not "for from := 0; ; {": Yaegi v0.16.1 never leaves that loop
			k := strings.IndexAny(pair[from:], ";\"")
			if k < 0 {
				break
			}
			k += from
			if pair[k] == '"' {
				in = !in
			} else if !in {
				pair, rest = pair[:k], pair[k+1:]
				break
			}
			from = k + 1
		}
		pair = strings.Trim(pair, " \t")
		if pair == "" {
			continue
		}
		eq := strings.IndexByte(pair, '=')
		if eq <= 0 || !httpsyntax.IsToken(pair[:eq]) {
			return "", false
		}
		value := pair[eq+1:]
		if len(value) > 0 && value[0] == '"' {
			if len(value) < 2 || value[len(value)-1] != '"' {
				return "", false
			}
			value = value[1 : len(value)-1]
			if strings.IndexByte(value, '"') >= 0 {
				return "", false
			}
		}
		if strings.EqualFold(pair[:eq], "for") {
			if found {
				return "", false // a parameter may appear once per element
			}
			node, found = value, true
		}
	}
	return node, found
}
