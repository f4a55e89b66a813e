package apigateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/contentguard/contentguard/conformance"
	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/plugins/apigateway"
	"github.com/contentguard/contentguard/policy/policyfile"
)

// newAuthorizer enforces the conformance suite's standard policy.
func newAuthorizer(t *testing.T, logs *bytes.Buffer) *apigateway.Authorizer {
	t.Helper()
	p, err := policyfile.Load(filepath.Join(conformance.Dir(), "policies", "standard.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := edge.New(context.Background(), p, edge.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	var log *slog.Logger
	if logs != nil {
		log = slog.New(slog.NewJSONHandler(logs, nil))
	}
	return apigateway.New(e, log)
}

// event reads a testdata event (as API Gateway sends it) and applies edit
// to its decoded JSON.
func event(t *testing.T, name string, edit func(map[string]any)) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(m)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// headers edits both header maps of a payload 1.0 event, or the one of 2.0.
func headers(m map[string]any, name string, value any) {
	for _, key := range []string{"headers", "multiValueHeaders"} {
		h, ok := m[key].(map[string]any)
		if !ok {
			continue
		}
		for k := range h {
			if strings.EqualFold(k, name) {
				delete(h, k)
			}
		}
		if value == nil {
			continue
		}
		if key == "multiValueHeaders" {
			h[name] = []any{value}
		} else {
			h[name] = value
		}
	}
}

// asJSON is the response as API Gateway reads it: the JSON the Lambda
// runtime sends back.
func asJSON(t *testing.T, resp any) map[string]any {
	t.Helper()
	b, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRESTEventAllowed: a payload 1.0 event (REST API) with a valid API
// key gets an Allow statement on exactly its methodArn, the subject as
// principalId, and the context the backend reads: the request ID the edge
// decided and the forwarded claims — not the client's planted copy.
func TestRESTEventAllowed(t *testing.T) {
	var logs bytes.Buffer
	a := newAuthorizer(t, &logs)
	resp, err := a.Handle(context.Background(), event(t, "rest-request.json", nil))
	if err != nil {
		t.Fatal(err)
	}
	r, ok := resp.(events.APIGatewayCustomAuthorizerResponse)
	if !ok {
		t.Fatalf("response %T", resp)
	}
	st := r.PolicyDocument.Statement
	if r.PolicyDocument.Version != "2012-10-17" || len(st) != 1 || st[0].Effect != "Allow" ||
		strings.Join(st[0].Action, ",") != "execute-api:Invoke" ||
		strings.Join(st[0].Resource, ",") != "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod/POST/api/v1/analyze" {
		t.Fatalf("policy document %+v", r.PolicyDocument)
	}
	if r.PrincipalID != "apikey:batch-importer" {
		t.Fatalf("principalId %q", r.PrincipalID)
	}
	c := asJSON(t, resp)["context"].(map[string]any)
	if c["route"] != "analyze" || c["reason"] != "allowed" || c["status"] != 200.0 || c["authMethod"] != "apiKey" ||
		c["subject"] != "apikey:batch-importer" {
		t.Fatalf("context %v", c)
	}
	id, _ := c["requestId"].(string)
	if len(id) != 36 {
		t.Fatalf("requestId %q: want a fresh UUIDv7 (the client sent none)", id)
	}
	var up map[string]string
	if err := json.Unmarshal([]byte(c["upstreamHeaders"].(string)), &up); err != nil {
		t.Fatal(err)
	}
	if up["X-Request-ID"] != id || up["X-Auth-Subject"] != "batch-importer" || up["X-Auth-Scopes"] != "read write" {
		t.Fatalf("upstreamHeaders %v", up)
	}
	for k, v := range c {
		switch v.(type) {
		case string, float64, bool:
		default:
			t.Errorf("context %s is a %T: API Gateway takes strings, numbers and booleans only", k, v)
		}
	}
	if !strings.Contains(logs.String(), `"reason":"allowed"`) || !strings.Contains(logs.String(), `"client_ip":"198.51.100.7"`) {
		t.Fatalf("decision log: %s", logs.String())
	}
}

// TestHTTPEventAllowed: a payload 2.0 event (HTTP API) — lower-case
// headers, rawPath with the stage — is allowed on its routeArn; the stage
// is not part of the path the policy matched, and the client's request ID
// is kept because the policy trusts it.
func TestHTTPEventAllowed(t *testing.T) {
	a := newAuthorizer(t, nil)
	resp, err := a.Handle(context.Background(), event(t, "http-request.json", nil))
	if err != nil {
		t.Fatal(err)
	}
	r, ok := resp.(events.APIGatewayV2CustomAuthorizerIAMPolicyResponse)
	if !ok {
		t.Fatalf("response %T", resp)
	}
	if st := r.PolicyDocument.Statement; len(st) != 1 || st[0].Effect != "Allow" ||
		st[0].Resource[0] != "arn:aws:execute-api:eu-west-1:123456789012:f6g7h8i9j0/prod/POST/{proxy+}" {
		t.Fatalf("policy document %+v", r.PolicyDocument)
	}
	if r.Context["route"] != "analyze" || r.Context["requestId"] != "client-chosen-id-1" {
		t.Fatalf("context %v", r.Context)
	}
}

// TestRejections: 401 decisions are the error "Unauthorized" (API Gateway's
// 401) in both payloads; every other rejection is a Deny on the resource
// with the status and reason the other planes answer.
func TestRejections(t *testing.T) {
	a := newAuthorizer(t, nil)
	for _, tc := range []struct {
		name, file string
		edit       func(map[string]any)
		status     int
		reason     string
	}{
		{"no credentials 1.0", "rest-request.json", func(m map[string]any) { headers(m, "X-API-Key", nil) }, 401, ""},
		{"bad key 2.0", "http-request.json", func(m map[string]any) { headers(m, "x-api-key", "wrong") }, 401, ""},
		{"reader may not write", "rest-request.json", func(m map[string]any) { headers(m, "X-API-Key", "cg-conformance-read-key") }, 403, "insufficient_scope"},
		{"no route 2.0", "http-request.json", func(m map[string]any) {
			m["rawPath"] = "/prod/elsewhere"
			m["requestContext"].(map[string]any)["http"].(map[string]any)["path"] = "/prod/elsewhere"
		}, 404, "no_route"},
		{"body over the limit", "rest-request.json", func(m map[string]any) { headers(m, "Content-Length", "4096") }, 413, "body_too_large"},
		{"admin without the scope", "http-request.json", func(m map[string]any) {
			m["rawPath"] = "/prod/admin/x"
			headers(m, "x-api-key", nil)
			headers(m, "authorization", "Bearer not-a-jwt")
		}, 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := a.Handle(context.Background(), event(t, tc.file, tc.edit))
			if tc.status == 401 {
				if !errors.Is(err, apigateway.ErrUnauthorized) || err.Error() != "Unauthorized" || resp != nil {
					t.Fatalf("got %v, %v; want the error Unauthorized", resp, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m := asJSON(t, resp)
			st := m["policyDocument"].(map[string]any)["Statement"].([]any)[0].(map[string]any)
			c := m["context"].(map[string]any)
			if st["Effect"] != "Deny" || c["status"] != float64(tc.status) || c["reason"] != tc.reason {
				t.Fatalf("statement %v context %v; want Deny %d %s", st, c, tc.status, tc.reason)
			}
			if _, ok := c["upstreamHeaders"]; ok {
				t.Fatalf("a denied request carries upstream headers: %v", c)
			}
		})
	}
}

// TestNotAnAuthorizerEvent: TOKEN authorizer events, proxy events and
// garbage are errors, never an Allow.
func TestNotAnAuthorizerEvent(t *testing.T) {
	a := newAuthorizer(t, nil)
	for _, ev := range []string{
		`{"type":"TOKEN","authorizationToken":"Bearer x","methodArn":"arn:aws:execute-api:eu-west-1:1:a/prod/GET/"}`,
		`{"httpMethod":"GET","path":"/","requestContext":{}}`,
		`{"type":"REQUEST"}`,
		`[1,2]`,
	} {
		if resp, err := a.Handle(context.Background(), json.RawMessage(ev)); err == nil || errors.Is(err, apigateway.ErrUnauthorized) {
			t.Errorf("%s: %v, %v", ev, resp, err)
		}
	}
}

// FuzzHandle: whatever API Gateway (or anything else) sends, the
// authorizer answers without panicking, and an answer is a policy document
// with one statement, Allow or Deny, on exactly the event's own ARN.
func FuzzHandle(f *testing.F) {
	for _, name := range []string{"rest-request.json", "http-request.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"type":"REQUEST","methodArn":"arn:x","path":"/%2e%2e/admin","httpMethod":"GET"}`))
	f.Add([]byte(`{"version":"2.0","type":"REQUEST","routeArn":"arn:y","rawPath":"//api/v1/x","headers":{"x-api-key":"cg-conformance-rw-key"}}`))
	p, err := policyfile.Load(filepath.Join(conformance.Dir(), "policies", "standard.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	e, err := edge.New(context.Background(), p, edge.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer e.Close()
	a := apigateway.New(e, nil)
	f.Fuzz(func(t *testing.T, event []byte) {
		resp, err := a.Handle(context.Background(), event)
		if err != nil {
			if resp != nil {
				t.Fatalf("an error with a response: %v %v", err, resp)
			}
			return
		}
		var arns struct{ MethodArn, RouteArn string }
		_ = json.Unmarshal(event, &arns)
		m := asJSON(t, resp)
		doc, _ := m["policyDocument"].(map[string]any)
		st, _ := doc["Statement"].([]any)
		if len(st) != 1 {
			t.Fatalf("statements %v", doc)
		}
		s := st[0].(map[string]any)
		res, _ := s["Resource"].([]any)
		if (s["Effect"] != "Allow" && s["Effect"] != "Deny") || len(res) != 1 || (res[0] != arns.MethodArn && res[0] != arns.RouteArn) {
			t.Fatalf("statement %v for an event with ARNs %+v", s, arns)
		}
	})
}
