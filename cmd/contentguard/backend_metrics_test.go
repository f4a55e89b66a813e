package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/contentguard/contentguard/internal/syncbuf"
)

// TestBackendMetricsListener: with --metrics-listen the API process also
// serves /metrics there (what a pod scrapes when the API listens on
// loopback behind the sidecar), counting the API's own requests; without
// it (and without METRICS_LISTEN) no second listener opens.
func TestBackendMetricsListener(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("AWS_LAMBDA_FUNCTION_NAME", "")
	t.Setenv("METRICS_LISTEN", "")
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &syncbuf.Buffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"backend", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"}, io.Discard, stderr)
	}()
	api := logField(t, stderr, "ready", "addr")
	metrics := logField(t, stderr, "serving metrics", "addr")
	resp, err := http.Post("http://"+api+"/api/v1/analyze", "application/json", strings.NewReader(`{"content":"a b a"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `http_requests_total{method="POST",route="/api/v1/analyze",status="200"} 1`; !strings.Contains(string(body), want) {
		t.Fatalf("metrics listener lacks %s:\n%s", want, body)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}

	ctx, cancel = context.WithCancel(context.Background())
	stderr = &syncbuf.Buffer{}
	go func() { done <- run(ctx, []string{"backend", "--listen", "127.0.0.1:0"}, io.Discard, stderr) }()
	logField(t, stderr, "ready", "addr")
	cancel()
	<-done
	if strings.Contains(stderr.String(), `"msg":"serving metrics"`) {
		t.Fatalf("an API without --metrics-listen opened a metrics listener:\n%s", stderr.String())
	}
}
