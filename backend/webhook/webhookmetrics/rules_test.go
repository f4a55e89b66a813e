package webhookmetrics

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// rulesMarker opens the alert rules in docs/operations.md.
const rulesMarker = "# prometheus rules: jobs and webhooks\n"

// TestAlertRulesInOperationsDoc extracts the alert rules from
// docs/operations.md, checks them with promtool and runs unit tests of
// every alert: it fires on the condition it names and not on its near
// misses (drops of deleted endpoints, a shared gauge summed over
// instances).
func TestAlertRulesInOperationsDoc(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), rulesMarker)
	if !ok {
		t.Fatalf("docs/operations.md has no block starting %q", rulesMarker)
	}
	rules, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("the rules block is not closed")
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is needed for this test: %v", err)
	}
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(rules), 0o600))
	must(os.WriteFile(filepath.Join(dir, "rules_test.yaml"), []byte(ruleTests), 0o600))
	for _, args := range [][]string{{"check", "rules", "rules.yaml"}, {"test", "rules", "rules_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// ruleTests are promtool unit tests of the alerts: two instances (an API
// and a worker) reporting, one scrape a minute.
const ruleTests = `
rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: webhook_deliveries_dropped_total{reason="queue_full",instance="api"}
        values: 0 0 0 4 4 4 4 4 4 4 4 4
      - series: webhook_deliveries_dropped_total{reason="endpoint_deleted",instance="worker"}
        values: 0+5x20
      - series: webhook_delivery_queue_depth{instance="api"}
        values: 9000x20
      - series: webhook_delivery_queue_depth{instance="worker"}
        values: 9000x20
      - series: webhook_delivery_queue_lag_seconds{instance="api"}
        values: 300x20
      - series: webhook_deliveries_failed_total{instance="worker"}
        values: 0 0 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1
      - series: webhook_delivery_attempts_total{code="2xx",instance="worker"}
        values: 0+10x30
      - series: webhook_delivery_attempts_total{code="5xx",instance="worker"}
        values: 0+30x30
      - series: webhook_delivery_attempts_total{code="error",instance="api"}
        values: 0+30x30
      - series: jobs_queue_depth{instance="worker"}
        values: 2000x30
      - series: jobs_completed_total{status="completed",instance="worker"}
        values: 0+10x30
      - series: jobs_completed_total{status="failed",instance="worker"}
        values: 0+5x30
    alert_rule_test:
      - eval_time: 4m
        alertname: WebhookDeliveriesDropped
        exp_alerts:
          - exp_labels: {severity: critical}
            exp_annotations: {summary: "Webhook deliveries were dropped (queue full, or lost at shutdown)"}
      - eval_time: 15m
        alertname: WebhookDeliveriesDropped
        exp_alerts: []
      - eval_time: 4m
        alertname: WebhookQueueNearlyFull
        exp_alerts: []
      - eval_time: 6m
        alertname: WebhookQueueNearlyFull
        exp_alerts:
          - exp_labels: {severity: warning}
            exp_annotations: {summary: "The webhook delivery queue is above 80 % of its size; from 90 % new jobs get 503"}
      - eval_time: 6m
        alertname: WebhookDeliveryBacklog
        exp_alerts:
          - exp_labels: {severity: warning}
            exp_annotations: {summary: "Webhook deliveries have been overdue by more than 2 minutes"}
      - eval_time: 5m
        alertname: WebhookDeadLetters
        exp_alerts:
          - exp_labels: {severity: warning}
            exp_annotations: {summary: "Webhook deliveries failed for good; see /api/v1/webhooks/{id}/deliveries"}
      - eval_time: 20m
        alertname: WebhookEndpointsFailing
        exp_alerts:
          - exp_labels: {severity: warning}
            exp_annotations: {summary: "Most webhook delivery attempts fail (5xx or no answer)"}
      - eval_time: 12m
        alertname: JobBacklog
        exp_alerts:
          - exp_labels: {severity: warning}
            exp_annotations: {summary: "More than 1000 jobs have been waiting for workers for 10 minutes"}
      - eval_time: 25m
        alertname: JobsFailing
        exp_alerts:
          - exp_labels: {severity: warning}
            exp_annotations: {summary: "More than 10 % of jobs fail"}
  # Near misses: deleted endpoints' drops, a queue whose instances only sum
  # above the threshold, senders keeping up, healthy endpoints and jobs.
  - interval: 1m
    input_series:
      - series: webhook_deliveries_dropped_total{reason="endpoint_deleted",instance="worker"}
        values: 0+5x20
      - series: webhook_delivery_queue_depth{instance="api"}
        values: 5000x20
      - series: webhook_delivery_queue_depth{instance="worker"}
        values: 5000x20
      - series: webhook_delivery_queue_lag_seconds{instance="api"}
        values: 0x20
      - series: webhook_deliveries_failed_total{instance="worker"}
        values: 3x20
      - series: webhook_delivery_attempts_total{code="2xx",instance="worker"}
        values: 0+30x30
      - series: webhook_delivery_attempts_total{code="5xx",instance="worker"}
        values: 0+10x30
      - series: jobs_queue_depth{instance="worker"}
        values: 10x30
      - series: jobs_completed_total{status="completed",instance="worker"}
        values: 0+100x30
      - series: jobs_completed_total{status="failed",instance="worker"}
        values: 0+1x30
    alert_rule_test:
      - {eval_time: 10m, alertname: WebhookDeliveriesDropped, exp_alerts: []}
      - {eval_time: 10m, alertname: WebhookQueueNearlyFull, exp_alerts: []}
      - {eval_time: 10m, alertname: WebhookDeliveryBacklog, exp_alerts: []}
      - {eval_time: 20m, alertname: WebhookDeadLetters, exp_alerts: []}
      - {eval_time: 25m, alertname: WebhookEndpointsFailing, exp_alerts: []}
      - {eval_time: 25m, alertname: JobBacklog, exp_alerts: []}
      - {eval_time: 25m, alertname: JobsFailing, exp_alerts: []}
`
