package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestHelperProcess is the backend run as a child process by
// TestBackendUnderLambdaRuntimeAPI (the Lambda library exits the process on
// runtime errors, so it must not run inside the test binary itself).
func TestHelperProcess(t *testing.T) {
	if os.Getenv("CONTENTGUARD_HELPER_PROCESS") != "1" {
		return
	}
	os.Exit(run(context.Background(), []string{"backend", "--log-level", "error"}, os.Stdout, os.Stderr))
}

// TestBackendUnderLambdaRuntimeAPI runs `contentguard backend` with
// AWS_LAMBDA_FUNCTION_NAME set against a stand-in for the Lambda Runtime API
// (AWS itself cannot run here): the process must fetch API Gateway v2 and v1
// events from /runtime/invocation/next and post proxy responses back.
func TestBackendUnderLambdaRuntimeAPI(t *testing.T) {
	eventsToSend := []string{
		`{"version":"2.0","rawPath":"/api/v1/analyze","headers":{"content-type":"application/json"},"requestContext":{"http":{"method":"POST","sourceIp":"203.0.113.1"},"requestId":"gw-1","stage":"$default"},"body":"{\"content\":\"a b a\"}","isBase64Encoded":false}`,
		`{"httpMethod":"GET","path":"/health","headers":{},"requestContext":{"requestId":"gw-2","identity":{"sourceIp":"203.0.113.2"}},"body":"","isBase64Encoded":false}`,
	}
	rt := startRuntimeAPI(t, eventsToSend)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "CONTENTGUARD_HELPER_PROCESS=1", "AWS_LAMBDA_FUNCTION_NAME=cg",
		"AWS_LAMBDA_RUNTIME_API="+rt.addr, "REDIS_URL=", "OTEL_EXPORTER_OTLP_ENDPOINT=", "PORT=")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	var got []map[string]any
	for range eventsToSend {
		select {
		case r := <-rt.results:
			var m map[string]any
			if err := json.Unmarshal([]byte(strings.TrimPrefix(r, "response ")), &m); err != nil {
				t.Fatalf("response %q: %v", r, err)
			}
			got = append(got, m)
		case <-time.After(20 * time.Second):
			t.Fatalf("no response from the Lambda process; stderr:\n%s", stderr.String())
		}
	}
	if got[0]["statusCode"] != 200.0 || !strings.Contains(got[0]["body"].(string), `"word_count":3`) {
		t.Fatalf("v2 response %v", got[0])
	}
	if got[0]["headers"].(map[string]any)["X-Request-Id"] != "gw-1" {
		t.Fatalf("v2 headers %v", got[0]["headers"])
	}
	if got[1]["statusCode"] != 200.0 || !strings.Contains(got[1]["body"].(string), `"status":"healthy"`) {
		t.Fatalf("v1 response %v", got[1])
	}
	if _, ok := got[1]["multiValueHeaders"]; !ok {
		t.Fatalf("v1 response lacks multiValueHeaders: %v", got[1])
	}
}
