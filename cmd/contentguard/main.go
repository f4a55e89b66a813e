// Command contentguard is the one binary of contentguard: it validates and
// explains edge policies, mints development tokens, and runs the analysis
// backend, the sidecar data plane, or both together (up).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/contentguard/contentguard/internal/buildinfo"
)

// command is one subcommand: its name, a one-line summary and its entry point.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"backend", "run the text-analysis backend", runBackend},
		{"healthcheck", "exit 0 when every URL answers 2xx (the image's HEALTHCHECK)", runHealthcheck},
		{"lambda-authorizer", "run as an AWS API Gateway Lambda authorizer on the policy", runLambdaAuthorizer},
		{"sidecar", "run the edge proxy in front of an upstream", runSidecar},
		{"policy", "validate and explain edge policies; write their NGINX and Envoy configuration", runPolicy},
		{"token", "generate signing keys and mint development tokens", runToken},
		{"up", "run backend and edge together on the embedded default policy", runUp},
		{"version", "print the version (also --version)", runVersion},
		{"xds", "serve policies to Envoy, gRPC clients and sidecars over xDS", runXDS},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	args = lambdaHandlerArgs(args, os.Getenv)
	if len(args) == 0 || isHelp(args[0]) {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if isVersion(args[0]) {
		return runVersion(ctx, args[1:], stdout, stderr)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "contentguard: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func isVersion(s string) bool { return s == "--version" || s == "-version" }

// runVersion prints the binary's version, from the build information the Go
// toolchain recorded (see internal/buildinfo).
func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && isHelp(args[0]) {
		fmt.Fprint(stdout, "Usage: contentguard version (or contentguard --version)\n\nPrints the version of this build, from what the Go toolchain recorded in\nit: the module version (a release tag, or a pseudo-version of the commit),\nelse the commit, else (devel).\n")
		return 0
	}
	if len(args) > 0 {
		fmt.Fprintf(stderr, "contentguard version: unexpected arguments %q\n", args)
		return 2
	}
	fmt.Fprintf(stdout, "contentguard %s\n", buildinfo.Version())
	return 0
}

func isHelp(s string) bool { return s == "-h" || s == "--help" || s == "-help" || s == "help" }

func usage(w io.Writer) {
	fmt.Fprintln(w, "contentguard — one edge policy, the same decision on every data plane.")
	fmt.Fprintln(w, "\nUsage: contentguard <command> [flags]\n\nCommands:")
	cs := commands()
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	width := 0
	for _, c := range cs {
		width = max(width, len(c.name))
	}
	for _, c := range cs {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'contentguard <command> --help' for the flags of one command.")
}

// sub dispatches a command's own subcommands (contentguard policy validate ...).
func sub(ctx context.Context, group string, args []string, stdout, stderr io.Writer, subs map[string]func(context.Context, []string, io.Writer, io.Writer) int, help string) int {
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprint(stdout, help)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	f, ok := subs[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "contentguard %s: unknown subcommand %q\n\n%s", group, args[0], help)
		return 2
	}
	return f(ctx, args[1:], stdout, stderr)
}
