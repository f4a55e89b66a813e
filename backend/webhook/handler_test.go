package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/contentguard/contentguard/internal/polltest"
)

// call serves one request and decodes the JSON answer.
func call(t *testing.T, h http.Handler, method, path, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %q", method, path, rec.Body.String())
		}
	}
	return rec.Code, rec.Header(), out
}

func TestHandlerLifecycleAtBothPrefixes(t *testing.T) {
	for _, prefix := range []string{"", "/api/v1"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			reg := NewRegistry(RegistryOptions{Guard: Guard{Resolver: &staticResolver{fallback: addrs("93.184.216.34")}}})
			h := NewHandler(reg, nil, testResponder{})

			code, hdr, out := call(t, h, "POST", prefix+"/webhooks/register",
				`{"url":"https://hooks.example.com/cg","events":["batch_completed","batch_failed","batch_completed"],"secret":"my-very-own-secret"}`)
			if code != http.StatusCreated {
				t.Fatalf("register = %d %v", code, out)
			}
			data := out["data"].(map[string]any)
			id := data["id"].(string)
			if hdr.Get("Location") != prefix+"/webhooks/"+id {
				t.Errorf("Location = %q", hdr.Get("Location"))
			}
			if _, shown := data["secret"]; shown {
				t.Error("a client-chosen secret must not be echoed")
			}
			if evs := data["events"].([]any); len(evs) != 2 {
				t.Errorf("events = %v, want duplicates folded", evs)
			}

			// A generated secret is returned exactly once.
			code, _, out = call(t, h, "POST", prefix+"/webhooks/register", `{"url":"https://b.example.com/","events":["analysis_completed"]}`)
			if code != http.StatusCreated {
				t.Fatalf("register without secret = %d %v", code, out)
			}
			generated, _ := out["data"].(map[string]any)["secret"].(string)
			if len(generated) != 64 {
				t.Fatalf("generated secret %q, want 64 hex digits", generated)
			}

			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", prefix+"/webhooks", nil))
			if rec.Code != 200 || strings.Contains(rec.Body.String(), "my-very-own-secret") || strings.Contains(rec.Body.String(), generated) || strings.Contains(rec.Body.String(), "secret") {
				t.Fatalf("list = %d %s: must not reveal secrets", rec.Code, rec.Body.String())
			}
			var listed struct {
				Data struct{ Webhooks []Endpoint } `json:"data"`
			}
			_ = json.Unmarshal(rec.Body.Bytes(), &listed)
			if len(listed.Data.Webhooks) != 2 || listed.Data.Webhooks[0].ID != id {
				t.Fatalf("list = %+v", listed.Data.Webhooks)
			}

			rec = httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", prefix+"/webhooks/stats", nil))
			if rec.Code != 200 || strings.Contains(rec.Body.String(), "my-very-own-secret") || !strings.Contains(rec.Body.String(), `"attempts":0`) {
				t.Fatalf("stats = %d %s", rec.Code, rec.Body.String())
			}

			if code, _, out = call(t, h, "DELETE", prefix+"/webhooks/"+id, ""); code != 200 {
				t.Fatalf("delete = %d %v", code, out)
			}
			if code, _, out = call(t, h, "DELETE", prefix+"/webhooks/"+id, ""); code != 404 || out["success"] != false {
				t.Fatalf("second delete = %d %v, want 404 problem", code, out)
			}
			if eps, err := reg.List(context.Background()); err != nil || len(eps) != 1 {
				n := len(eps)
				t.Fatalf("%d endpoints after delete, want 1", n)
			}
		})
	}
}

func TestHandlerRejectsBadRegistrations(t *testing.T) {
	reg := NewRegistry(RegistryOptions{MaxEndpoints: 1, Guard: Guard{Resolver: &staticResolver{fallback: addrs("93.184.216.34")}}})
	h := NewHandler(reg, nil, testResponder{})
	cases := []struct {
		body   string
		status int
	}{
		{`{`, 400},
		{`[]`, 400},
		{`{"url":"http://127.0.0.1/x","events":["batch_completed"]}`, 422},
		{`{"url":"http://169.254.169.254/","events":["batch_completed"]}`, 422},
		{`{"url":"http://2130706433/","events":["batch_completed"]}`, 422},
		{`{"url":"ftp://example.com/","events":["batch_completed"]}`, 422},
		{`{"url":"https://example.com/","events":[]}`, 422},
		{`{"url":"https://example.com/","events":["job_exploded"]}`, 422},
		{`{"url":"https://example.com/","events":["batch_failed"],"secret":"short"}`, 422},
		{`{"url":"https://example.com/","events":["batch_failed"]}`, 201},
		{`{"url":"https://example.org/","events":["batch_failed"]}`, 409}, // registry full
		{`{"url":"https://example.com/","events":["batch_failed"],"pad":"` + strings.Repeat("x", maxRegisterBody) + `"}`, 413},
	}
	for _, c := range cases {
		code, hdr, out := call(t, h, "POST", "/api/v1/webhooks/register", c.body)
		if code != c.status {
			t.Errorf("register %.60s = %d %v, want %d", c.body, code, out, c.status)
		}
		if code >= 400 && hdr.Get("Content-Type") != "application/problem+json" {
			t.Errorf("register %.60s: error is not problem+json", c.body)
		}
	}
}

func TestHandlerWrongMethodIsAProblem(t *testing.T) {
	h := NewHandler(NewRegistry(RegistryOptions{}), nil, testResponder{})
	for _, c := range []struct{ method, path, allow string }{
		{"GET", "/webhooks/register", "POST"},
		{"POST", "/api/v1/webhooks", "GET"},
		{"DELETE", "/webhooks/stats", "GET"}, // GET only: "stats" is not an id
		{"PATCH", "/api/v1/webhooks/wh_1", "DELETE"},
	} {
		code, hdr, out := call(t, h, c.method, c.path, "")
		if code != http.StatusMethodNotAllowed || hdr.Get("Allow") != c.allow || out["success"] != false {
			t.Errorf("%s %s = %d Allow %q %v", c.method, c.path, code, hdr.Get("Allow"), out)
		}
	}
}

func TestRegistryErrors(t *testing.T) {
	reg := NewRegistry(RegistryOptions{Guard: Guard{AllowPrivate: true}})
	if err := reg.Delete(context.Background(), "wh_nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete unknown = %v", err)
	}
	_, _, err := reg.Register(context.Background(), "http://127.0.0.1:1/", []string{EventBatchCompleted}, strings.Repeat("k", MaxSecretLength+1))
	if !errors.Is(err, ErrInvalidSecret) {
		t.Errorf("oversized secret = %v", err)
	}
}

// TestDeadLettersReadableAndRedeliverable: a delivery refused with 400
// becomes a dead letter listed at /webhooks/{id}/deliveries; redelivering
// it sends the same delivery (id and body) again.
func TestDeadLettersReadableAndRedeliverable(t *testing.T) {
	rc := newReceiver(t, 400)
	h := newHarness(t, DelivererOptions{})
	api := NewHandler(h.reg, h.d, testResponder{})
	ep, _, err := h.reg.Register(context.Background(), rc.srv.URL+"/hook", []string{EventBatchFailed}, "0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.d.Publish(context.Background(), EventBatchFailed, map[string]string{"job": "job_1"}); err != nil {
		t.Fatal(err)
	}
	path := "/api/v1/webhooks/" + ep.ID + "/deliveries"
	var list []any
	if !polltest.Until(10*time.Second, func() bool {
		_, _, out := call(t, api, "GET", path, "")
		data, _ := out["data"].(map[string]any)
		list, _ = data["deliveries"].([]any)
		return len(list) == 1
	}) {
		t.Fatalf("no dead letter listed at %s", path)
	}
	dl := list[0].(map[string]any)
	payload, _ := dl["payload"].(map[string]any)
	if dl["status"] != "failed" || dl["last_status"] != 400.0 || dl["attempts"] != 1.0 || dl["last_error"] != "HTTP 400" ||
		dl["endpoint_id"] != ep.ID || payload["id"] != dl["id"] || dl["secret"] != nil {
		t.Fatalf("dead letter %v", dl)
	}
	id := dl["id"].(string)

	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/api/v1/webhooks/wh_nope/deliveries", 404},
		{"GET", path + "?limit=0", 400},
		{"GET", path + "?limit=x", 400},
		{"POST", path + "/dlv_nope/redeliver", 404},
		{"POST", "/webhooks/wh_nope/deliveries/" + id + "/redeliver", 404},
		{"PUT", path, 405},
		{"GET", path + "/" + id + "/redeliver", 405},
	} {
		if code, _, out := call(t, api, c.method, c.path, ""); code != c.status || out["success"] != false {
			t.Errorf("%s %s = %d %v, want %d problem", c.method, c.path, code, out, c.status)
		}
	}

	code, _, out := call(t, api, "POST", "/webhooks/"+ep.ID+"/deliveries/"+id+"/redeliver", "")
	if code != http.StatusAccepted || out["data"].(map[string]any)["status"] != "pending" {
		t.Fatalf("redeliver = %d %v", code, out)
	}
	got := rc.waitRequests(t, 2)
	if got[1].header.Get(HeaderID) != id || string(got[1].body) != string(got[0].body) {
		t.Fatalf("redelivery sent id %q, want %q with the same body", got[1].header.Get(HeaderID), id)
	}
	if !polltest.Until(10*time.Second, func() bool {
		st, _ := h.reg.Stats(context.Background())
		return st.Totals.Succeeded == 1
	}) {
		t.Fatal("redelivery not counted as delivered")
	}
	if _, _, out := call(t, api, "GET", path, ""); len(out["data"].(map[string]any)["deliveries"].([]any)) != 0 {
		t.Fatalf("dead letters after a successful redelivery: %v", out)
	}
}
