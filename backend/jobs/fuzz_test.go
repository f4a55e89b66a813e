package jobs

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzSubmitBody: any request body gets a 202 or a 4xx problem from the
// handler, never a panic or a 5xx, and an accepted job is readable.
func FuzzSubmitBody(f *testing.F) {
	for _, s := range []string{
		`{"kind":"batch","input":{"jobs":[]}}`, `{"kind":"analyze"}`, `{"kind":"dedup","input":null}`,
		`{"kind":"batch","input":"x","webhook_url":"http://127.0.0.1/"}`, `{"kind":1}`, `[]`, ``, `{"input":{}}`,
		`{"kind":"batch","webhook_secret":"0123456789abcdef"}`,
	} {
		f.Add(s)
	}
	run := func(ctx context.Context, kind string, in json.RawMessage, p func(float64)) (json.RawMessage, error) {
		return in, nil
	}
	q, err := NewMemory(run, MemoryOptions{Workers: 1, QueueSize: 10000, MaxJobs: 20000})
	if err != nil {
		f.Fatal(err)
	}
	defer q.Close(context.Background())
	h := NewHandler(q, testResponder{}, HandlerOptions{MaxBodyBytes: 4096})
	f.Fuzz(func(t *testing.T, body string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/jobs", strings.NewReader(body)))
		switch {
		case rec.Code == http.StatusAccepted:
			var out struct{ Data Job }
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || !validID(out.Data.ID) {
				t.Fatalf("202 with body %q", rec.Body.String())
			}
			if _, err := q.Get(context.Background(), out.Data.ID); err != nil {
				t.Fatalf("accepted job not readable: %v", err)
			}
		case rec.Code == http.StatusServiceUnavailable: // queue full under long fuzzing
		case rec.Code >= 400 && rec.Code < 500:
			if rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%d without problem+json", rec.Code)
			}
		default:
			t.Fatalf("status %d for body %q", rec.Code, body)
		}
	})
}
