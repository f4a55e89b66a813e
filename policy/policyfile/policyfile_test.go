package policyfile

import (
	"strings"
	"testing"
)

func TestDefaultPolicyIsValid(t *testing.T) {
	p, err := Default("/tmp")
	if err != nil {
		t.Fatalf("embedded default policy: %v", err)
	}
	if p.Metadata.Name != "contentguard-default" || len(p.Spec.Routes) != 7 {
		t.Fatalf("unexpected default policy: %s", p)
	}
	if p.Spec.Limits.MaxBodyBytes != 1<<20 || p.Spec.Limits.MaxHeaderBytes != 32<<10 {
		t.Fatalf("limits: %+v", p.Spec.Limits)
	}
}

func TestErrorsArePositioned(t *testing.T) {
	doc := `apiVersion: contentguard.dev/v1
kind: EdgePolicy
metadata: {name: x}
spec:
  upstrem: {url: http://x}
  clientIP:
    trustedProxies: [10.0.0.0/33]
  auth:
    jwt:
      providers:
        - name: a
          issuer: https://i
          audiences: [x]
          algorithms: [none]
          jwks: {file: k.json}
  routes:
    - name: r
      match: {path: /x}
      auth: {anyOf: [jwt], scopes: ["read write"]}
      rateLimit: {rate: -1, per: 1m}
    - name: r
      match: {path: /y}
      auth: none
`
	_, err := Parse("p.yaml", []byte(doc))
	if err == nil {
		t.Fatal("expected errors")
	}
	want := []string{
		`p.yaml:5:3: spec.upstrem: unknown key "upstrem"`,
		`p.yaml:7:22: spec.clientIP.trustedProxies[0]: invalid CIDR "10.0.0.0/33"`,
		`p.yaml:14:24: spec.auth.jwt.providers[0].algorithms[0]: algorithm "none" is never allowed`,
		`p.yaml:19:37: spec.routes[0].auth.scopes[0]: invalid scope "read write"`,
		`p.yaml:20:25: spec.routes[0].rateLimit.rate: must be a positive number of requests, got -1`,
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
}
