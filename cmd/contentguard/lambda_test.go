package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
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
	responses := make(chan string, len(eventsToSend))
	next := make(chan string, len(eventsToSend))
	for _, e := range eventsToSend {
		next <- e
	}
	done := make(chan struct{})
	mux := http.NewServeMux()
	var n atomic.Int64
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		select {
		case ev := <-next:
			w.Header().Set("Lambda-Runtime-Aws-Request-Id", fmt.Sprintf("inv-%d", n.Add(1)))
			w.Header().Set("Lambda-Runtime-Deadline-Ms", fmt.Sprint(time.Now().Add(time.Minute).UnixMilli()))
			w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:123456789012:function:cg")
			_, _ = io.WriteString(w, ev)
		case <-done:
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		responses <- string(b)
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		responses <- "ERROR " + string(b)
		w.WriteHeader(http.StatusAccepted)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	defer close(done)

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "CONTENTGUARD_HELPER_PROCESS=1", "AWS_LAMBDA_FUNCTION_NAME=cg",
		"AWS_LAMBDA_RUNTIME_API="+ln.Addr().String(), "REDIS_URL=", "OTEL_EXPORTER_OTLP_ENDPOINT=", "PORT=")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	var got []map[string]any
	for range eventsToSend {
		select {
		case r := <-responses:
			var m map[string]any
			if err := json.Unmarshal([]byte(r), &m); err != nil {
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
