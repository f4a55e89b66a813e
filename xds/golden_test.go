package xds

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/contentguard/contentguard/conformance"
	"github.com/contentguard/contentguard/policy/policyfile"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// TestGolden: the resources generated for the conformance policies are
// what testdata/golden holds (go test ./xds -run Golden -update rewrites
// them; review the diff). Each golden file is read back with the Envoy
// protos and compared as messages, and every message in it, packed ones
// included, passes ValidateAll.
func TestGolden(t *testing.T) {
	for _, name := range []string{"standard", "breaker", "wire"} {
		p, err := policyfile.Load(filepath.Join(conformance.Dir(), "policies", name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		envoy, err := Envoy(p, Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		grpcRes, err := GRPC(p, p.Metadata.Name, Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		static, err := Static(p, Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for flavor, msgs := range map[string][]proto.Message{
			"envoy":  envoy.Messages(),
			"grpc":   grpcRes.Messages(),
			"static": {static},
		} {
			var doc bytes.Buffer
			for _, m := range msgs {
				if err := Validate(m); err != nil {
					t.Errorf("%s %s: %v", name, flavor, err)
				}
				y, err := YAML(m)
				if err != nil {
					t.Fatal(err)
				}
				doc.WriteString("--- # " + string(m.ProtoReflect().Descriptor().FullName()) + "\n")
				doc.Write(y)
			}
			path := filepath.Join("testdata", "golden", name+"."+flavor+".yaml")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, doc.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./xds -run Golden -update)", err)
			}
			parts := strings.Split(string(want), "--- # ")[1:]
			if len(parts) != len(msgs) {
				t.Fatalf("%s holds %d messages, the policy makes %d", path, len(parts), len(msgs))
			}
			for i, part := range parts {
				typeName, body, _ := strings.Cut(part, "\n")
				got := msgs[i]
				if typeName != string(got.ProtoReflect().Descriptor().FullName()) {
					t.Errorf("%s message %d is a %s, want %s", path, i, typeName, got.ProtoReflect().Descriptor().FullName())
					continue
				}
				m := got.ProtoReflect().New().Interface()
				if err := DecodeYAML([]byte(body), m); err != nil {
					t.Fatalf("%s message %d: %v", path, i, err)
				}
				if !sameJSON(t, m, got) {
					t.Errorf("%s message %d (%s) differs from what the policy makes now (run with -update and review the diff)", path, i, typeName)
				}
			}
		}
	}
}

// sameJSON compares two messages by their JSON, in which packed messages
// are unpacked: the bytes of an Any with a map inside depend on the order
// it was marshalled in.
func sameJSON(t testing.TB, a, b proto.Message) bool {
	t.Helper()
	var va, vb any
	for _, x := range []struct {
		m proto.Message
		v *any
	}{{a, &va}, {b, &vb}} {
		js, err := protojson.Marshal(x.m)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(js, x.v); err != nil {
			t.Fatal(err)
		}
	}
	return reflect.DeepEqual(va, vb)
}

// TestSnapshotVersionIsStable: the same policy gives the same versions,
// however often it is built (maps inside packed messages are marshalled
// in key order), so a reload that changes nothing pushes nothing.
func TestSnapshotVersionIsStable(t *testing.T) {
	p, err := policyfile.Load(filepath.Join(conformance.Dir(), "policies", "standard.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{opts: ServerOptions{}}
	e := &Entry{Policy: p, Document: []byte("doc")}
	first := ""
	for i := 0; i < 20; i++ {
		snap, err := s.build(e, FlavorEnvoy)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = snap.Version()
		} else if snap.Version() != first {
			t.Fatalf("build %d: version %s, first was %s", i, snap.Version(), first)
		}
	}
}
