// Package cors decides Cross-Origin Resource Sharing (Fetch standard) at the
// edge: which origins may read responses, and the answers to preflights.
//
// Origins in a policy are "*" (any origin, only on its own and never with
// credentials), an exact origin "scheme://host[:port]", or a subdomain
// pattern "scheme://*.domain[:port]". Matching is exact on scheme and port
// (a default port, 80 for http/ws and 443 for https/wss, equals no port) and
// case-insensitive on the host. "https://*.example.org" matches
// https://a.example.org and https://a.b.example.org, but not
// https://example.org, https://evilexample.org, https://a.example.org.evil.com
// or http://a.example.org. The "null" origin (sandboxed frames, file: pages,
// some redirects) is never allowed, not even by "*", and is refused in a
// policy: anyone can send it.
//
// An Origin header with a path, userinfo, query, whitespace, an empty or
// trailing-dot label, or non-ASCII is not an origin and is never allowed.
//
// Header lists are returned as [][2]string (name, value). Slices returned by
// Actual and Preflight may be shared between calls: do not mutate them.
//
// The package runs under the Yaegi interpreter (Traefik plugin): standard
// library only, no generics.
package cors

import (
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/contentguard/contentguard/internal/httpsyntax"
)

// Bounds on what is read from a request.
const (
	MaxOriginLen         = 1024 // longer Origin headers are not allowed
	MaxRequestHeaders    = 64   // names in Access-Control-Request-Headers
	MaxRequestHeaderSize = 4096 // bytes of Access-Control-Request-Headers
)

// Response header names.
const (
	HeaderAllowOrigin      = "Access-Control-Allow-Origin"
	HeaderAllowMethods     = "Access-Control-Allow-Methods"
	HeaderAllowHeaders     = "Access-Control-Allow-Headers"
	HeaderAllowCredentials = "Access-Control-Allow-Credentials"
	HeaderExposeHeaders    = "Access-Control-Expose-Headers"
	HeaderMaxAge           = "Access-Control-Max-Age"
	HeaderVary             = "Vary"

	varyPreflight = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
)

// Config is the cors section of a policy. AllowMethods and AllowHeaders may
// be ["*"]: any method or header is allowed, and a preflight's answer echoes
// the requested ones (which also works with credentials). ExposeHeaders may
// be ["*"] only without credentials. MaxAge is sent in whole seconds; below
// one second no Access-Control-Max-Age is sent (browsers then use 5s).
type Config struct {
	AllowOrigins, AllowMethods, AllowHeaders, ExposeHeaders []string
	AllowCredentials                                        bool
	MaxAge                                                  time.Duration
}

// Policy is a validated CORS configuration. It is immutable and safe for
// concurrent use.
type Policy struct {
	anyOrigin   bool
	exact       map[string]bool // canonical origins
	wildcards   []wildcard
	credentials bool

	anyMethod bool
	methods   []string
	anyHeader bool
	headers   []string        // as configured, for the response
	headerSet map[string]bool // the same, lower case, for matching

	allowMethods  string // joined with ", "
	allowHeaders  string
	exposeHeaders string
	maxAge        string // seconds, or "" for no header

	varyOrigin     [][2]string // shared: Actual for a refused origin
	anyOriginReply [][2]string // shared: Actual when "*" answers every origin
	refusedReply   [][2]string // shared: Preflight when refused
}

// wildcard is one "scheme://*.domain[:port]" pattern.
type wildcard struct {
	scheme string // lower case
	suffix string // ".domain", lower case
	port   int    // 0 for the scheme's default
}

// New validates c and returns its Policy.
func New(c Config) (*Policy, error) {
	p := &Policy{exact: map[string]bool{}, credentials: c.AllowCredentials}
	for i := 0; i < len(c.AllowOrigins); i++ {
		o := c.AllowOrigins[i]
		if err := p.addOrigin(o, len(c.AllowOrigins)); err != nil {
			return nil, fmt.Errorf("cors: allowOrigins[%d] %q: %w", i, o, err)
		}
	}

	var err error
	if p.anyMethod, p.methods, err = tokenList("allowMethods", c.AllowMethods, true); err != nil {
		return nil, err
	}
	if p.anyHeader, p.headers, err = tokenList("allowHeaders", c.AllowHeaders, true); err != nil {
		return nil, err
	}
	p.headerSet = map[string]bool{}
	for i := 0; i < len(p.headers); i++ {
		p.headerSet[strings.ToLower(p.headers[i])] = true
	}
	anyExpose, expose, err := tokenList("exposeHeaders", c.ExposeHeaders, !c.AllowCredentials)
	if err != nil {
		return nil, err
	}
	if anyExpose {
		expose = []string{"*"}
	}
	if c.MaxAge < 0 {
		return nil, fmt.Errorf("cors: maxAge %v is negative", c.MaxAge)
	}
	if s := int64(c.MaxAge / time.Second); s > 0 {
		p.maxAge = strconv.FormatInt(s, 10)
	}
	p.allowMethods = strings.Join(p.methods, ", ")
	p.allowHeaders = strings.Join(p.headers, ", ")
	p.exposeHeaders = strings.Join(expose, ", ")

	p.varyOrigin = [][2]string{{HeaderVary, "Origin"}}
	p.refusedReply = [][2]string{{HeaderVary, varyPreflight}}
	if p.anyOrigin && !p.credentials {
		p.anyOriginReply = actualHeaders(p, "*")
	}
	return p, nil
}

// addOrigin adds one configured origin; n is how many there are.
func (p *Policy) addOrigin(o string, n int) error {
	switch {
	case o == "*":
		if n != 1 {
			return fmt.Errorf("\"*\" must be the only origin")
		}
		if p.credentials {
			return fmt.Errorf("\"*\" cannot be used with allowCredentials")
		}
		p.anyOrigin = true
		return nil
	case strings.EqualFold(o, "null"):
		return fmt.Errorf("the null origin is never allowed: anyone can send it")
	}
	if k := strings.Index(o, "://*."); k > 0 {
		scheme, host, port, ok := parseOrigin(o[:k+3] + o[k+5:])
		if !ok {
			return fmt.Errorf("not scheme://*.domain[:port]")
		}
		if host[0] == '[' || strings.IndexByte(host, '.') < 0 {
			return fmt.Errorf("a wildcard needs a domain of two or more labels")
		}
		if _, err := netip.ParseAddr(host); err == nil {
			return fmt.Errorf("a wildcard cannot cover an IP address")
		}
		p.wildcards = append(p.wildcards, wildcard{
			scheme: strings.ToLower(scheme),
			suffix: "." + strings.ToLower(host),
			port:   port,
		})
		return nil
	}
	scheme, host, port, ok := parseOrigin(o)
	if !ok {
		return fmt.Errorf("not an origin (scheme://host[:port], no path)")
	}
	p.exact[canonical(scheme, host, port)] = true
	return nil
}

// tokenList validates a list of methods or header names. "*" alone (when
// starOK) means any name; it reports star=true and no names.
func tokenList(field string, list []string, starOK bool) (star bool, names []string, err error) {
	for i := 0; i < len(list); i++ {
		s := strings.TrimSpace(list[i])
		if s == "*" {
			if !starOK || len(list) != 1 {
				return false, nil, fmt.Errorf("cors: %s: \"*\" must stand alone (and, for exposeHeaders, without credentials)", field)
			}
			return true, nil, nil
		}
		if !httpsyntax.IsToken(s) {
			return false, nil, fmt.Errorf("cors: %s[%d] %q is not a token", field, i, list[i])
		}
		names = append(names, s)
	}
	return false, names, nil
}

// AllowedOrigin reports whether a request with this Origin header may read
// the response.
func (p *Policy) AllowedOrigin(origin string) bool {
	return allowedOrigin(p, origin)
}

// allowedOrigin is AllowedOrigin as a function. Under Yaegi a method call
// costs several times a function call, so internal calls use functions.
func allowedOrigin(p *Policy, origin string) bool {
	// The common case first: an origin exactly as configured. The keys are
	// validated canonical origins, so a hit needs no parsing.
	if p.exact[origin] {
		return true
	}
	scheme, host, port, ok := parseOrigin(origin)
	if !ok {
		return false
	}
	if p.anyOrigin {
		return true
	}
	// An exact origin written differently (upper case, default port).
	if !isCanonical(origin, scheme, host, port) && p.exact[canonical(scheme, host, port)] {
		return true
	}
	for i := 0; i < len(p.wildcards); i++ {
		w := p.wildcards[i]
		if w.port == port && strings.EqualFold(w.scheme, scheme) &&
			len(host) > len(w.suffix) && strings.EqualFold(host[len(host)-len(w.suffix):], w.suffix) {
			return true
		}
	}
	return false
}

// IsPreflight reports whether a request is a CORS preflight: OPTIONS with
// an Origin and an Access-Control-Request-Method header.
func IsPreflight(method string, h http.Header) bool {
	return method == http.MethodOptions && first(h, "Origin") != "" && first(h, "Access-Control-Request-Method") != ""
}

// Preflight answers a preflight request with its headers, and true only
// when the origin is allowed, the requested method is allowed
// (case-sensitive, as HTTP methods are) and every requested header is
// allowed (case-insensitive). Then the headers are
// Access-Control-Allow-Origin, -Methods, -Headers, -Max-Age, -Credentials
// (as configured) and Vary; otherwise only Vary.
//
// (Its results are unnamed: see breaker.Breaker.Allow.)
func (p *Policy) Preflight(h http.Header) ([][2]string, bool) {
	origins := h["Origin"]
	methods := h["Access-Control-Request-Method"]
	if len(origins) != 1 || len(methods) != 1 || !allowedOrigin(p, origins[0]) {
		return p.refusedReply, false
	}
	method := methods[0]
	if !httpsyntax.IsToken(method) || !p.anyMethod && !containsExact(p.methods, method) {
		return p.refusedReply, false
	}
	requested, ok := requestedHeadersAllowed(p, h["Access-Control-Request-Headers"])
	if !ok {
		return p.refusedReply, false
	}

	out := make([][2]string, 0, 6)
	out = append(out, [2]string{HeaderAllowOrigin, allowOriginValue(p, origins[0])})
	if p.anyMethod {
		out = append(out, [2]string{HeaderAllowMethods, method})
	} else if p.allowMethods != "" {
		out = append(out, [2]string{HeaderAllowMethods, p.allowMethods})
	}
	if p.anyHeader {
		if requested != "" {
			out = append(out, [2]string{HeaderAllowHeaders, requested})
		}
	} else if p.allowHeaders != "" {
		out = append(out, [2]string{HeaderAllowHeaders, p.allowHeaders})
	}
	if p.maxAge != "" {
		out = append(out, [2]string{HeaderMaxAge, p.maxAge})
	}
	if p.credentials {
		out = append(out, [2]string{HeaderAllowCredentials, "true"})
	}
	out = append(out, [2]string{HeaderVary, varyPreflight})
	return out, true
}

// requestedHeadersAllowed checks every name in the Access-Control-Request-
// Headers lines. It returns the names to echo when any header is allowed.
func requestedHeadersAllowed(p *Policy, lines []string) (string, bool) {
	size, count := 0, 0
	for i := 0; i < len(lines); i++ {
		size += len(lines[i])
		// One filter call per line instead of a token check per name; a
		// name then only has to be free of inner whitespace.
		if size > MaxRequestHeaderSize || len(listFilter.Replace(lines[i])) != len(lines[i]) {
			return "", false
		}
		rest := lines[i]
		for rest != "" {
			name := rest
			rest = ""
			if k := strings.IndexByte(name, ','); k >= 0 {
				name, rest = name[:k], name[k+1:]
			}
			name = strings.Trim(name, " \t")
			if name == "" {
				continue
			}
			count++
			if count > MaxRequestHeaders || strings.IndexAny(name, " \t") >= 0 {
				return "", false
			}
			// Browsers send lower-case names: ToLower then returns name
			// without allocating.
			if !p.anyHeader && !p.headerSet[strings.ToLower(name)] {
				return "", false
			}
		}
	}
	if !p.anyHeader || count == 0 {
		return "", true
	}
	if len(lines) == 1 {
		return strings.Trim(lines[0], " \t"), true
	}
	return strings.Join(lines, ", "), true
}

// Actual returns the CORS headers for a request that is not a preflight. For
// an allowed origin: Access-Control-Allow-Origin, -Expose-Headers,
// -Allow-Credentials (as configured) and Vary: Origin. Otherwise only
// Vary: Origin, so that caches keep the answers apart.
func (p *Policy) Actual(origin string) [][2]string {
	if !allowedOrigin(p, origin) {
		return p.varyOrigin
	}
	if p.anyOriginReply != nil {
		return p.anyOriginReply
	}
	return actualHeaders(p, origin)
}

func actualHeaders(p *Policy, origin string) [][2]string {
	out := make([][2]string, 0, 4)
	out = append(out, [2]string{HeaderAllowOrigin, allowOriginValue(p, origin)})
	if p.exposeHeaders != "" {
		out = append(out, [2]string{HeaderExposeHeaders, p.exposeHeaders})
	}
	if p.credentials {
		out = append(out, [2]string{HeaderAllowCredentials, "true"})
	}
	return append(out, [2]string{HeaderVary, "Origin"})
}

// allowOriginValue is "*" for a policy of any origin without credentials,
// else the request's origin, byte for byte (browsers compare it exactly).
func allowOriginValue(p *Policy, origin string) string {
	if p.anyOrigin && !p.credentials {
		return "*"
	}
	return origin
}

// parseOrigin splits "scheme://host[:port]". port is 0 when absent or the
// scheme's default. host keeps its brackets for IPv6 and its case.
func parseOrigin(s string) (scheme, host string, port int, ok bool) {
	if len(s) > MaxOriginLen {
		return "", "", 0, false
	}
	// Checks are written out rather than in helpers: under Yaegi every
	// interpreted call costs about a microsecond.
	k := strings.Index(s, "://")
	// scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3986 §3.1)
	if k <= 0 || strings.IndexByte(letters, s[0]) < 0 || len(schemeFilter.Replace(s[:k])) != k {
		return "", "", 0, false
	}
	scheme, rest := s[:k], s[k+3:]
	portStr := ""
	if rest != "" && rest[0] == '[' {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return "", "", 0, false
		}
		a, err := netip.ParseAddr(rest[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", "", 0, false
		}
		host, portStr = rest[:end+1], rest[end+1:]
	} else {
		host = rest
		if c := strings.IndexByte(rest, ':'); c >= 0 {
			host, portStr = rest[:c], rest[c:]
		}
		// Dot-separated labels of 1..63 letters, digits, '-' and '_' (IPv4
		// addresses included); no empty label, so no trailing dot.
		if host == "" || len(hostFilter.Replace(host)) != len(host) || host[0] == '.' ||
			host[len(host)-1] == '.' || strings.Contains(host, "..") || len(host) > 63 && !labelsFit(host) {
			return "", "", 0, false
		}
	}
	if portStr != "" {
		if len(portStr) < 2 || len(portStr) > 6 || portStr[0] != ':' {
			return "", "", 0, false
		}
		if len(digitFilter.Replace(portStr[1:])) != len(portStr)-1 {
			return "", "", 0, false
		}
		port, _ = strconv.Atoi(portStr[1:]) // at most five digits: no error
		if port == 0 || port > 65535 {
			return "", "", 0, false
		}
		if port == defaultPort(scheme) {
			port = 0
		}
	}
	return scheme, host, port, true
}

// defaultPort returns the default port of a scheme, or -1.
func defaultPort(scheme string) int {
	switch strings.ToLower(scheme) {
	case "http", "ws":
		return 80
	case "https", "wss":
		return 443
	}
	return -1
}

// isCanonical reports whether origin, which parseOrigin split into scheme,
// host and port, is already lower case and has no default or zero-padded port.
func isCanonical(origin, scheme, host string, port int) bool {
	if strings.ToLower(origin) != origin { // no allocation when it is lower case
		return false
	}
	want := len(scheme) + len("://") + len(host)
	if port != 0 {
		want += len(":") + len(strconv.Itoa(port))
	}
	return len(origin) == want
}

// canonical builds the lower-case origin, with the port only when it is not
// the default.
func canonical(scheme, host string, port int) string {
	s := strings.ToLower(scheme) + "://" + strings.ToLower(host)
	if port != 0 {
		s += ":" + strconv.Itoa(port)
	}
	return s
}

// Byte sets of the parts of an origin (ASCII only).
const (
	letters     = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	digits      = "0123456789"
	schemeChars = letters + digits + "+-."
	hostChars   = letters + digits + "-_."
)

// Byte filters (see httpsyntax.NewFilter), built once and never changed.
var (
	listFilter   = httpsyntax.NewFilter(httpsyntax.TokenChars + ", \t") // a list of tokens
	digitFilter  = httpsyntax.NewFilter(digits)
	schemeFilter = httpsyntax.NewFilter(schemeChars)
	hostFilter   = httpsyntax.NewFilter(hostChars)
)

// labelsFit reports whether every dot-separated label of s is at most 63
// bytes long.
func labelsFit(s string) bool {
	for {
		k := strings.IndexByte(s, '.')
		if k < 0 {
			return len(s) <= 63
		}
		if k > 63 {
			return false
		}
		s = s[k+1:]
	}
}

func containsExact(list []string, s string) bool {
	for i := 0; i < len(list); i++ {
		if list[i] == s {
			return true
		}
	}
	return false
}

// first returns the first value of a canonical header name, or "".
func first(h http.Header, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}
