package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/contentguard/contentguard/conformance"
	"github.com/contentguard/contentguard/edge/auth"
)

// runCLI runs the binary's entry point in-process.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestHelpEverywhere: every command and subcommand answers --help with its
// usage and exit 0 (`version --help` used to be an error, exit 2).
func TestHelpEverywhere(t *testing.T) {
	all := [][]string{
		{"--help"}, {"policy", "validate", "--help"}, {"policy", "explain", "--help"}, {"policy", "nginx", "--help"},
		{"policy", "envoy", "--help"}, {"token", "keygen", "--help"}, {"token", "mint", "--help"},
	}
	for _, c := range commands() {
		all = append(all, []string{c.name, "--help"})
	}
	for _, args := range all {
		code, out, errs := runCLI(t, args...)
		if code != 0 || !strings.Contains(out+errs, "Usage") {
			t.Errorf("%v: exit %d, output %q", args, code, out+errs)
		}
	}
	if code, _, _ := runCLI(t, "frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}

func TestPolicyValidate(t *testing.T) {
	good := filepath.Join(conformance.Dir(), "policies", "standard.yaml")
	code, out, _ := runCLI(t, "policy", "validate", good)
	if code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("valid policy: exit %d, %q", code, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("apiVersion: contentguard.dev/v1\nkind: EdgePolicy\nspec:\n  routes:\n    - name: a\n      match: {path: /a}\n      auth: none\n      rateLimit: {rate: -1, per: 1m}\n"), 0o644)
	code, _, errs := runCLI(t, "policy", "validate", good, bad)
	if code != 1 || !strings.Contains(errs, bad+":8:25: spec.routes[0].rateLimit.rate") {
		t.Fatalf("invalid policy: exit %d, stderr %q", code, errs)
	}
}

func TestTokenKeygenAndMint(t *testing.T) {
	dir := t.TempDir()
	if code, out, errs := runCLI(t, "token", "keygen", "--out", dir); code != 0 {
		t.Fatalf("keygen: %d %s %s", code, out, errs)
	}
	if code, _, _ := runCLI(t, "token", "keygen", "--out", dir); code != 1 {
		t.Fatal("keygen overwrote existing keys without --force")
	}
	info, err := os.Stat(filepath.Join(dir, "signing.pem"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("signing key mode: %v %v", info.Mode(), err)
	}
	code, out, errs := runCLI(t, "token", "mint", "--key", filepath.Join(dir, "signing.pem"),
		"--sub", "alice", "--scope", "read write", "--aud", "content-api", "--iss", "https://issuer.test", "--ttl", "5m")
	if code != 0 {
		t.Fatalf("mint: %d %s", code, errs)
	}
	jwks, _ := os.ReadFile(filepath.Join(dir, "jwks.json"))
	v, err := auth.NewVerifier(context.Background(), []auth.Provider{{
		Name: "t", Issuer: "https://issuer.test", Audiences: []string{"content-api"},
		Algorithms: []string{"ES256"}, JWKSInline: string(jwks),
	}}, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	id, reason := v.Verify(context.Background(), strings.TrimSpace(out))
	if reason != auth.ReasonOK || id.Subject != "alice" || strings.Join(id.Scopes, " ") != "read write" {
		t.Fatalf("minted token does not verify against the generated JWKS: %v %+v", reason, id)
	}
}

// explainPlane answers conformance cases with `contentguard policy explain
// --json`: one process-free CLI call per request. It can only answer
// single-request cases (explain keeps no state between calls) whose upstream
// is not scripted to fail.
type explainPlane struct{ t *testing.T }

type explainInstance struct {
	t      *testing.T
	policy string
}

func (p explainPlane) Start(t testing.TB, policyPath string) conformance.Instance {
	return &explainInstance{t: p.t, policy: policyPath}
}

func (in *explainInstance) Close() {}

func (in *explainInstance) Do(t testing.TB, req conformance.SentRequest, up conformance.Upstream) conformance.Response {
	args := []string{"policy", "explain", in.policy, "--json", "--method", req.Method, "--path", req.Path, "--peer", req.Peer}
	if req.BodyBytes > 0 {
		args = append(args, "--body-bytes", itoa(req.BodyBytes))
	}
	for name, values := range req.Header {
		for _, v := range values {
			args = append(args, "--header", name+": "+v)
		}
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("explain exit %d: %s", code, errb.String())
	}
	var x struct {
		Forward         bool              `json:"forward"`
		Status          int               `json:"status"`
		Path            string            `json:"path"`
		Headers         map[string]string `json:"headers"`
		UpstreamHeaders map[string]string `json:"upstreamHeaders"`
		Body            json.RawMessage   `json:"body"`
	}
	if err := json.Unmarshal(out.Bytes(), &x); err != nil {
		t.Fatalf("explain --json: %v\n%s", err, out.String())
	}
	r := conformance.Response{Status: x.Status, Header: map[string][]string{}, Body: x.Body, Forwarded: x.Forward, UpstreamHeader: map[string][]string{}}
	for k, v := range x.Headers {
		r.Header.Set(k, v)
	}
	if x.Forward {
		r.UpstreamPath = x.Path
		for k, v := range x.UpstreamHeaders {
			r.UpstreamHeader.Set(k, v)
		}
	}
	return r
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestExplainAnswersConformance: policy explain agrees with the suite on
// every case it can express — a single request that the upstream would
// answer normally.
func TestExplainAnswersConformance(t *testing.T) {
	conformance.Run(t, explainPlane{t}, conformance.Options{Only: func(c conformance.Case) bool {
		if len(c.Steps) != 1 || c.Steps[0].Repeat > 1 {
			return false
		}
		u := c.Steps[0].Upstream
		return u.Status == 0 && u.Delay == 0 && !u.Down
	}})
}

// TestExplainTakesFlagsAroundTheFile: the policy file may stand before,
// between or after the flags, and every flag counts wherever it stands
// (flags after a file named between them used to be dropped without a
// word: `explain --method POST p.yaml --path /x` explained POST /). A
// second file is a usage error, not ignored.
func TestExplainTakesFlagsAroundTheFile(t *testing.T) {
	file := filepath.Join(conformance.Dir(), "policies", "standard.yaml")
	for _, args := range [][]string{
		{file, "--method", "GET", "--path", "/healthz", "--json"},
		{"--method", "GET", file, "--path", "/healthz", "--json"},
		{"--method", "GET", "--path", "/healthz", "--json", file},
	} {
		code, out, errs := runCLI(t, append([]string{"policy", "explain"}, args...)...)
		var got struct {
			Route  string
			Status int
		}
		if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.Route != "health" || got.Status != 200 {
			t.Errorf("%v: exit %d, %s%s", args, code, out, errs)
		}
	}
	code, _, errs := runCLI(t, "policy", "explain", file, "--path", "/healthz", file)
	if code != 2 || !strings.Contains(errs, "one policy file") {
		t.Errorf("two files: exit %d, %q", code, errs)
	}
}

// TestUsageErrorsSayWhy: a subcommand missing its policy says so on the
// first line, before the usage (it used to print the usage alone).
func TestUsageErrorsSayWhy(t *testing.T) {
	for _, args := range [][]string{{"policy", "nginx"}, {"policy", "envoy", "--listen", "0.0.0.0:10000"}} {
		code, _, errs := runCLI(t, args...)
		if first, _, _ := strings.Cut(errs, "\n"); code != 2 || !strings.Contains(first, "--policy FILE is required") {
			t.Errorf("%v: exit %d, first line %q", args, code, first)
		}
	}
}
