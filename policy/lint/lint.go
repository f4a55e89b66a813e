// Package lint finds what is legal in a policy but almost surely wrong: a
// route that an earlier route shadows, so that it is never reached; an
// HTTP method no client sends; a token endpoint a client needs a token to
// reach. Decode accepts such policies (they are valid); lint warns about
// them, each finding positioned at file:line:col with a hint.
//
// It also gives decoding errors a hint (the known key nearest an unknown
// one), so that a CLI can print every finding of a document the same way.
package lint

import (
	"fmt"
	pathpkg "path"
	"sort"
	"strconv"
	"strings"

	"github.com/contentguard/contentguard/policy"
)

// Severity says whether a finding stops a policy from being used.
type Severity string

const (
	// Error: the data planes refuse the policy.
	Error Severity = "error"
	// Warning: the policy works, but not as its author meant.
	Warning Severity = "warning"
)

// Finding is one problem of a policy document.
type Finding struct {
	File     string   `json:"file"`
	Line     int      `json:"line,omitempty"`
	Column   int      `json:"column,omitempty"`
	Severity Severity `json:"severity"`
	// Code names the kind of finding, stable for tools: "shadowed-route",
	// "unknown-method", "invalid" (a decoding error), ...
	Code    string `json:"code"`
	Path    string `json:"path,omitempty"` // e.g. spec.routes[2].match
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

// String renders the finding as compilers do: file:line:col: path: message
// for errors (the form policy errors have always had), with "warning: "
// after the position for warnings. The hint is not included.
func (f Finding) String() string {
	e := policy.Error{File: f.File, Line: f.Line, Column: f.Column, Path: f.Path, Message: f.Message}
	if f.Severity == Warning {
		if e.Path != "" {
			e.Path = "warning: " + e.Path
		} else {
			e.Message = "warning: " + e.Message
		}
	}
	return e.Error()
}

// FromErrors turns decoding errors into findings of severity Error, each
// with a hint where one helps.
func FromErrors(errs policy.Errors) []Finding {
	out := make([]Finding, 0, len(errs))
	for _, e := range errs {
		out = append(out, Finding{
			File: e.File, Line: e.Line, Column: e.Column, Severity: Error, Code: "invalid",
			Path: e.Path, Message: e.Message, Hint: errorHint(e.Message),
		})
	}
	return out
}

// errorHint suggests a fix for a decoding error: the known key nearest an
// unknown one, the usual cause of a YAML syntax error.
func errorHint(msg string) string {
	if rest, ok := strings.CutPrefix(msg, "unknown key "); ok {
		key, known, found := strings.Cut(rest, " (known: ")
		if !found {
			return ""
		}
		key, _ = strconv.Unquote(key)
		if best := nearest(key, strings.Split(strings.TrimSuffix(known, ")"), ", ")); best != "" {
			return fmt.Sprintf("did you mean %q?", best)
		}
		return ""
	}
	for _, h := range yamlHints {
		if strings.Contains(msg, h.contains) {
			return h.hint
		}
	}
	return ""
}

var yamlHints = []struct{ contains, hint string }{
	{"found character that cannot start any token", "YAML indents with spaces, never tabs; quote values that start with @ or `"},
	{"did not find expected key", "keys of one mapping must line up: check this line's indentation against the keys above it"},
	{"mapping values are not allowed in this context", "quote a value that contains \": \", or check that this key is not indented under a scalar"},
	{"did not find expected '-' indicator", "items of one list must line up under each other"},
	{"could not find expected ':'", "a key needs \": \" after it; a multi-line value needs quotes or | / >"},
	{"did not find expected node content", "an unclosed [ or {, or a key without a value"},
	{"found unexpected end of stream", "an unclosed quote, [ or {"},
	{"did not find expected ',' or ']'", "an unclosed [ list"},
	{"did not find expected ',' or '}'", "an unclosed { mapping"},
}

// nearest returns the candidate closest to s (edit distance, transpositions
// counting one), if it is close enough to be a likely typo.
func nearest(s string, candidates []string) string {
	best, bestD := "", 0
	for _, c := range candidates {
		d := distance(strings.ToLower(s), strings.ToLower(c))
		if best == "" || d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" || bestD > max(1, len(s)/3) {
		return ""
	}
	return best
}

// distance is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions of neighbours cost one.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// Check returns the warnings of a decoded policy, positioned in root, the
// document it was decoded from (nil: findings without positions).
func Check(p *policy.Policy, root *policy.Node) []Finding {
	c := &checker{p: p, root: root}
	c.methods()
	c.routes()
	c.tokenEndpoint()
	sort.SliceStable(c.out, func(i, j int) bool {
		if c.out[i].Line != c.out[j].Line {
			return c.out[i].Line < c.out[j].Line
		}
		return c.out[i].Column < c.out[j].Column
	})
	return c.out
}

type checker struct {
	p    *policy.Policy
	root *policy.Node
	out  []Finding
}

func (c *checker) warn(path, code, hint, format string, args ...any) {
	line, col := Locate(c.root, path)
	c.out = append(c.out, Finding{
		File: c.p.Source, Line: line, Column: col, Severity: Warning, Code: code,
		Path: path, Message: fmt.Sprintf(format, args...), Hint: hint,
	})
}

// knownMethods are the registered HTTP methods clients send: RFC 9110's,
// PATCH (RFC 5789) and WebDAV's (RFC 4918, 3253).
var knownMethods = []string{
	"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
	"PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "REPORT",
}

func known(method string) bool {
	for _, m := range knownMethods {
		if m == method {
			return true
		}
	}
	return false
}

// methods warns about methods no client sends: a route limited to
// [PSOT] answers 404 to the POSTs its author meant.
func (c *checker) methods() {
	check := func(list []string, path string) {
		for i, m := range list {
			if known(m) {
				continue
			}
			hint := "registered methods: " + strings.Join(knownMethods[:9], ", ")
			if best := nearest(m, knownMethods); best != "" {
				hint = fmt.Sprintf("did you mean %s?", best)
			}
			c.warn(fmt.Sprintf("%s[%d]", path, i), "unknown-method", hint, "%q is not an HTTP method clients send", m)
		}
	}
	for i, r := range c.p.Spec.Routes {
		check(r.Match.Methods, fmt.Sprintf("spec.routes[%d].match.methods", i))
	}
	if cors := c.p.Spec.CORS; cors != nil {
		check(cors.AllowMethods, "spec.cors.allowMethods")
	}
}

// routes warns about routes that are never reached: every request one
// would match is taken by earlier routes (the first match wins). Paths
// compare as the engine matches them (matchForm): with
// spec.paths.caseInsensitive, /API/ takes /api/v1/.
func (c *checker) routes() {
	rs := c.p.Spec.Routes
	for j := 1; j < len(rs); j++ {
		path := fmt.Sprintf("spec.routes[%d]", j)
		// Each method the route takes ("" for any) must be covered by
		// some earlier route on the route's whole path set.
		methods := rs[j].Match.Methods
		if len(methods) == 0 {
			methods = []string{""}
		}
		var by []string
		shadowed, byCase := true, false
		for _, m := range methods {
			i := c.firstCovering(rs[:j], m, rs[j].Match)
			if i < 0 {
				shadowed = false
				break
			}
			byCase = byCase || !coversPaths(rs[i].Match, rs[j].Match)
			by = appendOnce(by, fmt.Sprintf("%q (line %d)", rs[i].Name, rs[i].Line))
		}
		if !shadowed {
			continue
		}
		verb, those := "matches", "that route"
		if len(by) > 1 {
			verb, those = "match", "those routes"
		}
		hint := "routes match in order, the first wins: move this route above " + strings.Join(by, " and ") + ", or narrow " + those
		if byCase {
			hint += " (spec.paths.caseInsensitive: paths match without regard to case)"
		}
		c.warn(path, "shadowed-route", hint,
			"route %q is never reached: %s %s every request it would", rs[j].Name, strings.Join(by, " and "), verb)
	}
}

// matchForm is a path as the engine compares it with route paths
// (edge.Engine's matchForm): without ';' path parameters when
// spec.paths.allowParameters admits them, in lower case when
// spec.paths.caseInsensitive.
func (c *checker) matchForm(p string) string {
	if c.p.Spec.Paths.AllowParameters && strings.Contains(p, ";") {
		segs := strings.Split(p, "/")
		for i, s := range segs {
			segs[i], _, _ = strings.Cut(s, ";")
		}
		p = strings.Join(segs, "/")
	}
	if c.p.Spec.Paths.CaseInsensitive {
		p = strings.ToLower(p)
	}
	return p
}

// matchOf is a route's match with its paths in match form.
func (c *checker) matchOf(m policy.Match) policy.Match {
	m.Path, m.PathPrefix = c.matchForm(m.Path), c.matchForm(m.PathPrefix)
	return m
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// firstCovering returns the index of the first route that matches every
// request with method m ("" for any method) on match's paths, or -1.
func (c *checker) firstCovering(earlier []policy.Route, m string, match policy.Match) int {
	for i, r := range earlier {
		if coversMethod(r.Match.Methods, m) && coversPaths(c.matchOf(r.Match), c.matchOf(match)) {
			return i
		}
	}
	return -1
}

func coversMethod(methods []string, m string) bool {
	if len(methods) == 0 {
		return true
	}
	if m == "" {
		return false
	}
	for _, x := range methods {
		if x == m {
			return true
		}
	}
	return false
}

// coversPaths reports whether every path matched by b is matched by a. A
// path holding a template character ({, *) is only ever the covered side,
// read as the literal prefix before it: a sound under-approximation for
// matchers this check does not know.
func coversPaths(a, b policy.Match) bool {
	if strings.ContainsAny(a.Path+a.PathPrefix, "{*") {
		return false
	}
	bExact, bPrefix := b.Path, b.PathPrefix
	if i := strings.IndexAny(bExact, "{*"); i >= 0 {
		bExact, bPrefix = "", bExact[:i]
	}
	if i := strings.IndexAny(bPrefix, "{*"); i >= 0 {
		bPrefix = bPrefix[:i]
	}
	switch {
	case a.Path != "":
		return bExact == a.Path
	case a.PathPrefix != "" && bExact != "":
		return strings.HasPrefix(bExact, a.PathPrefix)
	case a.PathPrefix != "":
		return strings.HasPrefix(bPrefix, a.PathPrefix)
	}
	return false
}

// tokenEndpoint warns when the routes keep clients from the token endpoint
// (a client needs a token to get a token) or verifiers from its keys.
func (c *checker) tokenEndpoint() {
	t := c.p.Spec.TokenIssuer
	if t == nil {
		return
	}
	trusted := false
	for _, pr := range c.p.Spec.Auth.JWT.Providers {
		for _, a := range pr.Audiences {
			trusted = trusted || pr.Issuer == t.Issuer && a == t.Audience
		}
	}
	if !trusted {
		c.warn("spec.tokenIssuer.issuer", "issuer-not-trusted",
			fmt.Sprintf("add a JWT provider with issuer: %s, audiences: [%s] and jwks naming the signing key's JWKS", t.Issuer, t.Audience),
			"no JWT provider trusts issuer %q with audience %q: every token the endpoint issues is refused", t.Issuer, t.Audience)
	}
	// The issuer serves revocation beside the token path (issuer.RevokePath).
	revoke := pathpkg.Join(pathpkg.Dir(t.Path), "revoke")
	for _, ep := range []struct{ method, path, what string }{
		{"POST", t.Path, "the token endpoint"},
		{"POST", revoke, "the revocation endpoint"},
		{"GET", "/.well-known/jwks.json", "the token endpoint's JWKS"},
		{"GET", "/.well-known/openid-configuration", "the token endpoint's discovery document"},
	} {
		i := c.route(ep.method, ep.path)
		switch {
		case strings.Contains(ep.path, ";") && !c.p.Spec.Paths.AllowParameters:
			c.warn("spec.tokenIssuer.path", "token-endpoint-refused",
				"drop the ';' from the path, or set spec.paths.allowParameters",
				"%s %s has a ';' path parameter: every request to %s is refused with 400 bad_path", ep.method, ep.path, ep.what)
		case i < 0:
			c.warn("spec.tokenIssuer.path", "token-endpoint-unrouted",
				fmt.Sprintf("add a route: {name: ..., match: {path: %s, methods: [%s]}, auth: none}", ep.path, ep.method),
				"no route matches %s %s: %s answers 404", ep.method, ep.path, ep.what)
		case !c.p.Spec.Routes[i].Auth.None:
			why := "a client needs a token to get a token"
			if ep.method == "GET" {
				why = "verifiers fetch it without credentials"
			}
			c.warn(fmt.Sprintf("spec.routes[%d].auth", i), "token-endpoint-needs-credentials",
				fmt.Sprintf("give %s %s a route with auth: none above %q", ep.method, ep.path, c.p.Spec.Routes[i].Name),
				"route %q requires credentials for %s %s (%s): %s", c.p.Spec.Routes[i].Name, ep.method, ep.path, ep.what, why)
		}
	}
}

// route is the engine's route selection: the first route whose path and
// method match, or -1.
func (c *checker) route(method, path string) int {
	path = c.matchForm(path)
	for i, r := range c.p.Spec.Routes {
		m := c.matchOf(r.Match)
		if m.Path != "" && m.Path != path {
			continue
		}
		if m.PathPrefix != "" && !strings.HasPrefix(path, m.PathPrefix) {
			continue
		}
		if !coversMethod(r.Match.Methods, method) {
			continue
		}
		return i
	}
	return -1
}
