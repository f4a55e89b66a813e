package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contentguard/contentguard/backend/api"
	"github.com/contentguard/contentguard/backend/lambda"
	"github.com/contentguard/contentguard/conformance"
)

var (
	authorizerEvents = filepath.Join("..", "..", "plugins", "apigateway", "testdata")
	standardPolicy   = filepath.Join(conformance.Dir(), "policies", "standard.yaml")
)

// TestLambdaAuthorizerDecidesEvents: --event answers real API Gateway
// authorizer events (payload 1.0 and 2.0) with the IAM policy document, or
// Unauthorized, whether the policy comes from a file or from
// CONTENTGUARD_POLICY; no policy, or two, is a usage error.
func TestLambdaAuthorizerDecidesEvents(t *testing.T) {
	t.Setenv("CONTENTGUARD_POLICY_FILE", "")
	t.Setenv("CONTENTGUARD_POLICY", "")
	decide := func(t *testing.T, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"lambda-authorizer", "--log-level", "error"}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	rest := filepath.Join(authorizerEvents, "rest-request.json")
	code, out, errs := decide(t, "--policy", standardPolicy, "--event", rest)
	if code != 0 || !strings.Contains(out, `"Effect": "Allow"`) || !strings.Contains(out, `"principalId": "apikey:batch-importer"`) ||
		!strings.Contains(out, `"arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod/POST/api/v1/analyze"`) {
		t.Fatalf("payload 1.0: exit %d\n%s%s", code, out, errs)
	}

	// The policy inline; relative paths resolve against the working
	// directory, as in a deployment package.
	doc, err := os.ReadFile(standardPolicy)
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join(conformance.Dir(), "policies"))
	t.Setenv("CONTENTGUARD_POLICY", string(doc))
	unauth := filepath.Join(t.TempDir(), "unauthorized.json")
	ev, err := os.ReadFile(filepath.Join(filepath.Dir(standardPolicy), "..", "..", "plugins", "apigateway", "testdata", "http-request.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(unauth, bytes.Replace(ev, []byte(`"x-api-key": "cg-conformance-rw-key",`), nil, 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs = decide(t, "--event", unauth); code != 0 || strings.TrimSpace(out) != "{\n  \"errorMessage\": \"Unauthorized\"\n}" {
		t.Fatalf("payload 2.0 without credentials: exit %d\n%s%s", code, out, errs)
	}
	if code, _, errs = decide(t, "--policy", standardPolicy, "--event", unauth); code != 2 || !strings.Contains(errs, "choose one") {
		t.Fatalf("two policies: exit %d %s", code, errs)
	}
	t.Setenv("CONTENTGUARD_POLICY", "")
	if code, _, errs = decide(t, "--event", unauth); code != 2 || !strings.Contains(errs, "no policy") {
		t.Fatalf("no policy: exit %d %s", code, errs)
	}
	if code, _, errs = decide(t, "--policy", standardPolicy); code != 2 || !strings.Contains(errs, "AWS_LAMBDA_RUNTIME_API") {
		t.Fatalf("outside Lambda without --event: exit %d %s", code, errs)
	}
}

// TestAuthorizerContextReachesTheBackend: the context the authorizer
// returns, passed by API Gateway to the backend's Lambda as
// requestContext.authorizer.lambda, gives the backend the request ID the
// edge decided.
func TestAuthorizerContextReachesTheBackend(t *testing.T) {
	t.Setenv("CONTENTGUARD_POLICY", "")
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"lambda-authorizer", "--log-level", "error", "--policy", standardPolicy,
		"--event", filepath.Join(authorizerEvents, "rest-request.json")}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var auth struct{ Context map[string]any }
	if err := json.Unmarshal(out.Bytes(), &auth); err != nil {
		t.Fatal(err)
	}
	id, _ := auth.Context["requestId"].(string)
	if id == "" {
		t.Fatalf("no requestId in %v", auth.Context)
	}
	srv, err := api.New(api.Config{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := json.Marshal(map[string]any{
		"version": "2.0", "rawPath": "/health", "headers": map[string]string{"x-request-id": "client-id"},
		"requestContext": map[string]any{"http": map[string]any{"method": "GET", "sourceIp": "198.51.100.7"},
			"requestId": "gw", "stage": "$default", "authorizer": map[string]any{"lambda": auth.Context}},
	})
	resp, err := lambda.New(srv.Handler())(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(resp)
	if !strings.Contains(string(b), `"X-Request-Id":"`+id+`"`) {
		t.Fatalf("backend answered %s; want X-Request-Id %s", b, id)
	}
}

// runtimeAPI is a stand-in for the AWS Lambda Runtime API (Lambda itself
// cannot run here): it hands out events and collects what the function
// posts back, answers and errors alike.
type runtimeAPI struct {
	addr    string
	results chan string
}

func startRuntimeAPI(t *testing.T, evs []string) *runtimeAPI {
	t.Helper()
	next := make(chan string, len(evs))
	for _, e := range evs {
		next <- e
	}
	rt := &runtimeAPI{results: make(chan string, len(evs))}
	done := make(chan struct{})
	var n atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		select {
		case ev := <-next:
			w.Header().Set("Lambda-Runtime-Aws-Request-Id", fmt.Sprintf("inv-%d", n.Add(1)))
			w.Header().Set("Lambda-Runtime-Deadline-Ms", fmt.Sprint(time.Now().Add(time.Minute).UnixMilli()))
			w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:123456789012:function:authorizer")
			_, _ = io.WriteString(w, ev)
		case <-done:
		case <-r.Context().Done():
		}
	})
	for _, kind := range []string{"response", "error"} {
		mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/"+kind, func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			rt.results <- kind + " " + string(b)
			w.WriteHeader(http.StatusAccepted)
		})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { close(done); srv.Close() })
	rt.addr = ln.Addr().String()
	return rt
}

// TestLambdaAuthorizerUnderRuntimeAPI runs the built binary as Lambda's
// custom runtime does — bare, as bootstrap, with the Handler in _HANDLER —
// against a stand-in Runtime API: a payload 1.0 event is allowed, a 2.0
// event without credentials comes back as the error Unauthorized.
func TestLambdaAuthorizerUnderRuntimeAPI(t *testing.T) {
	bin := buildBinary(t)
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(authorizerEvents, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	rt := startRuntimeAPI(t, []string{
		read("rest-request.json"),
		strings.Replace(read("http-request.json"), `"x-api-key": "cg-conformance-rw-key",`, "", 1),
	})
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "AWS_LAMBDA_RUNTIME_API="+rt.addr, "_HANDLER=lambda-authorizer",
		"AWS_LAMBDA_FUNCTION_NAME=authorizer", "CONTENTGUARD_POLICY_FILE="+standardPolicy, "CONTENTGUARD_POLICY=")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var got []string
	for range 2 {
		select {
		case r := <-rt.results:
			got = append(got, r)
		case <-time.After(30 * time.Second):
			t.Fatalf("no answer from the authorizer; stderr:\n%s", stderr.String())
		}
	}
	if !strings.HasPrefix(got[0], "response ") || !strings.Contains(got[0], `"Effect":"Allow"`) || !strings.Contains(got[0], `"requestId":"`) {
		t.Fatalf("payload 1.0: %s", got[0])
	}
	var e struct{ ErrorMessage string }
	if kind, body, _ := strings.Cut(got[1], " "); kind != "error" || json.Unmarshal([]byte(body), &e) != nil || e.ErrorMessage != "Unauthorized" {
		t.Fatalf("payload 2.0 without credentials: %s", got[1])
	}
}

// TestLambdaHandlerArgs: only a bare process inside Lambda takes its
// command from _HANDLER.
func TestLambdaHandlerArgs(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	inLambda := env(map[string]string{"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", "_HANDLER": "backend --log-level warn"})
	if got := strings.Join(lambdaHandlerArgs(nil, inLambda), " "); got != "backend --log-level warn" {
		t.Fatalf("bare in Lambda: %q", got)
	}
	if got := strings.Join(lambdaHandlerArgs([]string{"version"}, inLambda), " "); got != "version" {
		t.Fatalf("arguments given: %q", got)
	}
	if got := lambdaHandlerArgs(nil, env(map[string]string{"_HANDLER": "backend"})); len(got) != 0 {
		t.Fatalf("outside Lambda: %q", got)
	}
}
