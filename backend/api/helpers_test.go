package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/contentguard/contentguard/backend/jobs"
	"github.com/contentguard/contentguard/backend/webhook"
	"github.com/contentguard/contentguard/internal/syncbuf"
)

type testServer struct {
	*Server
	URL  string
	logs *syncbuf.Buffer
}

// newTestServer runs the full handler on a real loopback listener.
func newTestServer(t testing.TB, cfg Config) *testServer {
	t.Helper()
	logs := &syncbuf.Buffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return &testServer{Server: s, URL: hs.URL, logs: logs}
}

type answer struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

func (ts *testServer) do(t testing.TB, method, path, body string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if len(raw) > 0 && strings.Contains(resp.Header.Get("Content-Type"), "json") {
		if err := json.Unmarshal(raw, &a.Body); err != nil {
			t.Fatalf("%s %s: body is not JSON: %v: %q", method, path, err, raw)
		}
	}
	return a
}

func (a answer) data(t testing.TB) map[string]any {
	t.Helper()
	d, ok := a.Body["data"].(map[string]any)
	if !ok {
		t.Fatalf("no data object in %s", a.Raw)
	}
	return d
}

// mountAsync wires the in-process job queue and the webhook registry the way
// `contentguard backend` does (with the SSRF guard opened for loopback
// receivers in tests).
func mountAsync(t testing.TB, ts *testServer) (*webhook.Registry, *webhook.Deliverer) {
	t.Helper()
	guard := webhook.Guard{AllowPrivate: true}
	reg := webhook.NewRegistry(webhook.RegistryOptions{Guard: guard})
	hooksObs, err := ts.WebhooksObserver()
	if err != nil {
		t.Fatal(err)
	}
	d := webhook.NewDeliverer(reg, webhook.DelivererOptions{Guard: guard, BaseDelay: time.Millisecond, PollInterval: 10 * time.Millisecond, Observer: hooksObs})
	obs, err := ts.JobsObserver()
	if err != nil {
		t.Fatal(err)
	}
	q, err := jobs.NewMemory(ts.Runner, jobs.MemoryOptions{Options: jobs.Options{Webhooks: d, Observer: obs}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = q.Close(ctx)
		_ = d.Close(ctx)
	})
	ts.MountJobs(q)
	if err := ts.MountWebhooks(reg, d); err != nil {
		t.Fatal(err)
	}
	return reg, d
}
