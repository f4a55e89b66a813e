package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	awslambda "github.com/aws/aws-lambda-go/lambda"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/edge/auth"
	"github.com/contentguard/contentguard/edge/ratelimit"
	"github.com/contentguard/contentguard/edge/ratelimit/redisstore"
	"github.com/contentguard/contentguard/plugins/apigateway"
	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/policy/policyfile"
	"github.com/contentguard/contentguard/telemetry"
)

const lambdaAuthorizerHelp = `Usage: contentguard lambda-authorizer [--policy FILE] [--event FILE]

Runs as an AWS API Gateway Lambda authorizer of the REQUEST type (payload
1.0 for REST APIs, 1.0 or 2.0 for HTTP APIs): every event is judged by the
policy, and the answer is an IAM policy document — Allow with the context
the backend reads (requestId, route, subject, the forwarded claims), Deny
with the status and reason of the rejection, or the error Unauthorized for
a 401 decision. The circuit breaker does not apply: API Gateway never tells
an authorizer what the integration answered (see docs/deploy.md).

The policy comes from --policy (default $CONTENTGUARD_POLICY_FILE; relative
paths resolve against the working directory, the deployment package's root
in Lambda) or from $CONTENTGUARD_POLICY, the document itself; exactly one.
Secrets named by the policy ({env: NAME}) are read from the environment.

In Lambda (AWS_LAMBDA_RUNTIME_API set) it serves events until the runtime
stops it. --event FILE ("-": stdin) decides one event instead and prints the
response, or {"errorMessage":"Unauthorized"}, as Lambda would return it.

Flags:
`

// runLambdaAuthorizer is the `lambda-authorizer` subcommand.
func runLambdaAuthorizer(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lambda-authorizer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	policyPath := fs.String("policy", os.Getenv("CONTENTGUARD_POLICY_FILE"), "policy file (default $CONTENTGUARD_POLICY_FILE)")
	eventPath := fs.String("event", "", "decide the authorizer event in this file (\"-\": stdin), print the response and exit")
	keysTimeout := fs.Duration("keys-timeout", 5*time.Second, "at start, wait this long at most for the JWKS of URL providers")
	logLevel := fs.String("log-level", envOr("LOG_LEVEL", "info"), "log level: debug, info, warn, error")
	fs.Usage = func() {
		fmt.Fprint(stdout, lambdaAuthorizerHelp)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "contentguard lambda-authorizer: unexpected arguments %q\n", fs.Args())
		return 2
	}
	p, err := authorizerPolicy(*policyPath, os.Getenv("CONTENTGUARD_POLICY"))
	if err != nil {
		fmt.Fprintf(stderr, "contentguard lambda-authorizer: %v\n", err)
		return 2
	}
	logger := telemetry.NewLogger(stderr, telemetry.ParseLevel(*logLevel))
	var redisClients redisstore.Clients
	defer redisClients.Close()
	var rates ratelimit.Store
	if p.Spec.RateLimit.Store.Type == "redis" {
		if rates, err = redisClients.Get(p.Spec.RateLimit.Store.URL); err != nil {
			logger.Error("rate-limit store", "err", err)
			return 1
		}
	}
	engine, err := edge.New(ctx, p, edge.Options{
		RateStore: rates,
		Auth: auth.Options{OnFetch: func(provider, url string, err error) {
			if err != nil {
				logger.Warn("JWKS fetch failed", "provider", provider, "url", url, "err", err.Error())
			}
		}},
	})
	if err != nil {
		logger.Error("policy", "err", err)
		return 1
	}
	defer engine.Close()
	awaitKeys(ctx, engine, *keysTimeout, logger)
	a := apigateway.New(engine, logger)

	if *eventPath != "" {
		return decideEvent(ctx, a, *eventPath, stdout, stderr)
	}
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") == "" {
		fmt.Fprintln(stderr, "contentguard lambda-authorizer: not running in AWS Lambda (AWS_LAMBDA_RUNTIME_API is unset); use --event FILE to decide one event")
		return 2
	}
	logger.Info("serving API Gateway authorizer events", "policy", p.Metadata.Name, "hash", p.Hash)
	awslambda.StartWithOptions(a.Handle, awslambda.WithContext(ctx))
	return 0
}

// authorizerPolicy loads the policy from exactly one of a file and an
// inline document.
func authorizerPolicy(path, inline string) (*policy.Policy, error) {
	switch {
	case path != "" && inline != "":
		return nil, fmt.Errorf("both a policy file (%s) and CONTENTGUARD_POLICY are set: choose one", path)
	case path != "":
		return policyfile.Load(path)
	case inline != "":
		p, err := policyfile.Parse("CONTENTGUARD_POLICY", []byte(inline))
		if err != nil {
			return nil, err
		}
		if p.BaseDir, err = filepath.Abs("."); err != nil {
			return nil, err
		}
		return p, nil
	}
	return nil, fmt.Errorf("no policy: give --policy FILE, CONTENTGUARD_POLICY_FILE or CONTENTGUARD_POLICY")
}

// awaitKeys gives URL providers' first JWKS fetch up to timeout, so that a
// cold start does not refuse its first tokens for want of keys.
func awaitKeys(ctx context.Context, e *edge.Engine, timeout time.Duration, logger *slog.Logger) {
	if len(e.AwaitingKeys()) == 0 {
		return
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for len(e.AwaitingKeys()) > 0 {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			logger.Warn("JWT providers without keys; their tokens are refused until the keys arrive", "providers", strings.Join(e.AwaitingKeys(), ","))
			return
		case <-tick.C:
		}
	}
}

// decideEvent answers the event in path as Lambda would return it.
func decideEvent(ctx context.Context, a *apigateway.Authorizer, path string, stdout, stderr io.Writer) int {
	var (
		data []byte
		err  error
	)
	if path == "-" {
		data, err = io.ReadAll(io.LimitReader(os.Stdin, 6<<20))
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		fmt.Fprintf(stderr, "contentguard lambda-authorizer: %v\n", err)
		return 1
	}
	resp, err := a.Handle(ctx, data)
	if err == apigateway.ErrUnauthorized {
		resp = map[string]string{"errorMessage": err.Error()}
	} else if err != nil {
		fmt.Fprintf(stderr, "contentguard lambda-authorizer: %v\n", err)
		return 1
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(resp); err != nil {
		fmt.Fprintf(stderr, "contentguard lambda-authorizer: %v\n", err)
		return 1
	}
	return 0
}

// lambdaHandlerArgs is the command line of a process that AWS Lambda
// started without arguments: a custom runtime (provided.al2023) runs the
// bootstrap executable bare and names the function's Handler in _HANDLER,
// so Handler "backend" or "lambda-authorizer" picks the subcommand.
func lambdaHandlerArgs(args []string, getenv func(string) string) []string {
	if len(args) > 0 || getenv("AWS_LAMBDA_RUNTIME_API") == "" {
		return args
	}
	return strings.Fields(getenv("_HANDLER"))
}
