package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/contentguard/contentguard/backend/webhook"
	"github.com/contentguard/contentguard/internal/polltest"
)

func waitJob(t *testing.T, ts *testServer, id string) map[string]any {
	t.Helper()
	var job map[string]any
	if !polltest.Until(10*time.Second, func() bool {
		job = ts.do(t, "GET", "/api/v1/jobs/"+id, "").data(t)
		switch job["status"] {
		case "completed", "failed", "cancelled":
			return true
		}
		return false
	}) {
		t.Fatalf("job %s did not finish", id)
	}
	return job
}

func TestJobsRunThroughTheRunner(t *testing.T) {
	ts := newTestServer(t, Config{})
	mountAsync(t, ts)
	cases := []struct {
		name, body, status string
		check              func(result map[string]any) bool
	}{
		{"batch", `{"kind":"batch","input":{"jobs":[{"operation":"analyze","input":{"content":"a b a"}},{"operation":"quality","input":{"content":""}}]}}`, "completed",
			func(r map[string]any) bool {
				return r["completed_jobs"] == 1.0 && r["failed_jobs"] == 1.0 && len(r["results"].([]any)) == 2
			}},
		{"dedup", `{"kind":"dedup","input":{"documents":[{"id":"x","text":"same words here"},{"id":"y","text":"same words here"}]}}`, "completed",
			func(r map[string]any) bool { _, ok := r["clusters"]; return ok }},
		{"analyze similarity", `{"kind":"analyze","input":{"operation":"similarity","text1":"abcd","text2":"abce"}}`, "completed",
			func(r map[string]any) bool { return r["similarity_score"] == 0.75 }},
		{"analyze default", `{"kind":"analyze","input":{"content":"one two"}}`, "completed",
			func(r map[string]any) bool { return r["word_count"] == 2.0 }},
		{"invalid input fails", `{"kind":"analyze","input":{"content":42}}`, "failed", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := ts.do(t, "POST", "/api/v1/jobs", c.body)
			if a.Status != http.StatusAccepted || !strings.HasPrefix(a.Header.Get("Location"), "/api/v1/jobs/") {
				t.Fatalf("submit: %d %s", a.Status, a.Raw)
			}
			job := waitJob(t, ts, a.data(t)["id"].(string))
			if job["status"] != c.status {
				t.Fatalf("job %v", job)
			}
			if c.check != nil && !c.check(job["result"].(map[string]any)) {
				t.Fatalf("result %v", job["result"])
			}
			if c.status == "failed" && !strings.Contains(job["error"].(string), "content: expected a string") {
				t.Fatalf("error %v", job["error"])
			}
		})
	}
	if a := ts.do(t, "POST", "/jobs", `{"kind":"mine bitcoin","input":{}}`); a.Status != 422 || a.Header.Get("Content-Type") != "application/problem+json" || a.Body["request_id"] == nil {
		t.Fatalf("unknown kind: %d %s", a.Status, a.Raw)
	}
	if a := ts.do(t, "GET", "/jobs/nope", ""); a.Status != 404 {
		t.Fatalf("unknown job: %d", a.Status)
	}
	// Job bodies may exceed the synchronous 1 MiB limit.
	big := `{"kind":"analyze","input":{"content":"` + strings.Repeat("word ", 300_000)[:MaxTextChars-1] + `"},"pad":"` + strings.Repeat("x", 1<<20) + `"}`
	if a := ts.do(t, "POST", "/api/v1/jobs", big); a.Status != http.StatusAccepted {
		t.Fatalf("large job body: %d %.300s", a.Status, a.Raw)
	}
}

// TestSyncAnalysisPublishesSignedWebhook registers a real loopback receiver
// and checks that a synchronous /analyze delivers analysis_completed with a
// valid HMAC-SHA256 signature.
func TestSyncAnalysisPublishesSignedWebhook(t *testing.T) {
	type delivery struct {
		event, sig string
		body       []byte
	}
	got := make(chan delivery, 4)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- delivery{r.Header.Get("X-Webhook-Event"), r.Header.Get("X-Webhook-Signature"), b}
	}))
	defer recv.Close()
	ts := newTestServer(t, Config{})
	mountAsync(t, ts)
	const secret = "0123456789abcdef-secret"
	a := ts.do(t, "POST", "/api/v1/webhooks/register", `{"url":"`+recv.URL+`/hook","events":["analysis_completed"],"secret":"`+secret+`"}`)
	if a.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", a.Status, a.Raw)
	}
	ts.do(t, "POST", "/quality", `{"content":"not subscribed"}`)
	ts.do(t, "POST", "/analyze", `{"content":"notify me"}`)
	select {
	case d := <-got:
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(d.body)
		if d.event != "analysis_completed" || d.sig != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
			t.Fatalf("delivery event %q sig %q", d.event, d.sig)
		}
		var msg map[string]any
		if err := json.Unmarshal(d.body, &msg); err != nil || !strings.Contains(string(d.body), `"word_count":2`) {
			t.Fatalf("payload %s", d.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook delivery")
	}
	stats := ts.do(t, "GET", "/webhooks/stats", "").data(t)
	if stats["totals"] == nil {
		t.Fatalf("stats %v", stats)
	}
}

// TestWebhookCountersWithoutAnObserver: a deliverer built without an
// observer still gets the server's delivery counters when mounted.
func TestWebhookCountersWithoutAnObserver(t *testing.T) {
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer recv.Close()
	ts := newTestServer(t, Config{})
	guard := webhook.Guard{AllowPrivate: true}
	reg := webhook.NewRegistry(webhook.RegistryOptions{Guard: guard})
	d := webhook.NewDeliverer(reg, webhook.DelivererOptions{Guard: guard, PollInterval: 10 * time.Millisecond})
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	if err := ts.MountWebhooks(reg, d); err != nil {
		t.Fatal(err)
	}
	if a := ts.do(t, "POST", "/api/v1/webhooks/register", `{"url":"`+recv.URL+`","events":["analysis_completed"]}`); a.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", a.Status, a.Raw)
	}
	ts.do(t, "POST", "/analyze", `{"content":"count me"}`)
	if !polltest.Until(10*time.Second, func() bool {
		return strings.Contains(string(ts.do(t, "GET", "/metrics", "").Raw), "\nwebhook_deliveries_succeeded_total 1\n")
	}) {
		t.Fatalf("metrics:\n%s", ts.do(t, "GET", "/metrics", "").Raw)
	}
}
