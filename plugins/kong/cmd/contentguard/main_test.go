package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/contentguard/contentguard/plugins/kong"
)

// deployDir is deploy/kong of this repository.
func deployDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "deploy", "kong")
}

// dump is what the plugin server tells Kong with -dump.
type dump struct {
	Protocol   string
	SocketPath string
	Plugins    []struct {
		Name     string
		Phases   []string
		Version  string
		Priority int
		Schema   struct {
			Name   string
			Fields []map[string]struct {
				Type   string
				Fields []map[string]map[string]any
			}
		}
	}
}

// buildAndDump builds the plugin server as Kong runs it (a binary called
// contentguard) and returns its -dump.
func buildAndDump(t *testing.T) dump {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "contentguard")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "-dump", "-kong-prefix", "/usr/local/kong")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("-dump: %v\n%s", err, stderr.String())
	}
	var d dump
	if err := json.Unmarshal(stdout.Bytes(), &d); err != nil {
		t.Fatalf("-dump printed %q, not JSON: %v", stdout.String(), err)
	}
	if len(d.Plugins) != 1 {
		t.Fatalf("-dump: %+v", d)
	}
	return d
}

// schemaFields are the config fields of the dumped schema, with types.
func schemaFields(t *testing.T, d dump) map[string]string {
	t.Helper()
	fields := map[string]string{}
	for _, f := range d.Plugins[0].Schema.Fields {
		cfg, ok := f["config"]
		if !ok || cfg.Type != "record" {
			t.Fatalf("schema field %v is not the config record", f)
		}
		for _, field := range cfg.Fields {
			for name, decl := range field {
				fields[name], _ = decl["type"].(string)
			}
		}
	}
	return fields
}

// TestDump: -dump prints the plugin Kong expects: named after the binary,
// the access and log phases only (no response phase: Kong would buffer
// every response), go-pdk's protocol and the contract's config fields as
// plain strings.
func TestDump(t *testing.T) {
	d := buildAndDump(t)
	p := d.Plugins[0]
	if p.Name != "contentguard" || p.Schema.Name != "contentguard" || d.Protocol != "ProtoBuf:1" ||
		d.SocketPath != "/usr/local/kong/contentguard.socket" {
		t.Errorf("plugin %q schema %q protocol %q socket %q", p.Name, p.Schema.Name, d.Protocol, d.SocketPath)
	}
	if !reflect.DeepEqual(p.Phases, []string{"access", "log"}) {
		t.Errorf("phases %q, want access and log", p.Phases)
	}
	if p.Version != kong.Version || p.Priority != kong.Priority {
		t.Errorf("version %q priority %d", p.Version, p.Priority)
	}
	want := map[string]string{"policy_file": "string", "policy": "string", "upstream": "string", "metrics_address": "string"}
	if got := schemaFields(t, d); !reflect.DeepEqual(got, want) {
		t.Errorf("config fields %v, want %v", got, want)
	}
}

// TestShippedKongConfig: every contentguard plugin in deploy/kong/kong.yml
// has a config Kong accepts under the -dump schema (known fields, right
// types) and that the plugin's own start accepts, with the policy file the
// Dockerfile puts at its path; kong.conf and the Dockerfile start the binary
// this package builds.
func TestShippedKongConfig(t *testing.T) {
	fields := schemaFields(t, buildAndDump(t))
	data, err := os.ReadFile(filepath.Join(deployDir(), "kong.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services []struct {
			Name    string
			Plugins []struct {
				Name   string
				Config map[string]any
			}
		}
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("kong.yml: %v", err)
	}
	node, err := kong.NewNode(kong.NodeOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	found := 0
	for _, svc := range doc.Services {
		for _, plugin := range svc.Plugins {
			if plugin.Name != "contentguard" {
				continue
			}
			found++
			var keys []string
			for k, v := range plugin.Config {
				keys = append(keys, k)
				typ, ok := fields[k]
				if !ok {
					t.Errorf("service %s: config field %q is not in the plugin's schema", svc.Name, k)
					continue
				}
				if _, isString := v.(string); typ != "string" || !isString {
					t.Errorf("service %s: config field %q = %v (%T), schema type %s", svc.Name, k, v, v, typ)
				}
			}
			sort.Strings(keys)
			// The Dockerfile copies deploy/kong/policy.yaml to this path.
			conf := map[string]any{}
			for k, v := range plugin.Config {
				if s, ok := v.(string); ok && strings.HasPrefix(s, "/etc/kong/contentguard/") {
					v = filepath.Join(deployDir(), strings.TrimPrefix(s, "/etc/kong/contentguard/"))
				}
				conf[k] = v
			}
			if addr, ok := conf["metrics_address"].(string); ok && addr != "" {
				conf["metrics_address"] = "127.0.0.1:0" // the shipped port may be taken here
			}
			raw, _ := json.Marshal(conf)
			if err := json.Unmarshal(raw, node.New()); err != nil {
				t.Errorf("service %s: the plugin refuses its config %v: %v", svc.Name, keys, err)
			}
		}
	}
	if found == 0 {
		t.Fatal("kong.yml configures no contentguard plugin")
	}

	conf, err := os.ReadFile(filepath.Join(deployDir(), "kong.conf"))
	if err != nil {
		t.Fatal(err)
	}
	docker, err := os.ReadFile(filepath.Join(deployDir(), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pluginserver_names = contentguard", "pluginserver_contentguard_start_cmd = /usr/local/bin/contentguard",
		"pluginserver_contentguard_query_cmd = /usr/local/bin/contentguard -dump", "plugins = bundled,contentguard"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("kong.conf lacks %q", want)
		}
	}
	for _, want := range []string{"./plugins/kong/cmd/contentguard", "COPY deploy/kong/policy.yaml /etc/kong/contentguard/policy.yaml",
		"KONG_PLUGINSERVER_CONTENTGUARD_QUERY_CMD=\"/usr/local/bin/contentguard -dump\"", "FROM kong:"} {
		if !strings.Contains(string(docker), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}
