package yamlnode_test

import (
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/contentguard/contentguard/internal/yaegitest"
	"github.com/contentguard/contentguard/policy/policyfile"
	"github.com/contentguard/contentguard/policy/yamlnode"
)

// BenchmarkParse reads the default policy with yamlnode and, side by side,
// with yaml/v3 (into a yaml.Node, the part of the old front-end that
// yamlnode replaces), compiled; and with yamlnode interpreted by Yaegi, as
// the Traefik plugin reads its policy.
//
//	go test -run '^$' -bench Parse -benchmem ./policy/yamlnode
func BenchmarkParse(b *testing.B) {
	doc := policyfile.DefaultYAML()
	b.Run("yamlnode", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := yamlnode.Parse(doc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("yaml.v3", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		b.ReportAllocs()
		for b.Loop() {
			var n yaml.Node
			if err := yaml.Unmarshal(doc, &n); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("yamlnode-yaegi", func(b *testing.B) {
		i := yaegitest.New(b,
			yaegitest.Package(module+"/policy", ".."),
			yaegitest.Package(module+"/policy/yamlnode", "."),
			yaegitest.Package(module+"/policy/yamlnode/internal/yamlprobe", filepath.Join("internal", "yamlprobe")))
		yaegitest.Eval(b, i, `import "`+module+`/policy/yamlnode"`)
		yaegitest.Eval(b, i, `func parse(doc []byte) string { _, err := yamlnode.Parse(doc); if err != nil { return err.Error() }; return "" }`)
		parse := yaegitest.Eval(b, i, "parse").Interface().(func([]byte) string)
		b.SetBytes(int64(len(doc)))
		b.ResetTimer()
		for b.Loop() {
			if msg := parse(doc); msg != "" {
				b.Fatal(msg)
			}
		}
	})
}
