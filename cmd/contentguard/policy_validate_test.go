package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/contentguard/contentguard/policy/lint"
)

// validPolicy is a policy the sidecar runs, with a development key pair
// beside it; patches turn it into each finding's policy.
const validPolicy = `apiVersion: contentguard.dev/v1
kind: EdgePolicy
metadata: {name: lint-test}
spec:
  upstream: {url: "http://127.0.0.1:8081"}
  auth:
    jwt:
      providers:
        - name: main
          issuer: https://auth.test
          audiences: [content-api]
          algorithms: [ES256]
          jwks: {file: keys/jwks.json}
  tokenIssuer:
    path: /api/v1/auth/token
    issuer: https://auth.test
    audience: content-api
    signingKey: {file: keys/signing.pem}
  routes:
    - name: token
      match: {path: /api/v1/auth/token, methods: [POST]}
      auth: none
    - name: revoke
      match: {path: /api/v1/auth/revoke, methods: [POST]}
      auth: none
    - name: keys
      match: {pathPrefix: /.well-known/, methods: [GET]}
      auth: none
    - name: analyze
      match: {pathPrefix: /api/v1/, methods: [POST]}
      auth: {anyOf: [jwt], scopes: [write]}
    - name: read
      match: {pathPrefix: /api/v1/, methods: [GET]}
      auth: {anyOf: [jwt], scopes: [read]}
`

// writeLintPolicy writes validPolicy with each (from, to) replacement into
// a fresh directory holding keys/, and returns its path.
func writeLintPolicy(t *testing.T, patches ...string) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := writeKeyPair(filepath.Join(dir, "keys"), false); err != nil {
		t.Fatal(err)
	}
	doc := validPolicy
	for i := 0; i+1 < len(patches); i += 2 {
		if !strings.Contains(doc, patches[i]) {
			t.Fatalf("patch anchor %q not in the policy", patches[i])
		}
		doc = strings.Replace(doc, patches[i], patches[i+1], 1)
	}
	file := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestValidateRefusesWhatTheSidecarRefuses: each policy here decoded
// cleanly ("ok") before, and the sidecar then refused to start on it.
// validate now refuses it too, at file:line:col with a hint.
func TestValidateRefusesWhatTheSidecarRefuses(t *testing.T) {
	for _, c := range []struct {
		name    string
		patches []string
		want    string // after "policy.yaml:"
		hint    string
		setup   func(dir string)
		notHint string // a hint for another mistake, which this one must not get
	}{
		{"missing JWKS file", []string{"jwks: {file: keys/jwks.json}", "jwks: {file: keys/missing.json}"},
			"13:24: spec.auth.jwt.providers[0].jwks.file: provider \"main\": read JWKS file", "relative paths start at the policy file's directory", nil, "HS*"},
		{"JWKS file that is not a JWKS", nil, "13:24: spec.auth.jwt.providers[0].jwks.file: provider \"main\": jwks: decode", "JWKS",
			func(dir string) { os.WriteFile(filepath.Join(dir, "keys", "jwks.json"), []byte("not json"), 0o644) }, "HS*"},
		{"JWKS without a key for the algorithm", []string{"algorithms: [ES256]", "algorithms: [RS256]"},
			"13:24: spec.auth.jwt.providers[0].jwks.file: provider \"main\": no key in the set verifies any allowed algorithm", "", nil, ""},
		{"missing signing key", []string{"signingKey: {file: keys/signing.pem}", "signingKey: {file: keys/gone.pem}"},
			"18:24: spec.tokenIssuer.signingKey.file: cannot use the signing key", "token keygen", nil, ""},
		{"HS256 secret too short", []string{"algorithms: [ES256]\n          jwks: {file: keys/jwks.json}", "algorithms: [HS256]\n          secret: {value: too-short}"},
			"13:19: spec.auth.jwt.providers[0].secret: provider \"main\": secret of 9 bytes is too short for HS256", "at least as many bytes", nil, "JWKS"},
		{"bcrypt hash bcrypt cannot use", []string{"    signingKey: {file: keys/signing.pem}\n", "    signingKey: {file: keys/signing.pem}\n    users:\n      - {username: demo, bcrypt: \"$2a$03$Q0XZXiyXgc3uJwRdDaThbu65beAf8lMdplU2ARDR6HyLYKnlshQqy\", scopes: [read]}\n"},
			"20:34: spec.tokenIssuer.users[0].bcrypt: the sidecar refuses this policy: issuer: user \"demo\": bad bcrypt hash", "", nil, ""},
		{"duplicate route names", []string{"- name: read", "- name: analyze"},
			"32:13: spec.routes[4].name: duplicate route name \"analyze\"", "", nil, ""},
		{"YAML syntax error", []string{"      auth: none\n    - name: revoke", "\tauth: none\n    - name: revoke"},
			"22:1: found a tab character where a space is expected; indent YAML with spaces", "", nil, ""},
		{"typo in a key", []string{"pathPrefix: /.well-known/", "pathprefix: /.well-known/"},
			"27:15: spec.routes[2].match.pathprefix: unknown key", "did you mean \"pathPrefix\"?", nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := writeLintPolicy(t, c.patches...)
			if c.setup != nil {
				c.setup(filepath.Dir(file))
			}
			code, out, errs := runCLI(t, "policy", "validate", file)
			if code != 1 || !strings.Contains(errs, file+":"+c.want) {
				t.Fatalf("exit %d, stdout %q, stderr:\n%s\nwant exit 1 and %q", code, out, errs, file+":"+c.want)
			}
			if c.hint != "" && !strings.Contains(errs, "\thint: ") || !strings.Contains(errs, c.hint) {
				t.Errorf("no hint mentioning %q:\n%s", c.hint, errs)
			}
			if c.notHint != "" && strings.Contains(errs, c.notHint) {
				t.Errorf("the hint speaks of %q, another mistake:\n%s", c.notHint, errs)
			}
		})
	}
}

// TestValidateWarnsAboutWhatIsLegalButWrong: policies the sidecar runs but
// not as meant: a warning each, exit 0, exit 1 with --strict.
func TestValidateWarnsAboutWhatIsLegalButWrong(t *testing.T) {
	for _, c := range []struct {
		name    string
		patches []string
		want    string
		hint    string
	}{
		{"unknown method", []string{"methods: [POST]}\n      auth: {anyOf: [jwt], scopes: [write]}", "methods: [PSOT]}\n      auth: {anyOf: [jwt], scopes: [write]}"},
			`30:47: warning: spec.routes[3].match.methods[0]: "PSOT" is not an HTTP method`, "did you mean POST?"},
		{"token endpoint behind credentials", []string{"      auth: none\n    - name: revoke", "      auth: {anyOf: [jwt]}\n    - name: revoke"},
			`22:13: warning: spec.routes[0].auth: route "token" requires credentials for POST /api/v1/auth/token`, "auth: none"},
		{"token endpoint without a route", []string{"    path: /api/v1/auth/token\n", "    path: /auth/token\n",
			"match: {path: /api/v1/auth/token, methods: [POST]}", "match: {path: /auth/tokens, methods: [POST]}",
			"match: {path: /api/v1/auth/revoke, methods: [POST]}", "match: {path: /auth/revoke, methods: [POST]}"},
			`15:11: warning: spec.tokenIssuer.path: no route matches POST /auth/token`, "add a route"},
		{"shadowed route", []string{"    - name: read\n", "    - name: all\n      match: {pathPrefix: /api/}\n      auth: {anyOf: [jwt]}\n    - name: read\n"},
			`35:7: warning: spec.routes[5]: route "read" is never reached: "all" (line 32)`, "move this route above"},
		{"tokens nobody trusts", []string{"    audience: content-api", "    audience: other-api"},
			`16:13: warning: spec.tokenIssuer.issuer: no JWT provider trusts issuer`, "add a JWT provider"},
		{"secret from an unset variable", []string{"          algorithms: [ES256]\n          jwks: {file: keys/jwks.json}", "          algorithms: [HS256]\n          secret: {env: CG_LINT_TEST_UNSET}"},
			`13:25: warning: spec.auth.jwt.providers[0].secret.env: environment variable CG_LINT_TEST_UNSET is not set here`, "refuses to start"},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := writeLintPolicy(t, c.patches...)
			code, out, errs := runCLI(t, "policy", "validate", file)
			if code != 0 || !strings.Contains(errs, file+":"+c.want) || !strings.Contains(errs, c.hint) {
				t.Fatalf("exit %d, stdout %q, stderr:\n%s\nwant exit 0 and %q with a hint about %q", code, out, errs, file+":"+c.want, c.hint)
			}
			if !strings.Contains(out, "valid, 1 warning(s)") {
				t.Errorf("stdout %q", out)
			}
			if code, _, _ := runCLI(t, "policy", "validate", "--strict", file); code != 1 {
				t.Errorf("--strict: exit %d, want 1", code)
			}
		})
	}
	// The policy they all start from has no finding at all.
	if code, out, errs := runCLI(t, "policy", "validate", "--strict", writeLintPolicy(t)); code != 0 || errs != "" || !strings.Contains(out, ": ok") {
		t.Fatalf("the base policy: exit %d %q %q", code, out, errs)
	}
}

// TestValidateJSON: --format json prints every file's counts and every
// finding with its position, code and hint, for editors and CI.
func TestValidateJSON(t *testing.T) {
	good := writeLintPolicy(t)
	warned := writeLintPolicy(t, "methods: [GET]}\n      auth: {anyOf: [jwt], scopes: [read]}", "methods: [GTE]}\n      auth: {anyOf: [jwt], scopes: [read]}")
	broken := writeLintPolicy(t, "kind: EdgePolicy", "kind: EdgePolicy\nbogus: 1")
	code, out, errs := runCLI(t, "policy", "validate", "--format", "json", good, warned, broken)
	if code != 1 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	var v struct {
		Files []struct {
			File             string
			Policy           string
			Errors, Warnings int
		}
		Findings []lint.Finding
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(v.Files) != 3 || v.Files[0].Errors+v.Files[0].Warnings != 0 || v.Files[0].Policy == "" ||
		v.Files[1].Warnings != 1 || v.Files[1].Errors != 0 || v.Files[2].Errors != 1 || v.Files[2].Policy != "" {
		t.Fatalf("files %+v", v.Files)
	}
	if len(v.Findings) != 2 {
		t.Fatalf("findings %+v", v.Findings)
	}
	w, e := v.Findings[0], v.Findings[1]
	if w.File != warned || w.Line != 33 || w.Column != 47 || w.Severity != lint.Warning || w.Code != "unknown-method" || w.Hint != "did you mean GET?" {
		t.Errorf("warning %+v", w)
	}
	if e.File != broken || e.Line != 3 || e.Severity != lint.Error || e.Code != "invalid" || e.Path != "bogus" {
		t.Errorf("error %+v", e)
	}
	if code, _, _ := runCLI(t, "policy", "validate", "--format", "json", "--strict", warned); code != 1 {
		t.Errorf("--strict with a warning: exit %d", code)
	}
	// A usage error says what was wrong before the usage (it used to print
	// the usage alone).
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "yaml", good}, `--format "yaml": want text or json`},
		{[]string{"--strict"}, "no policy file given"},
	} {
		code, _, errs := runCLI(t, append([]string{"policy", "validate"}, c.args...)...)
		if first, _, _ := strings.Cut(errs, "\n"); code != 2 || !strings.Contains(first, c.want) {
			t.Errorf("%v: exit %d, first line %q, want %q", c.args, code, first, c.want)
		}
	}
}
