package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/policy/policyfile"
	"github.com/contentguard/contentguard/sidecar/authz/nginxconf"
	"github.com/contentguard/contentguard/xds"
)

const policyHelp = `Usage: contentguard policy <subcommand> [flags]

Subcommands:
  validate FILE...   check policy files as the sidecar loads them: positioned errors
                     and warnings with hints; exit 1 on errors (--strict: warnings too)
  explain FILE       show how the policy decides one request, check by check
  nginx --policy FILE [--out DIR]
                     write the NGINX auth_request header snippets for the policy
  envoy --policy FILE
                     print a static Envoy bootstrap (YAML) that enforces the policy

Run 'contentguard policy <subcommand> --help' for flags.
`

func runPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return sub(ctx, "policy", args, stdout, stderr, map[string]func(context.Context, []string, io.Writer, io.Writer) int{
		"validate": runPolicyValidate,
		"explain":  runPolicyExplain,
		"nginx":    runPolicyNginx,
		"envoy":    runPolicyEnvoy,
	}, policyHelp)
}

func runPolicyNginx(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy nginx", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("policy", "", "policy file (YAML or JSON); required")
	out := fs.String("out", "", "directory to write "+strings.Join(nginxconf.Names(), ", ")+" into (created if missing); default: print them")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: contentguard policy nginx --policy FILE [--out DIR]\n\nWrites the header snippets deploy/nginx/contentguard/server.conf includes, for the\nheader names this policy uses (NGINX cannot take header names at run time).\nRegenerate them whenever the policy's header names change.\n\nFlags:")
		fs.PrintDefaults()
	}
	p, code := loadPolicyFlag(fs, args, file, stderr)
	if p == nil {
		return code
	}
	files, err := nginxconf.Render(p)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *file, err)
		return 1
	}
	byName := files.ByName()
	if *out == "" {
		for _, name := range nginxconf.Names() {
			fmt.Fprintf(stdout, "# ==> %s <==\n%s", name, byName[name])
		}
		return 0
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintf(stderr, "contentguard policy nginx: %v\n", err)
		return 1
	}
	for _, name := range nginxconf.Names() {
		path := filepath.Join(*out, name)
		if err := writeFileAtomic(path, byName[name]); err != nil {
			fmt.Fprintf(stderr, "contentguard policy nginx: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "wrote %s\n", path)
	}
	return 0
}

func runPolicyEnvoy(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy envoy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("policy", "", "policy file (YAML or JSON); required")
	listen := fs.String("listen", xds.DefaultListenAddress, "the address Envoy's public listener binds (host:port)")
	authz := fs.String("ext-authz-addr", xds.DefaultExtAuthzAddr, "where Envoy reaches contentguard sidecar --ext-authz (IP:port)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: contentguard policy envoy --policy FILE [--listen ADDR] [--ext-authz-addr ADDR]\n\n"+
			"Prints a static Envoy bootstrap (YAML) that enforces the policy without a control plane: the\n"+
			"resources contentguard xds would serve, with routes and endpoints inline. Envoy asks\n"+
			"contentguard sidecar --ext-authz about every request (docs/envoy.md). A policy field Envoy\n"+
			"cannot enforce is an error, exit status 1.\n\nFlags:")
		fs.PrintDefaults()
	}
	p, code := loadPolicyFlag(fs, args, file, stderr)
	if p == nil {
		return code
	}
	b, err := xds.Static(p, xds.Options{ListenAddress: *listen, ExtAuthz: *authz})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	y, err := xds.YAML(b)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "# Envoy bootstrap for %s, made by contentguard policy envoy: Envoy asks\n# contentguard sidecar --ext-authz %s about every request.\n", p, *authz)
	_, _ = stdout.Write(y)
	return 0
}

// loadPolicyFlag parses the flags of a subcommand that takes --policy FILE
// and nothing else, and loads the policy; on failure it returns nil and
// the exit status (2 for usage, 1 for a bad policy, 0 for --help).
func loadPolicyFlag(fs *flag.FlagSet, args []string, file *string, stderr io.Writer) (*policy.Policy, int) {
	if err := fs.Parse(args); err != nil {
		return nil, flagExit(err)
	}
	switch {
	case *file == "":
		fmt.Fprintf(stderr, "contentguard %s: --policy FILE is required\n\n", fs.Name())
		fs.Usage()
		return nil, 2
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "contentguard %s: unexpected arguments %q (the policy is --policy FILE)\n\n", fs.Name(), fs.Args())
		fs.Usage()
		return nil, 2
	}
	p, err := policyfile.Load(*file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, 1
	}
	return p, 0
}

// writeFileAtomic replaces path with b through a temporary file in the same
// directory, so NGINX never reads half a snippet.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// headerFlags collects repeated --header 'Name: value' flags.
type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

// explanation is the --json output of policy explain.
type explanation struct {
	Policy          string            `json:"policy"`
	Route           string            `json:"route"`
	Forward         bool              `json:"forward"`
	Status          int               `json:"status"`
	Reason          string            `json:"reason"`
	RequestID       string            `json:"requestId"`
	ClientIP        string            `json:"clientIP"`
	Subject         string            `json:"subject,omitempty"`
	AuthMethod      string            `json:"authMethod,omitempty"`
	Path            string            `json:"path"`
	Headers         map[string]string `json:"headers"`
	UpstreamHeaders map[string]string `json:"upstreamHeaders"`
	StripHeaders    []string          `json:"stripHeaders,omitempty"`
	Body            json.RawMessage   `json:"body,omitempty"`
	Checks          []edge.Step       `json:"checks"`
}

func runPolicyExplain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	method := fs.String("method", "GET", "request method")
	path := fs.String("path", "/", "request path as the client sends it (may include a query)")
	peer := fs.String("peer", "127.0.0.1", "address of the connecting peer")
	tls := fs.Bool("tls", false, "the request arrived over TLS")
	bodyBytes := fs.Int64("body-bytes", -1, "declared Content-Length (-1: none)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	var headers headerFlags
	fs.Var(&headers, "header", "request header 'Name: value' (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: contentguard policy explain FILE --method M --path P [--header 'K: V']... [--peer IP] [--json]\n\nShows the matched route, the identity, each check and the final decision.\nAn allowed request is reported with status 200, as if the upstream answered OK.\n\nFlags:")
		fs.PrintDefaults()
	}
	files, err := parseAmongFlags(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(files) != 1 {
		fmt.Fprintf(stderr, "contentguard policy explain: want one policy file, got %d\n\n", len(files))
		fs.Usage()
		return 2
	}
	file := files[0]
	p, err := policyfile.Load(file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	addr, err := netip.ParseAddr(*peer)
	if err != nil {
		fmt.Fprintf(stderr, "contentguard policy explain: --peer: %v\n", err)
		return 2
	}
	h := http.Header{}
	for _, hv := range headers {
		name, value, ok := strings.Cut(hv, ":")
		if !ok || strings.TrimSpace(name) == "" {
			fmt.Fprintf(stderr, "contentguard policy explain: --header %q: want 'Name: value'\n", hv)
			return 2
		}
		h.Add(strings.TrimSpace(name), strings.TrimLeft(value, " \t"))
	}
	e, err := edge.New(ctx, p, edge.Options{})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer e.Close()
	rawPath, query, _ := strings.Cut(*path, "?")
	d := e.Check(ctx, edge.Request{
		Method: *method, Host: "explain.local", Path: rawPath, RawQuery: query,
		Header: h, Peer: addr, TLS: *tls, ContentLength: *bodyBytes, DecideOnly: true, Explain: true,
	})
	x := explanation{
		Policy: p.String(), Route: d.Route, Forward: d.Allow, Status: d.Status, Reason: d.Reason,
		RequestID: d.RequestID, Subject: d.Subject, AuthMethod: d.AuthMethod, Path: d.Path,
		Headers: map[string]string{}, UpstreamHeaders: map[string]string{}, Checks: d.Trace,
	}
	if d.ClientIP.IsValid() {
		x.ClientIP = d.ClientIP.String()
	}
	resp := http.Header{}
	d.SetResponseHeaders(resp)
	if !d.Allow && len(d.Body) > 0 {
		resp.Set("Content-Type", d.ContentType)
		x.Body = d.Body
	}
	for k := range resp {
		x.Headers[k] = strings.Join(resp.Values(k), ", ")
	}
	if d.Allow {
		x.Status = http.StatusOK
		up := h.Clone()
		d.SetUpstreamHeaders(up)
		for k := range up {
			x.UpstreamHeaders[k] = strings.Join(up.Values(k), ", ")
		}
		x.StripHeaders = d.StripHeaders
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(x); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}
	printExplanation(stdout, x)
	return 0
}

func printExplanation(w io.Writer, x explanation) {
	fmt.Fprintf(w, "policy     %s\n", x.Policy)
	for _, s := range x.Checks {
		fmt.Fprintf(w, "  %-16s %-14s %s\n", s.Check, s.Result, s.Detail)
	}
	verdict := "reject"
	if x.Forward {
		verdict = "forward to " + x.Path
	}
	fmt.Fprintf(w, "decision   %d %s (%s)\n", x.Status, x.Reason, verdict)
	if x.Route != "" {
		fmt.Fprintf(w, "route      %s\n", x.Route)
	}
	if x.Subject != "" {
		fmt.Fprintf(w, "identity   %s via %s\n", x.Subject, x.AuthMethod)
	}
	printHeaders(w, "response headers", x.Headers)
	if x.Forward {
		printHeaders(w, "upstream headers", x.UpstreamHeaders)
	}
	if len(x.Body) > 0 {
		fmt.Fprintf(w, "body       %s\n", x.Body)
	}
}

func printHeaders(w io.Writer, title string, h map[string]string) {
	fmt.Fprintf(w, "%s:\n", title)
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s: %s\n", k, h[k])
	}
}

// flagExit maps a flag parsing error to an exit status: 0 for --help.
// parseAmongFlags parses args whose operands (file names) may stand
// before, among or after the flags, as `policy validate --strict a.yaml
// b.yaml --format json` does: every flag counts wherever it stands, and the
// operands come back in order. The flag package alone stops at the first
// operand and leaves the flags after it unread.
func parseAmongFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var operands []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		operands, args = append(operands, fs.Arg(0)), fs.Args()[1:]
	}
	return operands, nil
}

func flagExit(err error) int {
	if err == flag.ErrHelp {
		return 0
	}
	return 2
}
