package policy

import "testing"

// FuzzDecodeJSON: arbitrary JSON never panics the decoder, and every error
// it reports is positioned inside the document.
func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"contentguard.dev/v1","kind":"EdgePolicy","spec":{"routes":[{"name":"a","match":{"path":"/"},"auth":"none"}]}}`))
	f.Add([]byte(`{"spec":{"routes":[{"name":1}]}}`))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[`))
	f.Add([]byte(`{"a":1}{"b":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := DecodeJSON(data, "f.json")
		if err == nil {
			if p == nil || len(p.Spec.Routes) == 0 {
				t.Fatal("accepted a policy without routes")
			}
			return
		}
		es, ok := err.(Errors)
		if !ok || len(es) == 0 {
			t.Fatalf("error is not a positioned list: %T %v", err, err)
		}
		lines := 1
		for _, c := range data {
			if c == '\n' {
				lines++
			}
		}
		for _, e := range es {
			if e.Line > lines {
				t.Fatalf("error at line %d of a %d-line document: %v", e.Line, lines, e)
			}
		}
	})
}
