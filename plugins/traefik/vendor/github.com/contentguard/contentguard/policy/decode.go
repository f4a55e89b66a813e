package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Error is one problem in a policy document, with its position.
type Error struct {
	File    string
	Line    int
	Column  int
	Path    string // e.g. spec.routes[2].auth.scopes[0]
	Message string
}

func (e Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Column))
		b.WriteString(":")
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Errors is every problem found in one document, in source order.
type Errors []Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i := 0; i < len(es); i++ {
		lines[i] = es[i].Error()
	}
	return strings.Join(lines, "\n")
}

// maxErrors stops a hostile or badly broken document from producing an
// unbounded error list.
const maxErrors = 100

// Decode turns a document tree into a validated Policy with defaults applied.
// file names the source in error messages; data, when not nil, is hashed into
// Policy.Hash. On any error the result is nil and the error is an Errors.
func Decode(root *Node, file string, data []byte) (*Policy, error) {
	d := &decoder{file: file}
	p := d.policy(root)
	if len(d.errs) == 0 {
		d.validate(p)
	}
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool {
			if d.errs[i].Line != d.errs[j].Line {
				return d.errs[i].Line < d.errs[j].Line
			}
			return d.errs[i].Column < d.errs[j].Column
		})
		return nil, d.errs
	}
	p.Source = file
	sum := sha256.Sum256(data)
	p.Hash = hex.EncodeToString(sum[:])
	return p, nil
}

// DecodeJSON parses and decodes a JSON policy document.
func DecodeJSON(data []byte, file string) (*Policy, error) {
	root, err := ParseJSON(data)
	if err != nil {
		return nil, Errors{{File: file, Message: err.Error()}}
	}
	return Decode(root, file, data)
}

type decoder struct {
	file string
	errs Errors
	// at remembers the node behind every path read, so that checks across
	// fields, which run after decoding, still report positions.
	at map[string]*Node
}

func (d *decoder) remember(path string, n *Node) {
	if n == nil {
		return
	}
	if d.at == nil {
		d.at = make(map[string]*Node)
	}
	d.at[path] = n
}

// fail reports a problem found after decoding at path, positioned at the
// nearest node that was read on the way there.
func (d *decoder) fail(path, format string, args ...any) {
	p := path
	for {
		if n, ok := d.at[p]; ok {
			d.errorf(n, path, format, args...)
			return
		}
		cut := strings.LastIndexAny(p, ".[")
		if cut < 0 {
			d.errorf(nil, path, format, args...)
			return
		}
		p = p[:cut]
	}
}

func (d *decoder) errorf(n *Node, path, format string, args ...any) {
	if len(d.errs) >= maxErrors {
		return
	}
	e := Error{File: d.file, Path: path, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line = n.Line
		e.Column = n.Column
	}
	d.errs = append(d.errs, e)
}

// mapping checks that n is a mapping whose keys are all known and unique.
func (d *decoder) mapping(n *Node, path string, known ...string) bool {
	if n == nil {
		return false
	}
	if n.Kind != Mapping {
		d.errorf(n, path, "expected a mapping, got %s", describe(n))
		return false
	}
	d.remember(path, n)
	seen := make(map[string]bool, len(n.Pairs))
	for i := 0; i < len(n.Pairs); i++ {
		k := n.Pairs[i].Key
		d.remember(join(path, k.Value), n.Pairs[i].Value)
		if seen[k.Value] {
			d.errorf(k, join(path, k.Value), "duplicate key")
			continue
		}
		seen[k.Value] = true
		ok := false
		for j := 0; j < len(known); j++ {
			if known[j] == k.Value {
				ok = true
				break
			}
		}
		if !ok {
			d.errorf(k, join(path, k.Value), "unknown key %q (known: %s)", k.Value, strings.Join(known, ", "))
		}
	}
	return true
}

func describe(n *Node) string {
	switch n.Kind {
	case Scalar:
		if n.Tag == "str" {
			return fmt.Sprintf("string %q", n.Value)
		}
		return fmt.Sprintf("%s %s", n.Tag, n.Value)
	}
	return n.Kind.String()
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func (d *decoder) str(n *Node, path string) string {
	if n == nil {
		return ""
	}
	if n.Kind != Scalar || n.Tag != "str" {
		d.errorf(n, path, "expected a string, got %s", describe(n))
		return ""
	}
	return n.Value
}

func (d *decoder) boolean(n *Node, path string) bool {
	if n == nil {
		return false
	}
	if n.Kind != Scalar || n.Tag != "bool" {
		d.errorf(n, path, "expected true or false, got %s", describe(n))
		return false
	}
	return n.Value == "true"
}

func (d *decoder) integer(n *Node, path string) int {
	if n == nil {
		return 0
	}
	if n.Kind != Scalar || n.Tag != "int" {
		d.errorf(n, path, "expected an integer, got %s", describe(n))
		return 0
	}
	v, err := strconv.ParseInt(n.Value, 0, 32)
	if err != nil {
		d.errorf(n, path, "integer out of range: %s", n.Value)
		return 0
	}
	return int(v)
}

func (d *decoder) float(n *Node, path string) float64 {
	if n == nil {
		return 0
	}
	if n.Kind != Scalar || (n.Tag != "float" && n.Tag != "int") {
		d.errorf(n, path, "expected a number, got %s", describe(n))
		return 0
	}
	v, err := strconv.ParseFloat(n.Value, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		d.errorf(n, path, "invalid number %s", n.Value)
		return 0
	}
	return v
}

// duration accepts Go duration syntax ("90s", "15m", "720h"). Zero and
// negative durations are rejected: every duration in a policy is a period.
func (d *decoder) duration(n *Node, path string) time.Duration {
	s := d.str(n, path)
	if n == nil || s == "" && n.Tag != "str" {
		return 0
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.errorf(n, path, "invalid duration %q (use Go syntax such as 90s, 15m, 720h)", s)
		return 0
	}
	if v <= 0 {
		d.errorf(n, path, "duration must be positive, got %s", s)
		return 0
	}
	return v
}

// size accepts a byte count as an integer or with a unit: B, KB, MB, GB
// (powers of 1000) or KiB, MiB, GiB (powers of 1024).
func (d *decoder) size(n *Node, path string) int64 {
	if n == nil {
		return 0
	}
	if n.Kind == Scalar && n.Tag == "int" {
		v, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil || v <= 0 {
			d.errorf(n, path, "size must be a positive number of bytes, got %s", n.Value)
			return 0
		}
		return v
	}
	s := d.str(n, path)
	if s == "" {
		return 0
	}
	v, ok := ParseSize(s)
	if !ok {
		d.errorf(n, path, "invalid size %q (use bytes or a unit: KiB, MiB, GiB, KB, MB, GB)", s)
		return 0
	}
	return v
}

// ParseSize parses a positive size such as "1MiB", "512KB" or "2048".
func ParseSize(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1}}
	mult := int64(1)
	for i := 0; i < len(units); i++ {
		if strings.HasSuffix(s, units[i].suffix) {
			s = strings.TrimSpace(strings.TrimSuffix(s, units[i].suffix))
			mult = units[i].mult
			break
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 || v > math.MaxInt64/mult {
		return 0, false
	}
	return v * mult, true
}

func (d *decoder) strings(n *Node, path string) []string {
	if n == nil {
		return nil
	}
	if n.Kind != Sequence {
		d.errorf(n, path, "expected a list, got %s", describe(n))
		return nil
	}
	d.remember(path, n)
	out := make([]string, 0, len(n.Items))
	for i := 0; i < len(n.Items); i++ {
		d.remember(index(path, i), n.Items[i])
		out = append(out, d.str(n.Items[i], index(path, i)))
	}
	return out
}

func (d *decoder) stringMap(n *Node, path string) map[string]string {
	if n == nil {
		return nil
	}
	if !d.mapping(n, path) && n.Kind != Mapping {
		return nil
	}
	// mapping() above reported every key as unknown; undo that for free-form maps.
	d.dropUnknownKeyErrors(path)
	out := make(map[string]string, len(n.Pairs))
	for i := 0; i < len(n.Pairs); i++ {
		out[n.Pairs[i].Key.Value] = d.str(n.Pairs[i].Value, join(path, n.Pairs[i].Key.Value))
	}
	return out
}

func (d *decoder) dropUnknownKeyErrors(path string) {
	kept := d.errs[:0]
	for i := 0; i < len(d.errs); i++ {
		e := d.errs[i]
		if strings.HasPrefix(e.Message, "unknown key") && strings.HasPrefix(e.Path, path+".") {
			continue
		}
		kept = append(kept, e)
	}
	d.errs = kept
}

func (d *decoder) policy(root *Node) *Policy {
	p := &Policy{}
	if root == nil || root.Kind == Null {
		d.errorf(root, "", "empty policy document")
		return p
	}
	if !d.mapping(root, "", "apiVersion", "kind", "metadata", "spec") {
		return p
	}
	p.APIVersion = d.str(root.Get("apiVersion"), "apiVersion")
	if p.APIVersion != APIVersion {
		d.errorf(orNode(root.Get("apiVersion"), root), "apiVersion", "must be %q", APIVersion)
	}
	p.Kind = d.str(root.Get("kind"), "kind")
	if p.Kind != KindEdgePolicy {
		d.errorf(orNode(root.Get("kind"), root), "kind", "must be %q", KindEdgePolicy)
	}
	if md := root.Get("metadata"); md != nil && d.mapping(md, "metadata", "name", "version", "labels") {
		p.Metadata.Name = d.str(md.Get("name"), "metadata.name")
		p.Metadata.Version = d.str(md.Get("version"), "metadata.version")
		p.Metadata.Labels = d.stringMap(md.Get("labels"), "metadata.labels")
	}
	spec := root.Get("spec")
	if spec == nil {
		d.errorf(root, "spec", "is required")
		return p
	}
	d.spec(spec, &p.Spec)
	return p
}

func orNode(n, fallback *Node) *Node {
	if n != nil {
		return n
	}
	return fallback
}

func (d *decoder) spec(n *Node, s *Spec) {
	if !d.mapping(n, "spec", "upstream", "clientIP", "requestID", "auth", "tokenIssuer",
		"rateLimit", "circuitBreaker", "cors", "securityHeaders", "limits", "paths", "routes") {
		return
	}
	if u := n.Get("upstream"); u != nil && d.mapping(u, "spec.upstream", "url", "timeout") {
		s.Upstream.URL = d.str(u.Get("url"), "spec.upstream.url")
		s.Upstream.Timeout = d.duration(u.Get("timeout"), "spec.upstream.timeout")
	}
	if c := n.Get("clientIP"); c != nil && d.mapping(c, "spec.clientIP", "trustedProxies", "headers") {
		tp := c.Get("trustedProxies")
		for i, v := range d.strings(tp, "spec.clientIP.trustedProxies") {
			pfx, err := parsePrefix(v)
			if err != nil {
				d.errorf(tp.Items[i], index("spec.clientIP.trustedProxies", i), "%v", err)
				continue
			}
			s.ClientIP.TrustedProxies = append(s.ClientIP.TrustedProxies, pfx)
		}
		s.ClientIP.Headers = d.strings(c.Get("headers"), "spec.clientIP.headers")
	}
	if r := n.Get("requestID"); r != nil && d.mapping(r, "spec.requestID", "header", "alsoHeaders", "trustIncoming", "format") {
		s.RequestID.Header = d.str(r.Get("header"), "spec.requestID.header")
		s.RequestID.AlsoHeaders = d.strings(r.Get("alsoHeaders"), "spec.requestID.alsoHeaders")
		s.RequestID.TrustIncoming = true
		if t := r.Get("trustIncoming"); t != nil {
			s.RequestID.TrustIncoming = d.boolean(t, "spec.requestID.trustIncoming")
		}
		s.RequestID.Format = d.str(r.Get("format"), "spec.requestID.format")
	} else {
		s.RequestID.TrustIncoming = true
	}
	if a := n.Get("auth"); a != nil {
		d.auth(a, &s.Auth)
	}
	if t := n.Get("tokenIssuer"); t != nil {
		s.TokenIssuer = d.tokenIssuer(t)
	}
	if r := n.Get("rateLimit"); r != nil && d.mapping(r, "spec.rateLimit", "store", "headers") {
		if st := r.Get("store"); st != nil && d.mapping(st, "spec.rateLimit.store", "type", "url", "onError") {
			s.RateLimit.Store.Type = d.str(st.Get("type"), "spec.rateLimit.store.type")
			s.RateLimit.Store.URL = d.str(st.Get("url"), "spec.rateLimit.store.url")
			s.RateLimit.Store.OnError = d.str(st.Get("onError"), "spec.rateLimit.store.onError")
		}
		s.RateLimit.Headers = d.str(r.Get("headers"), "spec.rateLimit.headers")
	}
	s.CircuitBreaker.ConsecutiveFailures = -1
	if c := n.Get("circuitBreaker"); c != nil {
		d.breaker(c, &s.CircuitBreaker)
	}
	if c := n.Get("cors"); c != nil && d.mapping(c, "spec.cors", "allowOrigins", "allowMethods", "allowHeaders", "exposeHeaders", "allowCredentials", "maxAge") {
		s.CORS = &CORS{
			AllowOrigins:     d.strings(c.Get("allowOrigins"), "spec.cors.allowOrigins"),
			AllowMethods:     d.strings(c.Get("allowMethods"), "spec.cors.allowMethods"),
			AllowHeaders:     d.strings(c.Get("allowHeaders"), "spec.cors.allowHeaders"),
			ExposeHeaders:    d.strings(c.Get("exposeHeaders"), "spec.cors.exposeHeaders"),
			AllowCredentials: d.boolean(c.Get("allowCredentials"), "spec.cors.allowCredentials"),
			MaxAge:           d.duration(c.Get("maxAge"), "spec.cors.maxAge"),
		}
	}
	if h := n.Get("securityHeaders"); h != nil {
		if h.Kind == Mapping {
			s.SecurityHeaders.Custom = d.stringMap(h, "spec.securityHeaders")
		} else {
			s.SecurityHeaders.Preset = d.str(h, "spec.securityHeaders")
		}
	}
	if l := n.Get("limits"); l != nil && d.mapping(l, "spec.limits", "maxBodyBytes", "maxHeaderBytes") {
		s.Limits.MaxBodyBytes = d.size(l.Get("maxBodyBytes"), "spec.limits.maxBodyBytes")
		s.Limits.MaxHeaderBytes = d.size(l.Get("maxHeaderBytes"), "spec.limits.maxHeaderBytes")
	}
	if pa := n.Get("paths"); pa != nil && d.mapping(pa, "spec.paths", "allowParameters", "caseInsensitive") {
		s.Paths.AllowParameters = d.boolean(pa.Get("allowParameters"), "spec.paths.allowParameters")
		s.Paths.CaseInsensitive = d.boolean(pa.Get("caseInsensitive"), "spec.paths.caseInsensitive")
	}
	routes := n.Get("routes")
	if routes == nil {
		d.errorf(n, "spec.routes", "is required: at least one route")
		return
	}
	if routes.Kind != Sequence {
		d.errorf(routes, "spec.routes", "expected a list, got %s", describe(routes))
		return
	}
	for i := 0; i < len(routes.Items); i++ {
		d.remember(index("spec.routes", i), routes.Items[i])
		s.Routes = append(s.Routes, d.route(routes.Items[i], index("spec.routes", i)))
	}
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q", s)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid address or CIDR %q", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (d *decoder) auth(n *Node, a *Auth) {
	if !d.mapping(n, "spec.auth", "jwt", "apiKeys") {
		return
	}
	if j := n.Get("jwt"); j != nil && d.mapping(j, "spec.auth.jwt", "providers") {
		ps := j.Get("providers")
		if ps != nil && ps.Kind != Sequence {
			d.errorf(ps, "spec.auth.jwt.providers", "expected a list, got %s", describe(ps))
		} else if ps != nil {
			for i := 0; i < len(ps.Items); i++ {
				d.remember(index("spec.auth.jwt.providers", i), ps.Items[i])
				a.JWT.Providers = append(a.JWT.Providers, d.provider(ps.Items[i], index("spec.auth.jwt.providers", i)))
			}
		}
	}
	if k := n.Get("apiKeys"); k != nil && d.mapping(k, "spec.auth.apiKeys", "header", "keys") {
		a.APIKeys = &APIKeys{Header: d.str(k.Get("header"), "spec.auth.apiKeys.header")}
		keys := k.Get("keys")
		if keys != nil && keys.Kind != Sequence {
			d.errorf(keys, "spec.auth.apiKeys.keys", "expected a list, got %s", describe(keys))
			return
		}
		if keys == nil {
			return
		}
		for i := 0; i < len(keys.Items); i++ {
			path := index("spec.auth.apiKeys.keys", i)
			kn := keys.Items[i]
			d.remember(path, kn)
			if !d.mapping(kn, path, "id", "sha256", "scopes") {
				continue
			}
			key := APIKey{ID: d.str(kn.Get("id"), join(path, "id"))}
			sum := d.str(kn.Get("sha256"), join(path, "sha256"))
			raw, err := hex.DecodeString(sum)
			if err != nil || len(raw) != 32 {
				d.errorf(orNode(kn.Get("sha256"), kn), join(path, "sha256"), "must be the 64 hex digits of the key's SHA-256")
			} else {
				copy(key.SHA256[:], raw)
			}
			key.Scopes = d.scopes(kn.Get("scopes"), join(path, "scopes"))
			a.APIKeys.Keys = append(a.APIKeys.Keys, key)
		}
	}
}

func (d *decoder) provider(n *Node, path string) JWTProvider {
	var p JWTProvider
	if !d.mapping(n, path, "name", "issuer", "audiences", "algorithms", "jwks", "secret", "clockSkew", "scopeClaim", "forwardClaims") {
		return p
	}
	p.Name = d.str(n.Get("name"), join(path, "name"))
	p.Issuer = d.str(n.Get("issuer"), join(path, "issuer"))
	p.Audiences = d.strings(n.Get("audiences"), join(path, "audiences"))
	algs := n.Get("algorithms")
	p.Algorithms = d.strings(algs, join(path, "algorithms"))
	for i := 0; i < len(p.Algorithms); i++ {
		if !knownAlgorithm(p.Algorithms[i]) {
			msg := "unknown algorithm %q (allowed: ES256 ES384 ES512 RS256 RS384 RS512 PS256 PS384 PS512 EdDSA HS256 HS384 HS512)"
			if strings.EqualFold(p.Algorithms[i], "none") {
				msg = "algorithm %q is never allowed: unsigned tokens prove nothing"
			}
			d.errorf(algs.Items[i], index(join(path, "algorithms"), i), msg, p.Algorithms[i])
		}
	}
	if j := n.Get("jwks"); j != nil {
		p.JWKS = d.keySource(j, join(path, "jwks"), true)
	}
	if s := n.Get("secret"); s != nil {
		p.Secret = d.secret(s, join(path, "secret"))
	}
	if c := n.Get("clockSkew"); c != nil {
		if c.Kind == Scalar && (c.Value == "0" || c.Value == "0s") {
			p.ClockSkew = 0
		} else {
			p.ClockSkew = d.duration(c, join(path, "clockSkew"))
		}
	} else {
		p.ClockSkew = -1 // defaulted later
	}
	p.ScopeClaim = d.str(n.Get("scopeClaim"), join(path, "scopeClaim"))
	fc := d.stringMap(n.Get("forwardClaims"), join(path, "forwardClaims"))
	for claim, header := range fc {
		p.ForwardClaims = append(p.ForwardClaims, ClaimHeader{Claim: claim, Header: header})
	}
	sort.Slice(p.ForwardClaims, func(i, j int) bool { return p.ForwardClaims[i].Claim < p.ForwardClaims[j].Claim })
	return p
}

func knownAlgorithm(a string) bool {
	switch a {
	case "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA", "HS256", "HS384", "HS512":
		return true
	}
	return false
}

func (d *decoder) keySource(n *Node, path string, refresh bool) *KeySource {
	known := []string{"file", "url", "inline"}
	if refresh {
		known = append(known, "refresh", "readyWithoutKeys")
	}
	if !d.mapping(n, path, known...) {
		return nil
	}
	k := &KeySource{
		File: d.str(n.Get("file"), join(path, "file")),
		URL:  d.str(n.Get("url"), join(path, "url")),
	}
	if in := n.Get("inline"); in != nil {
		if in.Kind == Mapping {
			k.Inline = nodeJSON(in) // a JWKS written as YAML
		} else {
			k.Inline = d.str(in, join(path, "inline"))
		}
	}
	if r := n.Get("refresh"); r != nil {
		k.Refresh = d.duration(r, join(path, "refresh"))
	}
	if r := n.Get("readyWithoutKeys"); r != nil {
		k.ReadyWithoutKeys = d.boolean(r, join(path, "readyWithoutKeys"))
		if k.URL == "" {
			d.errorf(r, join(path, "readyWithoutKeys"), "applies to url key sets only (file and inline keys are loaded at start)")
		}
	}
	set := 0
	for _, v := range []string{k.File, k.URL, k.Inline} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		d.errorf(n, path, "exactly one of file, url or inline is required")
	}
	if k.URL != "" && !strings.HasPrefix(k.URL, "https://") && !strings.HasPrefix(k.URL, "http://") {
		d.errorf(n.Get("url"), join(path, "url"), "must be an http or https URL")
	}
	return k
}

func (d *decoder) secret(n *Node, path string) *SecretRef {
	if !d.mapping(n, path, "file", "env", "value") {
		return nil
	}
	s := &SecretRef{
		File:  d.str(n.Get("file"), join(path, "file")),
		Env:   d.str(n.Get("env"), join(path, "env")),
		Value: d.str(n.Get("value"), join(path, "value")),
	}
	set := 0
	for _, v := range []string{s.File, s.Env, s.Value} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		d.errorf(n, path, "exactly one of file, env or value is required")
	}
	return s
}

// JSON renders the node as JSON text. Policies written in YAML travel to the
// Traefik plugin (Yaegi cannot interpret the YAML library) as this JSON.
func (n *Node) JSON() string { return nodeJSON(n) }

// nodeJSON renders a node as JSON text, for inline key sets written as YAML.
func nodeJSON(n *Node) string {
	var b strings.Builder
	writeNodeJSON(&b, n)
	return b.String()
}

func writeNodeJSON(b *strings.Builder, n *Node) {
	switch n.Kind {
	case Mapping:
		b.WriteByte('{')
		for i := 0; i < len(n.Pairs); i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(n.Pairs[i].Key.Value)
			b.Write(k)
			b.WriteByte(':')
			writeNodeJSON(b, n.Pairs[i].Value)
		}
		b.WriteByte('}')
	case Sequence:
		b.WriteByte('[')
		for i := 0; i < len(n.Items); i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			writeNodeJSON(b, n.Items[i])
		}
		b.WriteByte(']')
	case Scalar:
		if n.Tag == "str" {
			v, _ := json.Marshal(n.Value)
			b.Write(v)
		} else {
			b.WriteString(n.Value)
		}
	default:
		b.WriteString("null")
	}
}

func (d *decoder) scopes(n *Node, path string) []string {
	out := d.strings(n, path)
	for i := 0; i < len(out); i++ {
		if !validScope(out[i]) {
			d.errorf(n.Items[i], index(path, i), "invalid scope %q: a scope is one token of printable ASCII without spaces, quotes or backslashes (RFC 6749 §3.3)", out[i])
		}
	}
	return out
}

// validScope follows RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
func validScope(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return true
}

func (d *decoder) tokenIssuer(n *Node) *TokenIssuer {
	const path = "spec.tokenIssuer"
	if !d.mapping(n, path, "path", "issuer", "audience", "signingKey", "accessTTL", "refreshTTL", "users", "clients") {
		return nil
	}
	t := &TokenIssuer{
		Path:       d.str(n.Get("path"), path+".path"),
		Issuer:     d.str(n.Get("issuer"), path+".issuer"),
		Audience:   d.str(n.Get("audience"), path+".audience"),
		AccessTTL:  d.duration(n.Get("accessTTL"), path+".accessTTL"),
		RefreshTTL: d.duration(n.Get("refreshTTL"), path+".refreshTTL"),
	}
	if k := n.Get("signingKey"); k != nil {
		if ks := d.keySource(k, path+".signingKey", false); ks != nil {
			t.SigningKey = *ks
		}
	}
	t.Users = d.principals(n.Get("users"), path+".users", "username")
	t.Clients = d.principals(n.Get("clients"), path+".clients", "id")
	return t
}

func (d *decoder) principals(n *Node, path, nameKey string) []Principal {
	if n == nil {
		return nil
	}
	if n.Kind != Sequence {
		d.errorf(n, path, "expected a list, got %s", describe(n))
		return nil
	}
	var out []Principal
	for i := 0; i < len(n.Items); i++ {
		p := index(path, i)
		it := n.Items[i]
		d.remember(p, it)
		if !d.mapping(it, p, nameKey, "bcrypt", "scopes") {
			continue
		}
		pr := Principal{
			Name:   d.str(it.Get(nameKey), join(p, nameKey)),
			Bcrypt: d.str(it.Get("bcrypt"), join(p, "bcrypt")),
			Scopes: d.scopes(it.Get("scopes"), join(p, "scopes")),
		}
		if pr.Name == "" {
			d.errorf(it, join(p, nameKey), "is required")
		}
		if !strings.HasPrefix(pr.Bcrypt, "$2a$") && !strings.HasPrefix(pr.Bcrypt, "$2b$") && !strings.HasPrefix(pr.Bcrypt, "$2y$") {
			d.errorf(orNode(it.Get("bcrypt"), it), join(p, "bcrypt"), "must be a bcrypt hash ($2a$, $2b$ or $2y$)")
		}
		out = append(out, pr)
	}
	return out
}

func (d *decoder) breaker(n *Node, c *CircuitBreaker) {
	const path = "spec.circuitBreaker"
	if !d.mapping(n, path, "consecutiveFailures", "failureRatio", "openFor", "halfOpenRequests", "failOn") {
		return
	}
	if v := n.Get("consecutiveFailures"); v != nil {
		c.ConsecutiveFailures = d.integer(v, path+".consecutiveFailures")
		if c.ConsecutiveFailures < 0 {
			d.errorf(v, path+".consecutiveFailures", "must not be negative (0 turns it off)")
		}
	}
	if fr := n.Get("failureRatio"); fr != nil && d.mapping(fr, path+".failureRatio", "ratio", "minRequests", "window") {
		c.FailureRatio = &FailureRatio{
			Ratio:       d.float(fr.Get("ratio"), path+".failureRatio.ratio"),
			MinRequests: d.integer(fr.Get("minRequests"), path+".failureRatio.minRequests"),
			Window:      d.duration(fr.Get("window"), path+".failureRatio.window"),
		}
		if r := c.FailureRatio.Ratio; r <= 0 || r > 1 {
			d.errorf(orNode(fr.Get("ratio"), fr), path+".failureRatio.ratio", "must be in (0, 1]")
		}
		if c.FailureRatio.MinRequests < 0 {
			d.errorf(fr.Get("minRequests"), path+".failureRatio.minRequests", "must not be negative")
		}
	}
	c.OpenFor = d.duration(n.Get("openFor"), path+".openFor")
	if v := n.Get("halfOpenRequests"); v != nil {
		c.HalfOpenRequests = d.integer(v, path+".halfOpenRequests")
		if c.HalfOpenRequests < 1 {
			d.errorf(v, path+".halfOpenRequests", "must be at least 1")
		}
	}
	if fo := n.Get("failOn"); fo != nil {
		if fo.Kind != Sequence {
			d.errorf(fo, path+".failOn", "expected a list, got %s", describe(fo))
			return
		}
		c.FailOn = FailOn{}
		for i := 0; i < len(fo.Items); i++ {
			it := fo.Items[i]
			p := index(path+".failOn", i)
			switch {
			case it.Kind == Scalar && it.Tag == "int":
				code := d.integer(it, p)
				if code < 500 || code > 599 {
					d.errorf(it, p, "only 5xx statuses can count as failures, got %d", code)
				}
				c.FailOn.Statuses = append(c.FailOn.Statuses, code)
			case it.Kind == Scalar && it.Value == "timeout":
				c.FailOn.Timeout = true
			case it.Kind == Scalar && it.Value == "connection":
				c.FailOn.Connection = true
			default:
				d.errorf(it, p, "expected a 5xx status, timeout or connection, got %s", describe(it))
			}
		}
	}
}

func (d *decoder) route(n *Node, path string) Route {
	r := Route{Line: n.Line}
	if !d.mapping(n, path, "name", "match", "auth", "rateLimit", "websocket", "bodyTimeout") {
		return r
	}
	r.Name = d.str(n.Get("name"), join(path, "name"))
	if r.Name == "" {
		d.errorf(n, join(path, "name"), "is required")
	}
	m := n.Get("match")
	if m == nil {
		d.errorf(n, join(path, "match"), "is required")
	} else if d.mapping(m, join(path, "match"), "path", "pathPrefix", "methods") {
		r.Match.Path = d.str(m.Get("path"), join(path, "match.path"))
		r.Match.PathPrefix = d.str(m.Get("pathPrefix"), join(path, "match.pathPrefix"))
		r.Match.Methods = d.strings(m.Get("methods"), join(path, "match.methods"))
		if (r.Match.Path == "") == (r.Match.PathPrefix == "") {
			d.errorf(m, join(path, "match"), "exactly one of path or pathPrefix is required")
		}
	}
	a := n.Get("auth")
	switch {
	case a == nil:
		// Fail closed: a route that does not say otherwise needs credentials.
		r.Auth.AnyOf = nil
	case a.Kind == Scalar && a.Tag == "str" && a.Value == "none":
		r.Auth.None = true
	case a.Kind == Mapping:
		if d.mapping(a, join(path, "auth"), "anyOf", "scopes") {
			r.Auth.AnyOf = d.strings(a.Get("anyOf"), join(path, "auth.anyOf"))
			r.Auth.Scopes = d.scopes(a.Get("scopes"), join(path, "auth.scopes"))
		}
	default:
		d.errorf(a, join(path, "auth"), "expected none or a mapping with anyOf and scopes, got %s", describe(a))
	}
	if rl := n.Get("rateLimit"); rl != nil && d.mapping(rl, join(path, "rateLimit"), "key", "rate", "per", "burst") {
		r.RateLimit = &RouteRateLimit{
			Key:   d.str(rl.Get("key"), join(path, "rateLimit.key")),
			Rate:  d.integer(rl.Get("rate"), join(path, "rateLimit.rate")),
			Per:   d.duration(rl.Get("per"), join(path, "rateLimit.per")),
			Burst: d.integer(rl.Get("burst"), join(path, "rateLimit.burst")),
		}
		if rl.Get("rate") == nil {
			d.errorf(rl, join(path, "rateLimit.rate"), "is required")
		} else if r.RateLimit.Rate <= 0 {
			d.errorf(rl.Get("rate"), join(path, "rateLimit.rate"), "must be a positive number of requests, got %d", r.RateLimit.Rate)
		}
		if rl.Get("per") == nil {
			d.errorf(rl, join(path, "rateLimit.per"), "is required")
		}
		if b := rl.Get("burst"); b != nil && r.RateLimit.Burst <= 0 {
			d.errorf(b, join(path, "rateLimit.burst"), "must be a positive number of requests, got %d", r.RateLimit.Burst)
		}
		d.rateBounds(rl, path, r.RateLimit)
		if rl.Get("key") == nil {
			r.RateLimit.Key = "ip"
		}
	}
	r.WebSocket = d.boolean(n.Get("websocket"), join(path, "websocket"))
	r.BodyTimeout = d.duration(n.Get("bodyTimeout"), join(path, "bodyTimeout"))
	return r
}

// maxBucketMicros is the longest a rate-limit bucket may take to refill
// (burst × per/rate): 100 years, so that the limiters' arithmetic in
// microseconds since 1970 stays exact in float64 (Redis's Lua numbers).
const maxBucketMicros = int64(100 * 365.25 * 24 * 3600 * 1e6)

// rateBounds refuses limits the rate limiters cannot represent: they count
// time in whole microseconds per request, so more than one request per
// microsecond, or a bucket that refills over more than a century, would be
// refused at run time on every request (fail closed) — better here, with a
// position.
func (d *decoder) rateBounds(n *Node, path string, rl *RouteRateLimit) {
	if rl.Rate <= 0 || rl.Per <= 0 {
		return
	}
	perMicros := int64(rl.Per / time.Microsecond)
	if perMicros < int64(rl.Rate) {
		d.errorf(n.Get("rate"), join(path, "rateLimit.rate"), "%d requests per %s is more than one per microsecond, the limiters' resolution", rl.Rate, rl.Per)
		return
	}
	burst := int64(rl.Burst)
	if burst <= 0 {
		burst = int64(rl.Rate)
	}
	if burst > maxBucketMicros/(perMicros/int64(rl.Rate)) {
		at := n.Get("burst")
		if at == nil {
			at = n.Get("rate")
		}
		d.errorf(at, join(path, "rateLimit.burst"), "a bucket of %d refilling at %d per %s takes more than 100 years to refill", burst, rl.Rate, rl.Per)
	}
}
