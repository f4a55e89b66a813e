package nginxconf_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/policy/policyfile"
	"github.com/contentguard/contentguard/sidecar/authz/nginxconf"
)

var update = flag.Bool("update", false, "rewrite deploy/nginx/contentguard/*.conf from the conformance standard policy")

// deployDir holds the shipped snippets, generated from the standard policy.
const deployDir = "../../../deploy/nginx/contentguard"

// TestShippedFilesAreGenerated: the checked-in snippets are exactly what
// Render makes of the conformance standard policy, so they cannot drift.
// Regenerate with go test ./sidecar/authz/nginxconf -run TestShippedFilesAreGenerated -update
// (or contentguard policy nginx --policy conformance/policies/standard.yaml --out deploy/nginx/contentguard).
func TestShippedFilesAreGenerated(t *testing.T) {
	p, err := policyfile.Load("../../../conformance/policies/standard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files, err := nginxconf.Render(p)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files.ByName() {
		path := filepath.Join(deployDir, name)
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from Render(standard.yaml); regenerate it (-update).\n--- generated:\n%s", path, want)
		}
	}
}

// TestCustomNames: a policy's own request-ID, forwarded-claim, rate-limit,
// CORS and security header names get lines; defaults it does not use get
// none; server.conf's $cg_r_x_request_id still carries the request ID.
func TestCustomNames(t *testing.T) {
	p, err := policyfile.Load("testdata/custom.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files, err := nginxconf.Render(p)
	if err != nil {
		t.Fatal(err)
	}
	v, u, r := string(files.Variables), string(files.UpstreamHeaders), string(files.ResponseHeaders)
	for _, want := range []struct{ file, text, line string }{
		{"variables", v, "auth_request_set $cg_u_x_trace_id $upstream_http_x_cg_up_x_trace_id;"},
		{"variables", v, "auth_request_set $cg_u_x_user $upstream_http_x_cg_up_x_user;"},
		{"variables", v, "auth_request_set $cg_u_x_user_email $upstream_http_x_cg_up_x_user_email;"},
		{"variables", v, "auth_request_set $cg_r_x_trace_id $upstream_http_x_cg_resp_x_trace_id;"},
		{"variables", v, "auth_request_set $cg_r_x_request_id $upstream_http_x_cg_resp_x_trace_id;"},
		{"variables", v, "auth_request_set $cg_r_x_custom_guard $upstream_http_x_cg_resp_x_custom_guard;"},
		{"variables", v, "auth_request_set $cg_key $upstream_http_x_cg_key;"},
		{"variables", v, "auth_request_set $cg_path $upstream_http_x_cg_path;"},
		{"upstream", u, "proxy_set_header X-Trace-Id $cg_u_x_trace_id;"},
		{"upstream", u, "proxy_set_header X-User $cg_u_x_user;"},
		{"upstream", u, "proxy_set_header X-User-Email $cg_u_x_user_email;"},
		{"upstream", u, "proxy_set_header Host $proxy_host;"},
		{"upstream", u, "proxy_set_header X-Forwarded-Host $host;"},
		{"upstream", u, "proxy_set_header Upgrade $cg_upgrade;"},
		{"upstream", u, "proxy_set_header Connection $cg_connection;"},
		{"upstream", u, "proxy_set_header HTTP2-Settings \"\";"},
		{"upstream", u, "proxy_set_header X_User-Email \"\";"},
		{"upstream", u, "proxy_set_header X-User_Email \"\";"},
		{"upstream", u, "proxy_set_header X_User_Email \"\";"},
		{"upstream", u, "proxy_set_header X_Forwarded_For \"\";"},
		{"variables", v, "auth_request_set $cg_upgrade $upstream_http_x_cg_upgrade;"},
		{"response", r, "proxy_hide_header X-Trace-Id;"},
		{"response", r, "add_header X-Trace-Id $cg_r_x_trace_id always;"},
		{"response", r, "add_header X-RateLimit-Remaining $cg_r_x_ratelimit_remaining always;"},
		{"response", r, "add_header Retry-After $cg_r_retry_after always;"},
		{"response", r, "add_header Access-Control-Allow-Credentials $cg_r_access_control_allow_credentials always;"},
		{"response", r, "add_header Vary $cg_r_vary always;"},
		{"response", r, "proxy_hide_header X-Custom-Guard;"},
		{"response", r, "add_header X-Custom-Guard $cg_r_x_custom_guard always;"},
	} {
		if !hasLine(want.text, want.line) {
			t.Errorf("%s lacks %q:\n%s", want.file, want.line, want.text)
		}
	}
	all := v + u + r
	for _, absent := range []string{
		"X-Request-ID", "x_cg_up_x_request_id", "X-Correlation-ID", "correlation", "X-Auth-Subject", "X-Auth-Scopes", "auth_s",
		" RateLimit-Limit ", "$cg_r_ratelimit_limit", "Access-Control-Expose-Headers",
		"X-Frame-Options", "Content-Security-Policy", "Strict-Transport-Security",
	} {
		if strings.Contains(all, absent) {
			t.Errorf("the snippets mention %q, which the policy does not use:\n%s", absent, all)
		}
	}
}

// TestStyles: the rate-limit style and the security preset decide which
// response names appear.
func TestStyles(t *testing.T) {
	for _, c := range []struct {
		style, security string
		want, absent    []string
	}{
		{"ietf", "strict", []string{"RateLimit-Reset", "Retry-After", "X-Frame-Options", "Strict-Transport-Security"}, []string{"X-RateLimit-Reset"}},
		{"legacy", "none", []string{"X-RateLimit-Reset", "Retry-After"}, []string{" RateLimit-Reset", "X-Frame-Options"}},
		{"both", "none", []string{" RateLimit-Reset", "X-RateLimit-Reset", "Retry-After"}, nil},
		{"none", "strict", []string{"Retry-After", "X-Content-Type-Options"}, []string{"RateLimit-"}},
	} {
		p := parse(t, "spec:\n  rateLimit: {headers: "+c.style+"}\n  securityHeaders: "+c.security+"\n")
		files, err := nginxconf.Render(p)
		if err != nil {
			t.Fatal(err)
		}
		r := string(files.ResponseHeaders)
		for _, w := range c.want {
			if !strings.Contains(r, "proxy_hide_header "+strings.TrimSpace(w)+";") {
				t.Errorf("%s/%s: no %s:\n%s", c.style, c.security, w, r)
			}
		}
		for _, a := range c.absent {
			if strings.Contains(r, a) {
				t.Errorf("%s/%s: has %s:\n%s", c.style, c.security, a, r)
			}
		}
		if strings.Contains(r, "Access-Control") || strings.Contains(r, "Vary") {
			t.Errorf("CORS names without spec.cors:\n%s", r)
		}
	}
}

// TestUnsafeNames: names the policy accepts as RFC 9110 tokens but that
// mean something to NGINX, names two headers would share a variable for,
// and headers NGINX owns are refused, never written.
func TestUnsafeNames(t *testing.T) {
	for _, spec := range []string{
		"requestID: {header: X-$host}",
		"requestID: {header: \"X-'q\"}",
		"requestID: {header: \"X-#c\"}",
		"requestID: {header: X-a|b}",
		"requestID: {header: X.Id}",
		"requestID: {header: X-Id, alsoHeaders: [X_Id]}",
		"securityHeaders: {\"X-Frame-Options{\": DENY}",
		"securityHeaders: {Content-Length: \"0\"}",
		"securityHeaders: {X-Request-ID: x, x-request_id: y}",
	} {
		p, err := policyfile.Parse("t.yaml", []byte(minimal+"  "+spec+"\n"))
		if err != nil {
			// The policy validator refused it already: fine, as long as one does.
			t.Logf("%s: refused by the policy validator: %v", spec, err)
			continue
		}
		if files, err := nginxconf.Render(p); err == nil {
			t.Errorf("%s: rendered:\n%s%s", spec, files.Variables, files.ResponseHeaders)
		}
	}
	// Forwarded claims: a reserved header.
	p := parse(t, "spec:\n  auth:\n    jwt:\n      providers:\n        - {name: m, issuer: https://i.test, audiences: [a], algorithms: [HS256], secret: {value: 0123456789abcdef0123456789abcdef}, forwardClaims: {sub: Host}}\n")
	if _, err := nginxconf.Render(p); err == nil || !strings.Contains(err.Error(), "forwardClaims.sub") {
		t.Errorf("forwardClaims {sub: Host}: err = %v, want one naming the claim", err)
	}
	// A policy built in code, past the validator.
	p.Spec.Auth.JWT.Providers = nil
	p.Spec.RequestID.Header = "X-Id;\n  return 200"
	if _, err := nginxconf.Render(p); err == nil {
		t.Error("a name with ';' and a newline rendered")
	}
	if _, err := nginxconf.Render(nil); err == nil {
		t.Error("nil policy rendered")
	}
}

// FuzzRender: whatever the names, Render either fails or writes only
// directives of the expected shapes with safe names.
func FuzzRender(f *testing.F) {
	f.Add("X-Request-ID", "X-Auth-Subject", "X-Frame-Options")
	f.Add("X-$x", "Host", "X;Y")
	f.Add("a_b", "A-B", "")
	f.Fuzz(func(t *testing.T, id, claim, security string) {
		p := parse(t, "spec: {}\n")
		p.Spec.RequestID.Header = id
		p.Spec.Auth.JWT.Providers = []policy.JWTProvider{{Name: "m", ForwardClaims: []policy.ClaimHeader{{Claim: "sub", Header: claim}}}}
		p.Spec.SecurityHeaders = policy.SecurityHeaders{Custom: map[string]string{security: "v"}}
		files, err := nginxconf.Render(p)
		if err != nil {
			return
		}
		for _, b := range [][]byte{files.Variables, files.UpstreamHeaders, files.ResponseHeaders} {
			for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
				if !safeLine.MatchString(line) {
					t.Fatalf("unexpected line %q", line)
				}
			}
		}
	})
}

var safeLine = regexp.MustCompile(`^(#[^\n]*|auth_request_set \$cg_[a-z0-9_]+ \$upstream_http_x_cg_[a-z0-9_]+;|` +
	`proxy_set_header [A-Za-z0-9_-]+ (\$[a-z0-9_]+|"");|proxy_hide_header [A-Za-z0-9_-]+;|add_header [A-Za-z0-9_-]+ \$cg_r_[a-z0-9_]+ always;)$`)

const minimal = "apiVersion: contentguard.dev/v1\nkind: EdgePolicy\nmetadata: {name: t}\nspec:\n  upstream: {url: http://127.0.0.1:9}\n  routes: [{name: all, match: {pathPrefix: /}, auth: none}]\n"

// parse decodes minimal with extra YAML merged under spec.
func parse(t *testing.T, extra string) *policy.Policy {
	t.Helper()
	doc := minimal
	if rest, ok := strings.CutPrefix(extra, "spec:\n"); ok {
		doc += rest
	} else if extra != "spec: {}\n" {
		t.Fatalf("parse wants spec: lines, got %q", extra)
	}
	p, err := policyfile.Parse("t.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	return p
}

func hasLine(text, line string) bool {
	for _, l := range strings.Split(text, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

// TestUnderscoreSpellings: every spelling of a header the upstream
// receives with one or more '_' for '-' is removed, and a name with too
// many '-' to spell out is refused rather than half-covered.
func TestUnderscoreSpellings(t *testing.T) {
	p := parse(t, "spec:\n  requestID: {header: X-A-B}\n")
	files, err := nginxconf.Render(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range []string{"X_A-B", "X-A_B", "X_A_B"} {
		if !hasLine(string(files.UpstreamHeaders), "proxy_set_header "+sp+" \"\";") {
			t.Errorf("no line removes %s:\n%s", sp, files.UpstreamHeaders)
		}
	}
	p.Spec.RequestID.Header = "X-a-b-c-d-e-f-g"
	if _, err := nginxconf.Render(p); err == nil {
		t.Error("a name with seven '-' rendered")
	}
}
