package xds

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

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
			for _, m := range msgs {
				if err := Validate(m); err != nil {
					t.Errorf("%s %s: %v", name, flavor, err)
				}
			}
			path := filepath.Join("testdata", "golden", name+"."+flavor+".json")
			if *update {
				doc, err := goldenJSON(msgs)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, doc, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./xds -run Golden -update)", err)
			}
			want, err := readGolden(data)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if len(want) != len(msgs) {
				t.Fatalf("%s holds %d messages, the policy makes %d", path, len(want), len(msgs))
			}
			for i, got := range msgs {
				if !sameJSON(t, want[i], got) {
					t.Errorf("%s message %d (%s) differs from what the policy makes now (run with -update and review the diff)",
						path, i, got.ProtoReflect().Descriptor().FullName())
				}
			}
		}
	}
}

// goldenJSON writes messages as a JSON array of Any, each with its type:
// readable, and read back with the Envoy protos.
func goldenJSON(msgs []proto.Message) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("[\n")
	for i, m := range msgs {
		a := &anypb.Any{}
		if err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true}); err != nil {
			return nil, err
		}
		js, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true}.Marshal(a)
		if err != nil {
			return nil, err
		}
		// protojson varies its spacing on purpose; the file need not.
		var v any
		if err := json.Unmarshal(js, &v); err != nil {
			return nil, err
		}
		if js, err = json.MarshalIndent(v, "", "  "); err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteString(",\n")
		}
		b.Write(js)
	}
	b.WriteString("\n]\n")
	return b.Bytes(), nil
}

func readGolden(data []byte) ([]proto.Message, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	out := make([]proto.Message, 0, len(raw))
	for _, r := range raw {
		a := &anypb.Any{}
		if err := protojson.Unmarshal(r, a); err != nil {
			return nil, err
		}
		m, err := a.UnmarshalNew()
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
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
