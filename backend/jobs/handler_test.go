package jobs

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contentguard/contentguard/backend/webhook"
	"github.com/contentguard/contentguard/internal/polltest"
)

func serve(t *testing.T, h http.Handler, method, path, body string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: not JSON: %q", method, path, rec.Body.String())
	}
	return rec, out
}

func TestHandlerSubmitGetCancel(t *testing.T) {
	g := newGateRunner()
	defer close(g.release)
	q := newMemoryQueue(t, g.run, Options{})
	h := NewHandler(q, testResponder{}, HandlerOptions{})
	for _, prefix := range []string{"/api/v1", ""} {
		rec, out := serve(t, h, "POST", prefix+"/jobs", `{"kind":"batch","input":{"jobs":[]}}`)
		if rec.Code != http.StatusAccepted {
			t.Fatalf("submit = %d %v", rec.Code, out)
		}
		data := out["data"].(map[string]any)
		id := data["id"].(string)
		if loc := rec.Header().Get("Location"); loc != prefix+"/jobs/"+id {
			t.Errorf("Location = %q", loc)
		}
		for _, key := range []string{"id", "kind", "status", "progress", "result", "created_at", "started_at", "finished_at"} {
			if _, ok := data[key]; !ok {
				t.Errorf("job JSON lacks %q: %v", key, data)
			}
		}
		if rec, out = serve(t, h, "GET", prefix+"/jobs/"+id, ""); rec.Code != 200 || out["data"].(map[string]any)["id"] != id {
			t.Fatalf("get = %d %v", rec.Code, out)
		}
		if rec, out = serve(t, h, "DELETE", prefix+"/jobs/"+id, ""); rec.Code != 200 || out["data"].(map[string]any)["status"] != "cancelled" {
			t.Fatalf("cancel = %d %v", rec.Code, out)
		}
	}
}

func TestHandlerErrors(t *testing.T) {
	g := newGateRunner()
	defer close(g.release)
	q, err := NewMemory(g.run, MemoryOptions{Workers: 1, QueueSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	closeQueue(t, q)
	h := NewHandler(q, testResponder{}, HandlerOptions{MaxBodyBytes: 1024, RetryAfter: 1500 * time.Millisecond})
	cases := []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/api/v1/jobs", `{"kind":`, 400},
		{"POST", "/api/v1/jobs", `{}`, 422},
		{"POST", "/api/v1/jobs", `{"kind":"rm -rf"}`, 422},
		{"POST", "/api/v1/jobs", `{"kind":"batch","webhook_url":"https://x.example/"}`, 422},
		{"POST", "/api/v1/jobs", `{"kind":"batch","input":"` + strings.Repeat("x", 2000) + `"}`, 413},
		{"GET", "/api/v1/jobs/job_ffffffffffffffffffffffff", "", 404},
		{"GET", "/api/v1/jobs/..%2f..%2fetc", "", 404},
		{"DELETE", "/api/v1/jobs/not-an-id", "", 404},
		{"GET", "/api/v1/jobs", "", 405},
		{"PUT", "/jobs/job_ffffffffffffffffffffffff", "", 405},
	}
	for _, c := range cases {
		rec, out := serve(t, h, c.method, c.path, c.body)
		if rec.Code != c.status || out["success"] != false || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s %.40s = %d %v, want %d problem", c.method, c.path, c.body, rec.Code, out, c.status)
		}
	}
	// Fill the queue: one running, one waiting, the next is refused.
	var last *httptest.ResponseRecorder
	for i := 0; i < 3; i++ {
		last, _ = serve(t, h, "POST", "/api/v1/jobs", `{"kind":"batch"}`)
		if i == 0 {
			var out map[string]any
			_ = json.Unmarshal(last.Body.Bytes(), &out)
			waitJob(t, q, out["data"].(map[string]any)["id"].(string), "running", func(j Job) bool { return j.Status == StatusRunning })
		}
	}
	if last.Code != http.StatusServiceUnavailable || last.Header().Get("Retry-After") != "2" {
		t.Fatalf("full queue = %d Retry-After %q, want 503 and 2", last.Code, last.Header().Get("Retry-After"))
	}
	// Cancelling a completed job conflicts.
	done, _ := NewMemory(func(ctx context.Context, k string, in json.RawMessage, p func(float64)) (json.RawMessage, error) {
		return json.RawMessage(`1`), nil
	}, MemoryOptions{})
	closeQueue(t, done)
	j, _ := done.Submit(context.Background(), Spec{Kind: KindBatch})
	waitJob(t, done, j.ID, "finished", finished)
	if rec, _ := serve(t, NewHandler(done, testResponder{}, HandlerOptions{}), "DELETE", "/api/v1/jobs/"+j.ID, ""); rec.Code != http.StatusConflict {
		t.Fatalf("cancel completed = %d, want 409", rec.Code)
	}
}

// TestWebhookOnCompletion: a finished job's event reaches both its own
// webhook (signed with the job's secret) and a registered endpoint
// subscribed to the event, and never carries the secret.
func TestWebhookOnCompletion(t *testing.T) {
	type delivery struct {
		path, event string
		verified    bool
		body        []byte
	}
	got := make(chan delivery, 4)
	const jobSecret, endpointSecret = "job-secret-0123456789", "endpoint-secret-0123456789"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		secret := jobSecret
		if r.URL.Path == "/registered" {
			secret = endpointSecret
		}
		got <- delivery{r.URL.Path, r.Header.Get(webhook.HeaderEvent), webhook.Verify([]byte(secret), body, r.Header.Get(webhook.HeaderSignature)), body}
	}))
	defer srv.Close()
	guard := webhook.Guard{AllowPrivate: true}
	reg := webhook.NewRegistry(webhook.RegistryOptions{Guard: guard})
	if _, _, err := reg.Register(context.Background(), srv.URL+"/registered", []string{webhook.EventQualityCompleted}, endpointSecret); err != nil {
		t.Fatal(err)
	}
	d := webhook.NewDeliverer(reg, webhook.DelivererOptions{Guard: guard, BaseDelay: time.Millisecond})
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	q := newMemoryQueue(t, func(ctx context.Context, kind string, in json.RawMessage, p func(float64)) (json.RawMessage, error) {
		return json.RawMessage(`{"readability_score":71.2}`), nil
	}, Options{Webhooks: d})
	j, err := q.Submit(context.Background(), Spec{Kind: KindAnalyze, Input: json.RawMessage(`{"operation":"quality","content":"x"}`), WebhookURL: srv.URL + "/job", WebhookSecret: jobSecret})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]delivery{}
	for len(seen) < 2 {
		select {
		case dl := <-got:
			seen[dl.path] = dl
		case <-time.After(20 * time.Second):
			t.Fatalf("deliveries seen: %v", seen)
		}
	}
	for path, dl := range seen {
		if !dl.verified || dl.event != webhook.EventQualityCompleted {
			t.Errorf("%s: verified=%v event=%q", path, dl.verified, dl.event)
		}
		if strings.Contains(string(dl.body), jobSecret) {
			t.Errorf("%s: payload leaks the webhook secret", path)
		}
		var env struct {
			Data Job `json:"data"`
		}
		if err := json.Unmarshal(dl.body, &env); err != nil || env.Data.ID != j.ID || env.Data.Status != StatusCompleted || string(env.Data.Result) != `{"readability_score":71.2}` {
			t.Errorf("%s: payload %s", path, dl.body)
		}
	}
	// Private webhook URLs are refused at submission without AllowPrivate.
	strict := webhook.NewDeliverer(nil, webhook.DelivererOptions{})
	t.Cleanup(func() { _ = strict.Close(context.Background()) })
	q2 := newMemoryQueue(t, newGateRunner().run, Options{Webhooks: strict})
	if _, err := q2.Submit(context.Background(), Spec{Kind: KindBatch, WebhookURL: "http://169.254.169.254/", WebhookSecret: jobSecret}); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("Submit with metadata webhook = %v", err)
	}
}

func TestDefaultEventFor(t *testing.T) {
	cases := []struct {
		kind   string
		status Status
		input  string
		want   string
	}{
		{KindBatch, StatusCompleted, `{}`, webhook.EventBatchCompleted},
		{KindBatch, StatusFailed, `{}`, webhook.EventBatchFailed},
		{KindBatch, StatusCancelled, `{}`, webhook.EventBatchFailed},
		{KindDedup, StatusCompleted, `{}`, webhook.EventSimilarityCompleted},
		{KindDedup, StatusFailed, `{}`, webhook.EventBatchFailed},
		{KindAnalyze, StatusCompleted, `{"content":"x"}`, webhook.EventAnalysisCompleted},
		{KindAnalyze, StatusCompleted, `{"operation":"similarity"}`, webhook.EventSimilarityCompleted},
		{KindAnalyze, StatusCompleted, `{"operation":"quality"}`, webhook.EventQualityCompleted},
		{KindAnalyze, StatusCompleted, `[1,2]`, webhook.EventAnalysisCompleted},
		{KindAnalyze, StatusRunning, `{}`, ""},
		{"other", StatusCompleted, `{}`, ""},
	}
	for _, c := range cases {
		if got := DefaultEventFor(c.kind, c.status, json.RawMessage(c.input)); got != c.want {
			t.Errorf("DefaultEventFor(%s, %s, %s) = %q, want %q", c.kind, c.status, c.input, got, c.want)
		}
	}
}

// TestJobDeadLettersReadableAndRedeliverable: a job's own webhook answering
// 400 leaves a dead letter listed at /jobs/{id}/deliveries; redelivering it
// sends the same delivery again. A delivery id that is not the job's is 404.
func TestJobDeadLettersReadableAndRedeliverable(t *testing.T) {
	var calls atomic.Int32
	ids := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ids <- r.Header.Get(webhook.HeaderID)
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	guard := webhook.Guard{AllowPrivate: true}
	d := webhook.NewDeliverer(nil, webhook.DelivererOptions{Guard: guard, PollInterval: 5 * time.Millisecond})
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	q := newMemoryQueue(t, func(ctx context.Context, kind string, in json.RawMessage, p func(float64)) (json.RawMessage, error) {
		return json.RawMessage(`{}`), nil
	}, Options{Webhooks: d})
	h := NewHandler(q, testResponder{}, HandlerOptions{})
	j, err := q.Submit(context.Background(), Spec{Kind: KindBatch, WebhookURL: srv.URL + "/own", WebhookSecret: "job-secret-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	first := <-ids
	path := "/api/v1/jobs/" + j.ID + "/deliveries"
	var list []any
	if !polltest.Until(10*time.Second, func() bool {
		_, out := serve(t, h, "GET", path, "")
		data, _ := out["data"].(map[string]any)
		list, _ = data["deliveries"].([]any)
		return len(list) == 1
	}) {
		t.Fatalf("no dead letter at %s", path)
	}
	dl := list[0].(map[string]any)
	if dl["id"] != first || dl["job_id"] != j.ID || dl["last_status"] != 400.0 || dl["status"] != "failed" {
		t.Fatalf("dead letter %v", dl)
	}
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/api/v1/jobs/job_000000000000000000000000/deliveries", 404},
		{"GET", "/jobs/nope/deliveries", 404},
		{"POST", path + "/dlv_nope/redeliver", 404},
		{"DELETE", path, 405},
	} {
		if rec, _ := serve(t, h, c.method, c.path, ""); rec.Code != c.status {
			t.Errorf("%s %s = %d, want %d", c.method, c.path, rec.Code, c.status)
		}
	}
	if rec, out := serve(t, h, "POST", "/jobs/"+j.ID+"/deliveries/"+first+"/redeliver", ""); rec.Code != http.StatusAccepted {
		t.Fatalf("redeliver = %d %v", rec.Code, out)
	}
	select {
	case again := <-ids:
		if again != first {
			t.Fatalf("redelivered as %q, want %q", again, first)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no redelivery")
	}
}
