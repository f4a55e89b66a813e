package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/edge/auth"
	"github.com/contentguard/contentguard/internal/keyfile"
	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/policy/lint"
	"github.com/contentguard/contentguard/policy/policyfile"
	"github.com/contentguard/contentguard/sidecar/issuer"
)

const validateHelp = `Usage: contentguard policy validate [--strict] [--format text|json] FILE...

Checks each policy file the way the sidecar loads it and prints what it
finds, positioned as file:line:col:

  errors     what the sidecar refuses: YAML syntax, unknown keys, invalid
             values, JWKS, secret and signing-key files that are missing or
             unreadable, anything else that stops its engine or token
             endpoint from starting
  warnings   what works but almost surely not as meant: routes an earlier
             route shadows, HTTP methods no client sends, a token endpoint
             behind credentials, tokens no JWT provider trusts, secrets from
             unset environment variables

Each finding may carry a hint on the line after it. Exit status: 0 when no
file has errors (1 with --strict if any has warnings), 1 otherwise, 2 for
usage errors. --format json prints one JSON object for editors and CI:
{"files": [{"file", "policy", "errors", "warnings"}], "findings": [{"file",
"line", "column", "severity", "code", "path", "message", "hint"}]}.

Flags:
`

// validation is the JSON output of policy validate.
type validation struct {
	Files    []fileResult   `json:"files"`
	Findings []lint.Finding `json:"findings"`
}

type fileResult struct {
	File     string `json:"file"`
	Policy   string `json:"policy,omitempty"` // name@hash (n routes), when it decoded
	Errors   int    `json:"errors"`
	Warnings int    `json:"warnings"`
}

func runPolicyValidate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	strict := fs.Bool("strict", false, "exit 1 on warnings too")
	format := fs.String("format", "text", "output: text (findings on stderr) or json (one object on stdout)")
	fs.Usage = func() {
		fmt.Fprint(stderr, validateHelp)
		fs.PrintDefaults()
	}
	files, err := parseAmongFlags(fs, args)
	if err != nil {
		return flagExit(err)
	}
	switch {
	case *format != "text" && *format != "json":
		fmt.Fprintf(stderr, "contentguard policy validate: --format %q: want text or json\n\n", *format)
		fs.Usage()
		return 2
	case len(files) == 0:
		fmt.Fprint(stderr, "contentguard policy validate: no policy file given\n\n")
		fs.Usage()
		return 2
	}
	var out validation
	out.Findings = []lint.Finding{}
	failed := false
	for _, file := range files {
		p, findings := validateFile(ctx, file)
		res := fileResult{File: file}
		if p != nil {
			res.Policy = p.String()
		}
		for _, f := range findings {
			if f.Severity == lint.Error {
				res.Errors++
			} else {
				res.Warnings++
			}
		}
		failed = failed || res.Errors > 0 || *strict && res.Warnings > 0
		out.Files = append(out.Files, res)
		out.Findings = append(out.Findings, findings...)
		if *format == "text" {
			for _, f := range findings {
				fmt.Fprintln(stderr, f)
				if f.Hint != "" {
					fmt.Fprintf(stderr, "\thint: %s\n", f.Hint)
				}
			}
			switch {
			case res.Errors > 0:
			case res.Warnings > 0:
				fmt.Fprintf(stdout, "%s: valid, %d warning(s) — %s\n", file, res.Warnings, res.Policy)
			default:
				fmt.Fprintf(stdout, "%s: ok — %s\n", file, res.Policy)
			}
		}
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	if failed {
		return 1
	}
	return 0
}

// validateFile returns the policy in file (nil if it does not decode) and
// every finding: decoding errors, lint warnings, the files it names, and
// whatever else stops the sidecar's engine or token endpoint from starting.
func validateFile(ctx context.Context, file string) (*policy.Policy, []lint.Finding) {
	p, root, err := policyfile.LoadTree(file)
	var perrs policy.Errors
	switch {
	case errors.As(err, &perrs):
		return nil, lint.FromErrors(perrs)
	case err != nil:
		return nil, []lint.Finding{{File: file, Severity: lint.Error, Code: "unreadable", Message: err.Error()}}
	}
	findings := lint.Check(p, root)
	refs := checkReferences(p, root)
	findings = append(findings, refs...)
	for _, f := range refs {
		if f.Severity == lint.Error {
			return p, findings // the start-up below would only say it again
		}
	}
	if err := startsAsSidecar(ctx, p); err != nil {
		path := refusedAt(p, err)
		line, col := lint.Locate(root, path)
		findings = append(findings, lint.Finding{File: file, Line: line, Column: col, Severity: lint.Error,
			Code: "refused", Path: path, Message: "the sidecar refuses this policy: " + err.Error()})
	}
	return p, findings
}

// refusedAt is the policy path a start-up error is about, where its text
// names one ("edge: route NAME: ...", "issuer: user NAME: ..."), else spec.
func refusedAt(p *policy.Policy, err error) string {
	msg := err.Error()
	for i, r := range p.Spec.Routes {
		if strings.HasPrefix(msg, "edge: route "+r.Name+": ") {
			return fmt.Sprintf("spec.routes[%d]", i)
		}
	}
	if t := p.Spec.TokenIssuer; t != nil {
		for _, group := range []struct {
			kind, key string
			list      []policy.Principal
		}{{"user", "users", t.Users}, {"client", "clients", t.Clients}} {
			for i, pr := range group.list {
				if strings.HasPrefix(msg, fmt.Sprintf("issuer: %s %q: ", group.kind, pr.Name)) {
					return fmt.Sprintf("spec.tokenIssuer.%s[%d].bcrypt", group.key, i)
				}
			}
		}
	}
	return "spec"
}

// checkReferences checks the files and variables a policy names, as the
// engine and the token endpoint will read them: a JWKS that is missing,
// unreadable or has no key for the provider's algorithms, a secret file, a
// signing key. Each is an error, positioned at the key naming it; an unset
// environment variable is a warning (this machine need not be the one the
// sidecar runs on).
func checkReferences(p *policy.Policy, root *policy.Node) []lint.Finding {
	var out []lint.Finding
	add := func(sev lint.Severity, path, code, hint, format string, args ...any) {
		line, col := lint.Locate(root, path)
		out = append(out, lint.Finding{File: p.Source, Line: line, Column: col, Severity: sev, Code: code,
			Path: path, Message: fmt.Sprintf(format, args...), Hint: hint})
	}
	for i, pr := range p.Spec.Auth.JWT.Providers {
		path := fmt.Sprintf("spec.auth.jwt.providers[%d]", i)
		if pr.Secret != nil {
			switch {
			case pr.Secret.File != "":
				if _, err := keyfile.ReadSecret(keyfile.Resolve(p.BaseDir, pr.Secret.File)); err != nil {
					add(lint.Error, path+".secret.file", "secret-file", "paths are relative to the policy file's directory", "cannot read the secret: %v", err)
				}
			case pr.Secret.Env != "":
				if v, ok := os.LookupEnv(pr.Secret.Env); !ok || v == "" {
					add(lint.Warning, path+".secret.env", "secret-env-unset", "set it where the sidecar runs: it refuses to start without it",
						"environment variable %s is not set here", pr.Secret.Env)
				}
			}
		}
		if pr.JWKS != nil && pr.JWKS.URL != "" {
			continue // a URL is fetched at run time; validate stays off the network
		}
		// The verifier the engine builds, for this provider alone: the
		// same reading, parsing and key checks.
		ap := auth.Provider{Name: pr.Name, Issuer: pr.Issuer, Audiences: pr.Audiences, Algorithms: pr.Algorithms}
		keyPath := path + ".secret"
		if pr.JWKS != nil {
			ap.JWKSInline, keyPath = pr.JWKS.Inline, path+".jwks.inline"
			if pr.JWKS.File != "" {
				ap.JWKSFile, keyPath = keyfile.Resolve(p.BaseDir, pr.JWKS.File), path+".jwks.file"
			}
		}
		if s := pr.Secret; s != nil {
			switch {
			case s.Value != "":
				ap.Secret = []byte(s.Value)
			case s.Env != "" && os.Getenv(s.Env) != "":
				ap.Secret = []byte(os.Getenv(s.Env))
			case s.File != "":
				b, err := keyfile.ReadSecret(keyfile.Resolve(p.BaseDir, s.File))
				if err != nil {
					continue // reported above
				}
				ap.Secret = b
			default: // unset variable, warned about above
				ap.Secret = []byte(strings.Repeat("x", 64))
			}
		}
		v, err := auth.NewVerifier(context.Background(), []auth.Provider{ap}, auth.Options{})
		if err != nil {
			add(lint.Error, keyPath, "keys", keysHint(keyPath, ap.JWKSFile, err),
				"provider %q: %s", pr.Name, trimPrefixes(err.Error(), fmt.Sprintf("auth: provider 0 (%q): ", pr.Name), fmt.Sprintf("auth: provider %q: ", pr.Name)))
			continue
		}
		v.Close()
	}
	if t := p.Spec.TokenIssuer; t != nil && (t.SigningKey.File != "" || t.SigningKey.Inline != "") {
		path, data := "spec.tokenIssuer.signingKey.inline", []byte(t.SigningKey.Inline)
		var err error
		if t.SigningKey.File != "" {
			path = "spec.tokenIssuer.signingKey.file"
			data, err = keyfile.Read(keyfile.Resolve(p.BaseDir, t.SigningKey.File))
		}
		if err == nil {
			_, err = issuer.ParseSigningKey(data)
		}
		if err != nil {
			add(lint.Error, path, "signing-key", "an ES256 (P-256) private key in PEM; `contentguard token keygen` writes one",
				"cannot use the signing key: %v", err)
		}
	}
	return out
}

// keysHint is the hint for a provider's keys the verifier refused, about
// the mistake made: a JWKS file that is not where the policy says (relative
// paths start at the policy's directory), a JWKS that is not one, or an HS*
// secret too short.
func keysHint(keyPath, jwksFile string, err error) string {
	switch {
	case strings.HasSuffix(keyPath, ".secret"):
		return "an HS* secret has at least as many bytes as its hash: 32 for HS256, 48 for HS384, 64 for HS512"
	case jwksFile != "" && errors.Is(err, os.ErrNotExist):
		return fmt.Sprintf("relative paths start at the policy file's directory; `contentguard token keygen --out %s` writes jwks.json and signing.pem there", filepath.Dir(jwksFile))
	}
	return "a JWKS is a JSON {\"keys\": [...]} document with a key for each algorithm the provider allows (`contentguard token keygen` writes one)"
}

func trimPrefixes(s string, prefixes ...string) string {
	for _, p := range prefixes {
		s = strings.TrimPrefix(s, p)
	}
	return s
}

// startsAsSidecar builds the engine and the token endpoint as the sidecar
// does, without the network: JWKS URLs are not fetched, and secrets from
// unset variables (already warned about) are stood in for.
func startsAsSidecar(ctx context.Context, p *policy.Policy) error {
	offline := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("policy validate does not fetch")
	})}
	e, err := edge.New(ctx, p, edge.Options{
		Auth: auth.Options{HTTPClient: offline},
		LookupEnv: func(name string) (string, bool) {
			if v, ok := os.LookupEnv(name); ok && v != "" {
				return v, true
			}
			return strings.Repeat("x", 64), true // warned about: a stand-in long enough for HS512
		},
	})
	if err != nil {
		return err
	}
	e.Close()
	if p.Spec.TokenIssuer != nil {
		if _, err := issuer.New(ctx, p, issuer.Options{Logger: slog.New(slog.DiscardHandler)}); err != nil {
			return err
		}
	}
	return nil
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
