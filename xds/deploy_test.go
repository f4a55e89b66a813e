package xds

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	bootstrap "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"go.yaml.in/yaml/v3"

	"github.com/contentguard/contentguard/policy/policyfile"
)

// deployDir is deploy/envoy of this repository.
const deployDir = "../deploy/envoy"

// TestDeployEnvoy checks what deploy/envoy ships:
//
//   - envoy-sidecar.yaml and envoy-static.yaml are Envoy bootstraps: they
//     decode with Envoy's protos (unknown fields are errors) and pass
//     ValidateAll, every packed message included;
//   - envoy-static.yaml is what `contentguard policy envoy --policy
//     deploy/envoy/policy.yaml` prints today (regenerate it when it is not);
//   - pod.yaml (one v1 List) carries policy.yaml and envoy-sidecar.yaml verbatim, and its
//     addresses agree: the control plane's port and the sidecar's --xds,
//     the ext_authz address Envoy is given and the sidecar's --ext-authz,
//     Envoy's listener and the container port, the policy's upstream and
//     the backend's --listen.
func TestDeployEnvoy(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(deployDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, name := range []string{"envoy-sidecar.yaml", "envoy-static.yaml"} {
		b := &bootstrap.Bootstrap{}
		if err := DecodeYAML(read(name), b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := Validate(b); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	p, err := policyfile.Load(filepath.Join(deployDir, "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := Static(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	shipped := &bootstrap.Bootstrap{}
	if err := DecodeYAML(read("envoy-static.yaml"), shipped); err != nil {
		t.Fatal(err)
	}
	if !sameJSON(t, shipped, want) {
		t.Error("envoy-static.yaml is not what `contentguard policy envoy --policy deploy/envoy/policy.yaml > deploy/envoy/envoy-static.yaml` prints")
	}

	var list struct {
		Kind  string           `yaml:"kind"`
		Items []map[string]any `yaml:"items"`
	}
	if err := yaml.Unmarshal(read("pod.yaml"), &list); err != nil || list.Kind != "List" {
		t.Fatalf("pod.yaml is not one v1 List: %v", err)
	}
	docs := map[string]map[string]any{}
	for _, d := range list.Items {
		md := d["metadata"].(map[string]any)
		docs[d["kind"].(string)+"/"+md["name"].(string)] = d
	}
	data := func(key, field string) string {
		return docs[key]["data"].(map[string]any)[field].(string)
	}
	if data("ConfigMap/contentguard-policies", "content-api.yaml") != string(read("policy.yaml")) {
		t.Error("pod.yaml's policy ConfigMap is not deploy/envoy/policy.yaml")
	}
	if data("ConfigMap/envoy-bootstrap", "envoy.yaml") != string(read("envoy-sidecar.yaml")) {
		t.Error("pod.yaml's bootstrap ConfigMap is not deploy/envoy/envoy-sidecar.yaml")
	}
	containers := func(key string) map[string][]string {
		d := docs[key]
		spec := d["spec"].(map[string]any)
		if tpl, ok := spec["template"]; ok {
			spec = tpl.(map[string]any)["spec"].(map[string]any)
		}
		out := map[string][]string{}
		for _, c := range spec["containers"].([]any) {
			cm := c.(map[string]any)
			var args []string
			for _, a := range cm["args"].([]any) {
				args = append(args, a.(string))
			}
			out[cm["name"].(string)] = args
		}
		return out
	}
	flag := func(args []string, name string) string {
		i := slices.Index(args, name)
		if i < 0 || i+1 >= len(args) {
			t.Fatalf("%v has no %s", args, name)
		}
		return args[i+1]
	}
	cp := containers("Deployment/contentguard-xds")["xds"]
	pod := containers("Pod/content-api")
	_, cpPort, _ := net.SplitHostPort(flag(cp, "--listen"))
	if _, port, _ := net.SplitHostPort(flag(pod["sidecar"], "--xds")); port != cpPort {
		t.Errorf("the sidecar asks the control plane on port %s, it listens on %s", port, cpPort)
	}
	if a, b := flag(cp, "--ext-authz-addr"), flag(pod["sidecar"], "--ext-authz"); a != b {
		t.Errorf("Envoy is sent to ext_authz at %s, the sidecar serves it on %s", a, b)
	}
	if !strings.HasSuffix(p.Spec.Upstream.URL, flag(pod["backend"], "--listen")) {
		t.Errorf("the policy's upstream %s is not the backend's --listen %s", p.Spec.Upstream.URL, flag(pod["backend"], "--listen"))
	}
	if !strings.Contains(string(read("pod.yaml")), "containerPort: 10000") || !strings.HasSuffix(DefaultListenAddress, ":10000") {
		t.Error("Envoy's listener port and the pod's container port differ")
	}
	boot := &bootstrap.Bootstrap{}
	if err := DecodeYAML(read("envoy-sidecar.yaml"), boot); err != nil {
		t.Fatal(err)
	}
	sock := boot.GetStaticResources().GetClusters()[0].GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
	if xdsHost, _, _ := net.SplitHostPort(flag(pod["sidecar"], "--xds")); sock.GetAddress() != xdsHost || strconv.Itoa(int(sock.GetPortValue())) != cpPort {
		t.Errorf("Envoy asks the control plane at %s:%d, the sidecar at %s", sock.GetAddress(), sock.GetPortValue(), flag(pod["sidecar"], "--xds"))
	}
}
