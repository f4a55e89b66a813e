package policyfile

import (
	"testing"
)

// FuzzParse: any document either decodes to a valid policy or fails with an
// error — never a panic — and an accepted YAML policy decodes identically
// from its JSON rendering (the form the Traefik plugin reads).
func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	f.Add(DefaultYAML())
	f.Add([]byte("apiVersion: contentguard.dev/v1\nkind: EdgePolicy\nspec: {routes: [{name: a, match: {path: /}, auth: none}]}\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("spec:\n  limits: {maxBodyBytes: 99999999999999999999GiB}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("f.yaml", data)
		if err != nil {
			if p != nil {
				t.Fatal("a failed decode returned a policy")
			}
			return
		}
		node, err := ParseYAML(data)
		if err != nil {
			t.Fatalf("parsed once, not twice: %v", err)
		}
		q, err := policyDecodeJSON([]byte(node.JSON()))
		if err != nil {
			t.Fatalf("valid YAML policy rejected as JSON: %v", err)
		}
		q.Hash, q.Source = p.Hash, p.Source
		if describePolicy(p) != describePolicy(q) {
			t.Fatal("YAML and JSON renderings decode differently")
		}
	})
}
