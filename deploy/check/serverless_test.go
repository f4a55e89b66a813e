package check

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/awslabs/goformation/v7"
	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

const samTemplate = "deploy/aws/template.yaml"

// TestSAMTemplate: the template parses as CloudFormation with the SAM
// types (goformation); each function is the binary built by a Makefile
// target SAM calls, runs a command it has, and sets only variables it
// reads; the HTTP API's default authorizer is the function that runs
// lambda-authorizer, with payload 2.0, IAM policy answers and no caching.
func TestSAMTemplate(t *testing.T) {
	tmpl, err := goformation.Open(inRepo(t, samTemplate))
	if err != nil {
		t.Fatalf("%s: %v", samTemplate, err)
	}
	fns := tmpl.GetAllServerlessFunctionResources()
	if len(fns) != 2 {
		t.Fatalf("functions: %v", fns)
	}
	handlers := map[string]string{}
	for id, fn := range fns {
		if fn.Handler == nil || !commands(t)[strings.Fields(*fn.Handler)[0]] {
			t.Errorf("%s: Handler %v is not a contentguard command (a bare bootstrap runs the command _HANDLER names)", id, fn.Handler)
			continue
		}
		handlers[id] = *fn.Handler
		if fn.Runtime == nil || *fn.Runtime != "provided.al2023" {
			t.Errorf("%s: runtime %v: the binary is a custom runtime's bootstrap", id, fn.Runtime)
		}
		if fn.Environment != nil {
			for k := range fn.Environment.Variables {
				if _, ok := envVars(t)[k]; !ok {
					t.Errorf("%s: %s: contentguard reads no such variable", id, k)
				}
			}
		}
		if fn.AWSCloudFormationMetadata["BuildMethod"] != "makefile" || fn.CodeUri == nil || fn.CodeUri.String == nil ||
			filepath.Clean(filepath.Join(inRepo(t, "deploy/aws"), *fn.CodeUri.String)) != repoRoot(t) {
			t.Errorf("%s: want BuildMethod makefile with CodeUri the repository root", id)
			continue
		}
		// The target SAM runs: a static linux/arm64 bootstrap of
		// ./cmd/contentguard, and the files it copies exist.
		artifacts := t.TempDir()
		cmd := exec.Command("make", "-n", "build-"+id, "ARTIFACTS_DIR="+artifacts)
		cmd.Dir = repoRoot(t)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s: make -n build-%s: %v\n%s", id, id, err, out)
			continue
		}
		script := string(out)
		for _, want := range []string{"GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0", "-tags lambda.norpc", "-o " + artifacts + "/bootstrap", "./cmd/contentguard"} {
			if !strings.Contains(script, want) {
				t.Errorf("%s: make build-%s lacks %q:\n%s", id, id, want, script)
			}
		}
		for _, line := range strings.Split(script, "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "cp" {
				if _, err := os.Stat(filepath.Join(repoRoot(t), f[1])); err != nil {
					t.Errorf("%s: make build-%s copies %s: %v", id, id, f[1], err)
				}
			}
		}
	}
	// The authorizer wiring, read from the YAML itself (intrinsics kept).
	b, err := os.ReadFile(inRepo(t, samTemplate))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	auth := find(&doc, "Resources", "Api", "Properties", "Auth")
	def := find(auth, "DefaultAuthorizer")
	if def == nil {
		t.Fatal("the HTTP API has no DefaultAuthorizer")
	}
	a := find(auth, "Authorizers", def.Value)
	// The long form of the intrinsic functions: the repository's YAML has
	// no tags (policy/yamlnode's TestRepositoryDocuments reads it all).
	arn := find(a, "FunctionArn", "Fn::GetAtt")
	if arn == nil || arn.Kind != yaml.SequenceNode || len(arn.Content) != 2 || arn.Content[1].Value != "Arn" {
		t.Fatalf("authorizer %s: FunctionArn: want {Fn::GetAtt: [Function, Arn]}, have %v", def.Value, arn)
	}
	fn := arn.Content[0].Value
	if handlers[fn] != "lambda-authorizer" {
		t.Errorf("the default authorizer is function %s, which runs %q", fn, handlers[fn])
	}
	if v := find(a, "AuthorizerPayloadFormatVersion"); v == nil || v.Value != "2.0" {
		t.Errorf("AuthorizerPayloadFormatVersion %v: the authorizer reads 2.0 (and 1.0) events", v)
	}
	if v := find(a, "EnableSimpleResponses"); v == nil || v.Value != "false" {
		t.Errorf("EnableSimpleResponses %v: the authorizer answers with IAM policy documents", v)
	}
	if v := find(a, "Identity", "ReauthorizeEvery"); v == nil || v.Value != "0" {
		t.Errorf("ReauthorizeEvery %v: a cached Allow would skip the rate limits", v)
	}
	// The authorizer, as packaged (the policy beside the binary, the
	// template's variables), allows the demo key on a real payload 2.0
	// event and refuses a request without one.
	pkg := t.TempDir()
	policy, err := os.ReadFile(inRepo(t, "deploy/aws/policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pkg, "policy.yaml"), policy, 0o644); err != nil {
		t.Fatal(err)
	}
	ev, err := os.ReadFile(inRepo(t, "plugins/apigateway/testdata/http-request.json"))
	if err != nil {
		t.Fatal(err)
	}
	vars := fns[fn].Environment.Variables
	for _, tc := range []struct{ event, want string }{
		{strings.Replace(string(ev), "cg-conformance-rw-key", "demo-api-key", 1), `"Effect": "Allow"`},
		{strings.Replace(string(ev), "cg-conformance-rw-key", "wrong", 1), `"errorMessage": "Unauthorized"`},
	} {
		evPath := filepath.Join(pkg, "event.json")
		if err := os.WriteFile(evPath, []byte(tc.event), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(binary(t), handlers[fn], "--event", evPath)
		cmd.Dir = pkg
		cmd.Env = cleanEnv()
		for k, v := range vars {
			if k == "LOG_LEVEL" {
				v = "info" // a parameter's default
			}
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		out, err := cmd.Output()
		if err != nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("the packaged authorizer: %v\n%s; want %s", err, out, tc.want)
		}
	}
}

// TestAzureFunctions: host.json starts the binary as a custom handler
// with a command it has; the Functions host forwards every path and
// method the backend serves to it unchanged (routePrefix "", a catch-all
// route); and run as the host runs it, with FUNCTIONS_CUSTOMHANDLER_PORT,
// it answers there.
func TestAzureFunctions(t *testing.T) {
	var host struct {
		Version       string         `json:"version"`
		Logging       map[string]any `json:"logging"`
		Bundle        map[string]any `json:"extensionBundle"`
		CustomHandler struct {
			Description struct {
				DefaultExecutablePath string   `json:"defaultExecutablePath"`
				Arguments             []string `json:"arguments"`
			} `json:"description"`
			EnableForwardingHTTPRequest bool `json:"enableForwardingHttpRequest"`
		} `json:"customHandler"`
		Extensions struct {
			HTTP struct {
				RoutePrefix *string `json:"routePrefix"`
			} `json:"http"`
		} `json:"extensions"`
	}
	strictJSON(t, "deploy/azure-functions/host.json", &host)
	var fn struct {
		Bindings []struct {
			Type      string   `json:"type"`
			Direction string   `json:"direction"`
			Name      string   `json:"name"`
			AuthLevel string   `json:"authLevel"`
			Methods   []string `json:"methods"`
			Route     string   `json:"route"`
		} `json:"bindings"`
	}
	strictJSON(t, "deploy/azure-functions/api/function.json", &fn)
	d := host.CustomHandler.Description
	if host.Version != "2.0" || d.DefaultExecutablePath != "contentguard" || !host.CustomHandler.EnableForwardingHTTPRequest {
		t.Fatalf("host.json: %+v", host)
	}
	if p := host.Extensions.HTTP.RoutePrefix; p == nil || *p != "" {
		t.Errorf("routePrefix %v: the backend's paths have no /api prefix of Azure's", p)
	}
	trigger := fn.Bindings[0]
	if trigger.Type != "httpTrigger" || trigger.Route != "{*path}" || trigger.AuthLevel != "anonymous" {
		t.Errorf("function.json trigger %+v: want an anonymous catch-all (the edge authenticates)", trigger)
	}
	methods := strings.Join(trigger.Methods, ",")
	for _, m := range []string{"get", "post", "delete"} {
		if !strings.Contains(methods, m) {
			t.Errorf("function.json forwards %s, not %s, which the backend serves", methods, m)
		}
	}
	// As the host runs it: the executable in the app's folder, the
	// arguments of host.json, its port in FUNCTIONS_CUSTOMHANDLER_PORT.
	role, set := parseArgs(t, "host.json arguments", d.Arguments)
	port := portOf(freeAddr(t))
	env := map[string]string{"FUNCTIONS_CUSTOMHANDLER_PORT": strconv.Itoa(port)}
	addr := listenFlags(t, role, set, func(k string) string { return env[k] })["listen"]
	if addr != "127.0.0.1:"+strconv.Itoa(port) {
		t.Fatalf("the backend would listen on %s, not where the Functions host forwards (127.0.0.1:%d)", addr, port)
	}
	cmd := exec.Command(binary(t), d.Arguments...)
	cmd.Env = append(cleanEnv(), "FUNCTIONS_CUSTOMHANDLER_PORT="+strconv.Itoa(port))
	runAndAsk(t, cmd, "http://"+addr)
}

// TestCloudRun: service.yaml decodes strictly (its container is a
// k8s.io/api Container); run as Cloud Run runs it (PORT = the container
// port), the backend answers its probes there, and its shutdown fits in
// Cloud Run's ten seconds.
func TestCloudRun(t *testing.T) {
	b, err := os.ReadFile(inRepo(t, "deploy/cloudrun/service.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var svc struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   metav1.ObjectMeta `json:"metadata"`
		Spec       struct {
			Template struct {
				Metadata metav1.ObjectMeta `json:"metadata"`
				Spec     struct {
					ContainerConcurrency int                `json:"containerConcurrency"`
					TimeoutSeconds       int                `json:"timeoutSeconds"`
					Containers           []corev1.Container `json:"containers"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	if err := sigsyaml.UnmarshalStrict(b, &svc); err != nil {
		t.Fatal(err)
	}
	if svc.APIVersion != "serving.knative.dev/v1" || svc.Kind != "Service" || len(svc.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("service.yaml: %s %s", svc.APIVersion, svc.Kind)
	}
	c := svc.Spec.Template.Spec.Containers[0]
	if len(c.Ports) != 1 {
		t.Fatalf("ports %v: Cloud Run routes to one", c.Ports)
	}
	role, set := parseArgs(t, "service.yaml", c.Args)
	if d, err := time.ParseDuration(set["shutdown-timeout"]); role != "backend" || err != nil || d >= 10*time.Second {
		t.Errorf("args %v: want the backend with a --shutdown-timeout under Cloud Run's 10s", c.Args)
	}
	env := map[string]string{}
	for k, v := range rootImage(t).Env {
		env[k] = v
	}
	for _, e := range c.Env {
		if _, ok := envVars(t)[e.Name]; !ok {
			t.Errorf("service.yaml: %s: contentguard reads no such variable", e.Name)
		}
		env[e.Name] = e.Value
	}
	env["PORT"] = strconv.Itoa(int(c.Ports[0].ContainerPort)) // Cloud Run's contract
	pl := newPlace(t)
	p := startContentguard(t, pl, "cloudrun", c.Args, env, nil)
	for _, probe := range []*corev1.Probe{c.StartupProbe, c.LivenessProbe} {
		if probe == nil || probe.HTTPGet == nil {
			t.Fatalf("probes %v", probe)
		}
		real, ok := p.ports[probe.HTTPGet.Port.IntValue()]
		if !ok {
			t.Fatalf("a probe asks port %s, where the backend does not listen", probe.HTTPGet.Port.String())
		}
		waitHTTP(t, "probe", "http://"+real+probe.HTTPGet.Path)
	}
}

func strictJSON(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(inRepo(t, path))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// runAndAsk starts cmd and wants base/health and an analysis to answer.
func runAndAsk(t *testing.T, cmd *exec.Cmd, base string) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitHTTP(t, "health", base+"/health")
	resp, err := http.Post(base+"/api/v1/analyze", "application/json", strings.NewReader(`{"content":"a b a"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("analyze: %d", resp.StatusCode)
	}
}
