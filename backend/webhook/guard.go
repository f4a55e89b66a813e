package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// ErrInvalidURL is returned for a webhook URL that is malformed or not
// http/https.
var ErrInvalidURL = errors.New("webhook: invalid URL")

// ErrForbiddenAddress is returned when a webhook URL's host is, or resolves
// to, an address the SSRF policy refuses.
var ErrForbiddenAddress = errors.New("webhook: forbidden address")

// Resolver looks up a host's addresses. *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Guard is the SSRF policy for webhook URLs. The zero value refuses private
// addresses and resolves names with net.DefaultResolver.
type Guard struct {
	// AllowPrivate turns the address checks off (tests with loopback
	// receivers, deployments whose receivers live on a private network).
	AllowPrivate bool
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver Resolver
}

// maxURLLength bounds what we parse and store.
const maxURLLength = 2048

// blockedPrefixes are ranges netip's predicates do not cover.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),  // carrier-grade NAT (RFC 6598)
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, and 255.255.255.255
	netip.MustParsePrefix("::/96"),          // IPv4-compatible (deprecated), ::, ::1
	netip.MustParsePrefix("64:ff9b::/96"),   // NAT64: embeds an IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
	netip.MustParsePrefix("2002::/16"),      // 6to4: embeds an IPv4 address
	netip.MustParsePrefix("fec0::/10"),      // site-local (deprecated)
	netip.MustParsePrefix("100::/64"),       // discard-only
	netip.MustParsePrefix("2001:db8::/32"),  // documentation
	netip.MustParsePrefix("2001::/32"),      // Teredo: embeds an IPv4 address
}

// Blocked reports whether connecting to addr is refused by the SSRF policy:
// loopback, private (RFC 1918, ULA fc00::/7), link-local (169.254.0.0/16,
// fe80::/10, which holds cloud metadata at 169.254.169.254), unspecified,
// multicast, CGNAT 100.64.0.0/10, other special-purpose ranges listed in
// blockedPrefixes, and IPv4-mapped IPv6 forms of all of these. An invalid
// address is blocked (fail closed).
func Blocked(addr netip.Addr) bool {
	if !addr.IsValid() {
		return true
	}
	addr = addr.Unmap().WithZone("")
	if addr.IsLoopback() || addr.IsPrivate() || addr.IsUnspecified() ||
		addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast() ||
		addr.IsInterfaceLocalMulticast() || addr.IsMulticast() {
		return true
	}
	for _, p := range blockedPrefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// CheckURL parses raw and applies the policy: http or https only, a host,
// no user info, and (unless AllowPrivate) a host that neither is nor
// resolves to a blocked address. A name that does not resolve is refused.
func (g Guard) CheckURL(ctx context.Context, raw string) (*url.URL, error) {
	u, err := parseWebhookURL(raw)
	if err != nil {
		return nil, err
	}
	if g.AllowPrivate {
		return u, nil
	}
	if err := g.checkHost(ctx, u.Hostname()); err != nil {
		return nil, err
	}
	return u, nil
}

// parseWebhookURL checks the syntax-only rules.
func parseWebhookURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidURL)
	}
	if len(raw) > maxURLLength {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrInvalidURL, maxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%w: scheme must be http or https", ErrInvalidURL)
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return nil, fmt.Errorf("%w: no host", ErrInvalidURL)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: user info is not allowed", ErrInvalidURL)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%w: bad port %q", ErrInvalidURL, p)
		}
	}
	return u, nil
}

// checkHost refuses blocked literal addresses, numeric host forms that
// resolvers interpret inconsistently, localhost names, and names with any
// blocked address.
func (g Guard) checkHost(ctx context.Context, host string) error {
	if addr, err := netip.ParseAddr(host); err == nil {
		if Blocked(addr) {
			return fmt.Errorf("%w: %s", ErrForbiddenAddress, host)
		}
		return nil
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if looksNumeric(name) {
		// "2130706433", "0x7f.1", "0177.0.0.1", "127.1": inet_aton reads
		// these as IPv4 addresses, other parsers as names. Refuse rather
		// than guess which one the connecting side will use.
		return fmt.Errorf("%w: numeric host %q is not a dotted-quad address", ErrForbiddenAddress, host)
	}
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, host)
	}
	var r Resolver = net.DefaultResolver
	if g.Resolver != nil {
		r = g.Resolver
	}
	// The answers name neither the resolver nor what the name resolves to:
	// both are facts about the server's network, not the client's.
	addrs, err := r.LookupNetIP(ctx, "ip", name)
	if err != nil {
		return fmt.Errorf("%w: %q: %s", ErrForbiddenAddress, host, Describe(err))
	}
	if len(addrs) == 0 {
		return fmt.Errorf("%w: %q has no addresses", ErrForbiddenAddress, host)
	}
	for _, a := range addrs {
		if Blocked(a) {
			return fmt.Errorf("%w: %q resolves to a private, loopback or reserved address", ErrForbiddenAddress, host)
		}
	}
	return nil
}

// looksNumeric reports whether every dot-separated label of name is a
// decimal, octal or hex number: the inet_aton forms of an IPv4 address.
func looksNumeric(name string) bool {
	if name == "" {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" {
			return false
		}
		digits := label
		base := 10
		if len(label) > 2 && (label[:2] == "0x") {
			digits, base = label[2:], 16
		}
		if _, err := strconv.ParseUint(digits, base, 64); err != nil {
			return false
		}
	}
	return true
}

// Control is a net.Dialer Control function enforcing the policy on the
// address actually being connected to, after name resolution. It is what
// defeats DNS rebinding: the check at registration saw another answer.
func (g Guard) Control(network, address string, _ syscall.RawConn) error {
	if g.AllowPrivate {
		return nil
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: dial address %q: %v", ErrForbiddenAddress, address, err)
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: the dial address is not an IP", ErrForbiddenAddress)
	}
	if Blocked(addr) {
		return fmt.Errorf("%w: refusing to connect to a private, loopback or reserved address", ErrForbiddenAddress)
	}
	return nil
}
