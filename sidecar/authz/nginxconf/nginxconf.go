// Package nginxconf writes the three NGINX snippets that copy a policy's
// headers between the authz decision, the upstream request and the response
// (deploy/nginx/contentguard/variables.conf, upstream-headers.conf and
// response-headers.conf).
//
// NGINX cannot set a header whose name arrives at run time, so every name
// the authz endpoint may send as X-CG-Up-<Name> or X-CG-Resp-<Name> needs its
// own lines:
//
//	auth_request_set $cg_u_<name> $upstream_http_x_cg_up_<name>;   variables.conf
//	proxy_set_header <Name> $cg_u_<name>;                           upstream-headers.conf
//	auth_request_set $cg_r_<name> $upstream_http_x_cg_resp_<name>; variables.conf
//	proxy_hide_header <Name>; add_header <Name> $cg_r_<name> always; response-headers.conf
//
// where <name> is the header name in lower case with '-' as '_' (NGINX's own
// spelling of $upstream_http_ variables). Render derives the names from the
// policy the way the engine does (edge.New): request-ID headers and JWT
// forwardClaims upstream (API keys forward under the same headers); request
// IDs, the rate-limit style's headers and Retry-After, the CORS headers the
// policy can produce, and the security headers of its preset or custom set
// on responses.
//
// Names are written into NGINX syntax, so Render accepts only letters,
// digits, '-' and '_' (a stricter set than RFC 9110 tokens, which allow '$',
// quotes and '#') and fails on anything else: nothing a policy says can add
// a directive.
package nginxconf

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/contentguard/contentguard/edge/cors"
	"github.com/contentguard/contentguard/edge/ratelimit"
	"github.com/contentguard/contentguard/edge/secheaders"
	"github.com/contentguard/contentguard/policy"
)

// File names, as server.conf includes them.
const (
	VariablesFile       = "variables.conf"
	UpstreamHeadersFile = "upstream-headers.conf"
	ResponseHeadersFile = "response-headers.conf"
)

// maxNameLen bounds a header name; NGINX and the policy have no use for more.
const maxNameLen = 128

// requestIDVariable is the variable server.conf's 502/504 problem bodies
// read the request ID from.
const requestIDVariable = "x_request_id"

// framing are hop-by-hop and framing headers: NGINX owns them, and hiding or
// setting one from a decision would break the message.
var framing = []string{"connection", "content-length", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"}

// setUpstream are the headers upstream-headers.conf always sets itself.
var setUpstream = []string{"host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"}

// Files are the three snippets.
type Files struct {
	Variables       []byte
	UpstreamHeaders []byte
	ResponseHeaders []byte
}

// ByName maps each file name to its content.
func (f Files) ByName() map[string][]byte {
	return map[string][]byte{
		VariablesFile:       f.Variables,
		UpstreamHeadersFile: f.UpstreamHeaders,
		ResponseHeadersFile: f.ResponseHeaders,
	}
}

// Names returns the file names in a fixed order.
func Names() []string {
	return []string{VariablesFile, UpstreamHeadersFile, ResponseHeadersFile}
}

// header is a name as NGINX writes it and its variable suffix.
type header struct {
	name string // as the policy or the engine spells it
	vary string // lower case, '-' as '_'
}

// Render writes the snippets for a validated policy (policyfile.Load or
// policy.Decode*). The output is deterministic: the same policy gives the
// same bytes.
func Render(p *policy.Policy) (Files, error) {
	if p == nil {
		return Files{}, fmt.Errorf("nginxconf: nil policy")
	}
	up, err := upstreamHeaders(p)
	if err != nil {
		return Files{}, err
	}
	resp, err := responseHeaders(p)
	if err != nil {
		return Files{}, err
	}

	var v bytes.Buffer
	v.WriteString("# contentguard: copy the authz answer into variables (location context).\n")
	v.WriteString(generatedComment)
	v.WriteString("auth_request_set $cg_key $upstream_http_x_cg_key;\n")
	v.WriteString("auth_request_set $cg_path $upstream_http_x_cg_path;\n")
	v.WriteString("auth_request_set $cg_upgrade $upstream_http_x_cg_upgrade;\n")
	v.WriteString("auth_request_set $cg_connection $upstream_http_x_cg_connection;\n")
	for _, h := range up {
		fmt.Fprintf(&v, "auth_request_set $cg_u_%s $upstream_http_x_cg_up_%s;\n", h.vary, h.vary)
	}
	for _, h := range resp {
		fmt.Fprintf(&v, "auth_request_set $cg_r_%s $upstream_http_x_cg_resp_%s;\n", h.vary, h.vary)
	}
	if !hasVariable(resp, requestIDVariable) {
		// The request ID has another name: server.conf still finds it.
		v.WriteString("# server.conf's 502/504 problems read the request ID from $cg_r_x_request_id.\n")
		fmt.Fprintf(&v, "auth_request_set $cg_r_%s $upstream_http_x_cg_resp_%s;\n", requestIDVariable, resp[0].vary)
	}

	var u bytes.Buffer
	u.WriteString("# contentguard: headers the upstream receives. Setting each forwarded-claim\n")
	u.WriteString("# header from the decision also removes a client's copy (empty = not sent).\n")
	u.WriteString(generatedComment)
	u.WriteString("# As the sidecar: the upstream's own name as Host (NGINX's default; an\n")
	u.WriteString("# HTTP/1.0 client may send none), the client's in X-Forwarded-Host.\n")
	u.WriteString("proxy_set_header Host $proxy_host;\n")
	u.WriteString("proxy_set_header X-Forwarded-Host $host;\n")
	u.WriteString("# An upgrade goes upstream only as the decision allows it (websocket on a\n")
	u.WriteString("# route with websocket: true); a client's h2c upgrade never does.\n")
	u.WriteString("proxy_set_header Upgrade $cg_upgrade;\n")
	u.WriteString("proxy_set_header Connection $cg_connection;\n")
	u.WriteString("proxy_set_header HTTP2-Settings \"\";\n")
	u.WriteString("proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n")
	u.WriteString("proxy_set_header X-Forwarded-Proto $scheme;\n")
	for _, h := range up {
		fmt.Fprintf(&u, "proxy_set_header %s $cg_u_%s;\n", h.name, h.vary)
	}
	u.WriteString("# A client's copy of these spelled with '_' for '-' is removed: CGI-style\n")
	u.WriteString("# upstreams read X_Forwarded_For as X-Forwarded-For (server.conf lets such\n")
	u.WriteString("# names through, so that the engine can refuse Transfer_Encoding).\n")
	owned := []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "HTTP2-Settings"}
	for _, h := range up {
		owned = append(owned, h.name)
	}
	for _, name := range owned {
		spellings, err := underscoreSpellings(name)
		if err != nil {
			return Files{}, err
		}
		for _, sp := range spellings {
			fmt.Fprintf(&u, "proxy_set_header %s \"\";\n", sp)
		}
	}

	var r bytes.Buffer
	r.WriteString("# contentguard: the decision's response headers replace the upstream's.\n")
	r.WriteString(generatedComment)
	for _, h := range resp {
		fmt.Fprintf(&r, "proxy_hide_header %s;\n", h.name)
	}
	for _, h := range resp {
		fmt.Fprintf(&r, "add_header %s $cg_r_%s always;\n", h.name, h.vary)
	}
	return Files{Variables: v.Bytes(), UpstreamHeaders: u.Bytes(), ResponseHeaders: r.Bytes()}, nil
}

const generatedComment = "# Generated from the policy by 'contentguard policy nginx' (docs/nginx.md).\n"

// maxDashes bounds the '-' of a name spelled every way with '_' (2^n - 1
// lines); no header a policy names needs more.
const maxDashes = 6

// underscoreSpellings returns every spelling of name with one or more of
// its '-' written as '_' (NGINX matches names without regard to case).
func underscoreSpellings(name string) ([]string, error) {
	var dashes []int
	for i := 0; i < len(name); i++ {
		if name[i] == '-' {
			dashes = append(dashes, i)
		}
	}
	if len(dashes) > maxDashes {
		return nil, fmt.Errorf("nginxconf: header %q has more than %d '-' to spell each with '_'", name, maxDashes)
	}
	var out []string
	for mask := 1; mask < 1<<len(dashes); mask++ {
		b := []byte(name)
		for j, at := range dashes {
			if mask&(1<<j) != 0 {
				b[at] = '_'
			}
		}
		out = append(out, string(b))
	}
	return out, nil
}

// upstreamHeaders are the names the decision may set upstream: the request
// ID headers, then each JWT provider's forwarded claims in policy order
// (API-key identities forward under the same headers, so they add none).
func upstreamHeaders(p *policy.Policy) ([]header, error) {
	s := &p.Spec
	l := headerList{reserved: append(append([]string(nil), framing...), setUpstream...)}
	l.addRequestIDs(s.RequestID)
	for _, pr := range s.Auth.JWT.Providers {
		for _, fc := range pr.ForwardClaims {
			l.add(fmt.Sprintf("spec.auth.jwt.providers[%s].forwardClaims.%s", pr.Name, fc.Claim), fc.Header)
		}
	}
	return l.headers, l.err
}

// responseHeaders are the names the decision may set on an allowed
// response: request IDs, rate-limit headers of the policy's style and
// Retry-After, the CORS headers of an actual (not preflight) request, and
// the security headers.
func responseHeaders(p *policy.Policy) ([]header, error) {
	s := &p.Spec
	l := headerList{reserved: framing}
	l.addRequestIDs(s.RequestID)
	style := s.RateLimit.Headers
	if style != ratelimit.StyleLegacy && style != ratelimit.StyleNone {
		l.add("spec.rateLimit.headers", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
	}
	if style == ratelimit.StyleLegacy || style == ratelimit.StyleBoth {
		l.add("spec.rateLimit.headers", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
	}
	l.add("spec.rateLimit", "Retry-After")
	if c := s.CORS; c != nil {
		l.add("spec.cors", cors.HeaderAllowOrigin)
		if c.AllowCredentials {
			l.add("spec.cors.allowCredentials", cors.HeaderAllowCredentials)
		}
		if len(c.ExposeHeaders) > 0 {
			l.add("spec.cors.exposeHeaders", cors.HeaderExposeHeaders)
		}
		l.add("spec.cors", cors.HeaderVary)
	}
	security, err := securityHeaders(s.SecurityHeaders)
	if err != nil {
		return nil, err
	}
	for _, kv := range security {
		l.add("spec.securityHeaders", kv[0])
	}
	return l.headers, l.err
}

// securityHeaders are the headers the engine sends for the policy's
// securityHeaders, as edge.New chooses them: a custom set wins, "strict" is
// the preset with Strict-Transport-Security (sent on TLS requests).
func securityHeaders(sh policy.SecurityHeaders) ([][2]string, error) {
	switch {
	case sh.Custom != nil:
		h, err := secheaders.Custom(sh.Custom)
		if err != nil {
			return nil, fmt.Errorf("nginxconf: spec.securityHeaders: %w", err)
		}
		return h, nil
	case sh.Preset == "strict":
		return secheaders.Strict(true), nil
	}
	return nil, nil
}

// headerList collects names in order, once each (case-insensitively), and
// the first error. Names in reserved (lower case) are refused.
type headerList struct {
	reserved []string
	headers  []header
	err      error
}

func (l *headerList) add(where string, names ...string) {
	for _, name := range names {
		if l.err != nil {
			return
		}
		if !nginxSafe(name) {
			l.fail(where, name, "cannot be written into an NGINX configuration (use letters, digits, '-' and '_')")
			return
		}
		for _, r := range l.reserved {
			if strings.EqualFold(name, r) {
				l.fail(where, name, "is a header NGINX sets or frames the message with itself")
				return
			}
		}
		vary := strings.ToLower(strings.ReplaceAll(name, "-", "_"))
		dup := false
		for _, h := range l.headers {
			if h.vary != vary {
				continue
			}
			if !strings.EqualFold(h.name, name) {
				l.fail(where, name, fmt.Sprintf("and %q share the NGINX variable suffix %s", h.name, vary))
				return
			}
			dup = true
		}
		if !dup {
			l.headers = append(l.headers, header{name: name, vary: vary})
		}
	}
}

// addRequestIDs adds the request-ID header and its alsoHeaders: the
// decision sends the ID under each, upstream and on the response.
func (l *headerList) addRequestIDs(r policy.RequestID) {
	l.add("spec.requestID.header", r.Header)
	for i, n := range r.AlsoHeaders {
		l.add(fmt.Sprintf("spec.requestID.alsoHeaders[%d]", i), n)
	}
}

func (l *headerList) fail(where, name, why string) {
	if l.err == nil {
		l.err = fmt.Errorf("nginxconf: %s: header %q %s", where, name, why)
	}
}

// nginxSafe reports whether name can appear bare in NGINX syntax and as
// part of a variable name.
func nginxSafe(name string) bool {
	if name == "" || len(name) > maxNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			continue
		}
		return false
	}
	return true
}

func hasVariable(hs []header, vary string) bool {
	for _, h := range hs {
		if h.vary == vary {
			return true
		}
	}
	return false
}
