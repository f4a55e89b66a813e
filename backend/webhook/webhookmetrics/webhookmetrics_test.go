package webhookmetrics

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/contentguard/contentguard/backend/webhook"
	"github.com/contentguard/contentguard/internal/polltest"
)

// TestMetricsFromARealDeliverer sends through a real deliverer to a real
// receiver (a 503 then 200 for one delivery, a 400 for another) and checks
// the exposition, and that promtool accepts it.
func TestMetricsFromARealDeliverer(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/bad"):
			w.WriteHeader(http.StatusBadRequest)
		case n.Add(1) == 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	obs, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(reg); err == nil {
		t.Fatal("registering twice must fail")
	}
	hooks := webhook.NewRegistry(webhook.RegistryOptions{Guard: webhook.Guard{AllowPrivate: true}})
	d := webhook.NewDeliverer(hooks, webhook.DelivererOptions{
		Guard: webhook.Guard{AllowPrivate: true}, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond,
		PollInterval: 5 * time.Millisecond, Observer: obs,
	})
	defer d.Close(context.Background())
	if err := RegisterQueue(reg, d, hooks); err != nil {
		t.Fatal(err)
	}
	if _, _, err := hooks.Register(context.Background(), srv.URL+"/bad", []string{webhook.EventBatchFailed}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Send(context.Background(), webhook.Target{URL: srv.URL + "/ok", Secret: "0123456789abcdef"}, webhook.EventBatchCompleted, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Publish(context.Background(), webhook.EventBatchFailed, 2); err != nil {
		t.Fatal(err)
	}
	var out string
	want := []string{
		`webhook_delivery_attempts_total{code="2xx"} 1`,
		`webhook_delivery_attempts_total{code="4xx"} 1`,
		`webhook_delivery_attempts_total{code="5xx"} 1`,
		`webhook_deliveries_succeeded_total 1`,
		`webhook_deliveries_retried_total 1`,
		`webhook_deliveries_failed_total 1`,
		`webhook_deliveries_dropped_total{reason="queue_full"} 0`,
		`webhook_delivery_latency_seconds_count 1`,
		`webhook_delivery_queue_depth 0`,
		`webhook_delivery_queue_lag_seconds 0`,
		`webhook_dead_letters 1`,
		`webhook_endpoints 1`,
	}
	if !polltest.Until(10*time.Second, func() bool {
		out = expose(t, reg)
		for _, w := range want {
			if !strings.Contains(out, w) {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("exposition lacks some of %q:\n%s", want, out)
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is needed for this test: %v", err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, msg)
	}
}

func expose(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	enc := expfmt.NewEncoder(&text, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range families {
		if err := enc.Encode(f); err != nil {
			t.Fatal(err)
		}
	}
	return text.String()
}
