package check

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// checkedBy names, for each file pattern under deploy/, the test that
// would fail if the file named a port, path, metric, variable or flag the
// code does not have. A new file needs a test before it has a line here.
var checkedBy = map[string]string{
	"deploy/compose/compose.yaml":              "TestComposeFile, TestComposeStack",
	"deploy/compose/policy.yaml":               "TestComposeStack (the sidecars load it)",
	"deploy/compose/nginx/default.conf":        "TestComposeStack (NGINX runs it)",
	"deploy/compose/nginx/contentguard/*.conf": "TestComposeNGINXSnippets, TestComposeStack",
	"deploy/prometheus/prometheus.yml":         "TestAlertRules, TestComposeStack",
	"deploy/prometheus/alerts.yml":             "TestAlertRules, TestComposeStack",
	"deploy/prometheus/alerts_test.yml":        "TestAlertRules, TestEveryAlertIsUnitTested",
	"deploy/prometheus/kubernetes.yml":         "TestKubernetesScrapeConfig, TestKubernetesOverlays",
	"deploy/grafana/dashboards/*.json":         "TestDashboards, TestComposeStack",
	"deploy/grafana/provisioning/*/*.yml":      "TestGrafanaProvisioning",
	"deploy/k8s/base/*.yaml":                   "TestKubernetesOverlays",
	"deploy/k8s/base/keys/.gitignore":          "TestKubernetesOverlays (keys made by token keygen)",
	"deploy/k8s/overlays/*/*.yaml":             "TestKubernetesOverlays",
	"deploy/aws/*.yaml":                        "TestSAMTemplate",
	"deploy/azure-functions/host.json":         "TestAzureFunctions",
	"deploy/azure-functions/*/function.json":   "TestAzureFunctions",
	"deploy/cloudrun/service.yaml":             "TestCloudRun",
	"deploy/check/*":                           "these tests",
	"deploy/kong/*":                            "plugins/kong/cmd/contentguard (the deploy/kong tests) and TestComposeFile",
	"deploy/nginx/*":                           "sidecar/authz (TestShippedExampleConfigIsValid) and TestComposeStack",
	"deploy/nginx/contentguard/*":              "sidecar/authz (TestGeneratedSnippetsPassNginxT) and TestComposeStack",
	"deploy/envoy/*":                           "xds (TestDeployEnvoy)",
	"deploy/traefik/*":                         "internal/traefikload (TestDeployStaticConfig, TestDeployDynamicConfig, TestDocsInstallSteps) and TestComposeFile",
}

// TestEveryDeployFileIsChecked: every file under deploy/ that git tracks
// has a test.
func TestEveryDeployFileIsChecked(t *testing.T) {
	cmd := exec.Command("git", "ls-files", "--cached", "--others", "--exclude-standard", "deploy")
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files deploy: %v", err)
	}
	for _, f := range strings.Fields(string(out)) {
		found := false
		for pattern := range checkedBy {
			if ok, _ := path.Match(pattern, f); ok {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no test checks it (add one, then a line to checkedBy)", f)
		}
	}
	// A test named here is one the repository has: a renamed or deleted
	// test leaves its files unchecked.
	for pattern, tests := range checkedBy {
		for _, name := range testName.FindAllString(tests, -1) {
			cmd := exec.Command("git", "grep", "-q", "-E", `^func `+name+`\(t \*testing\.T\)`, "--", "*_test.go")
			cmd.Dir = repoRoot(t)
			if err := cmd.Run(); err != nil {
				t.Errorf("%s: checked by %s, which no _test.go file defines", pattern, name)
			}
		}
	}
}

var testName = regexp.MustCompile(`\bTest[A-Z]\w*`)

// TestComposeNGINXSnippets: the NGINX snippets of the compose profile are
// what `contentguard policy nginx` makes of the compose policy today.
func TestComposeNGINXSnippets(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command(binary(t), "policy", "nginx", "--policy", inRepo(t, "deploy/compose/policy.yaml"), "--out", dir).CombinedOutput(); err != nil {
		t.Fatalf("policy nginx: %v\n%s", err, out)
	}
	made, _ := filepath.Glob(filepath.Join(dir, "*"))
	shipped, _ := filepath.Glob(inRepo(t, "deploy/compose/nginx/contentguard/*"))
	if len(made) == 0 || len(made) != len(shipped) {
		t.Fatalf("generated %d files, shipped %d", len(made), len(shipped))
	}
	for _, f := range made {
		want, _ := os.ReadFile(f)
		got, err := os.ReadFile(inRepo(t, "deploy/compose/nginx/contentguard/"+filepath.Base(f)))
		if err != nil || string(got) != string(want) {
			t.Errorf("deploy/compose/nginx/contentguard/%s is stale: run contentguard policy nginx --policy deploy/compose/policy.yaml --out deploy/compose/nginx/contentguard", filepath.Base(f))
		}
	}
}
