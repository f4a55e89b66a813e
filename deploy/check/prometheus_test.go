package check

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/config"
	_ "github.com/prometheus/prometheus/discovery/kubernetes" // kubernetes_sd_configs in kubernetes.yml
	"go.yaml.in/yaml/v3"
)

// promtool runs Debian's promtool in deploy/prometheus.
func promtool(t *testing.T, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is needed (apt-get install prometheus): %v", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = inRepo(t, "deploy/prometheus")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestAlertRules: promtool checks the rules and the compose configuration
// that loads them, and runs the unit tests of every alert.
func TestAlertRules(t *testing.T) {
	promtool(t, "check", "rules", "alerts.yml")
	promtool(t, "test", "rules", "alerts_test.yml")
	promtool(t, "check", "config", "prometheus.yml")
}

// TestEveryAlertIsUnitTested: each alert has a promtool test where it
// fires and one where it stays quiet.
func TestEveryAlertIsUnitTested(t *testing.T) {
	b, err := os.ReadFile(inRepo(t, "deploy/prometheus/alerts_test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests []struct {
			AlertRuleTest []struct {
				AlertName string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range doc.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.AlertName] = true
			} else {
				quiet[a.AlertName] = true
			}
		}
	}
	for _, r := range alertRules(t) {
		if !fires[r.Alert] || !quiet[r.Alert] {
			t.Errorf("alert %s: a test where it fires %v, one where it stays quiet %v", r.Alert, fires[r.Alert], quiet[r.Alert])
		}
	}
}

// TestAlertRulesShownInOperationsDoc: docs/operations.md shows
// deploy/prometheus/alerts.yml as it is, and says what each alert means
// and what to do.
func TestAlertRulesShownInOperationsDoc(t *testing.T) {
	rules, err := os.ReadFile(inRepo(t, "deploy/prometheus/alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(inRepo(t, "docs/operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, append([]byte("```yaml\n"), append(rules, []byte("```\n")...)...)) {
		t.Error("docs/operations.md does not show deploy/prometheus/alerts.yml as it is (copy the file into its yaml block)")
	}
	for _, r := range alertRules(t) {
		if !regexp.MustCompile(`(?m)^- \*\*` + regexp.QuoteMeta(r.Alert) + `\*\* — `).Match(doc) {
			t.Errorf("docs/operations.md: no \"- **%s** — what it means and what to do\" entry", r.Alert)
		}
	}
}

// TestKubernetesScrapeConfig: kubernetes.yml loads with Prometheus's own
// configuration code (Debian's promtool is built without Kubernetes
// discovery), and the relabelling keeps what deploy/k8s names.
func TestKubernetesScrapeConfig(t *testing.T) {
	cfg, err := config.LoadFile(inRepo(t, "deploy/prometheus/kubernetes.yml"), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.ScrapeConfigs) != 1 || len(cfg.RuleFiles) != 1 || !strings.HasSuffix(cfg.RuleFiles[0], "alerts.yml") {
		t.Fatalf("scrape configs %d, rule files %v", len(cfg.ScrapeConfigs), cfg.RuleFiles)
	}
	if len(k8sScrapeKeeps(t)) != 2 {
		t.Fatalf("keeps: %v", k8sScrapeKeeps(t))
	}
}

// k8sScrapeKeeps are kubernetes.yml's keep rules: source label and regex.
func k8sScrapeKeeps(t *testing.T) map[string]*regexp.Regexp {
	t.Helper()
	cfg, err := config.LoadFile(inRepo(t, "deploy/prometheus/kubernetes.yml"), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*regexp.Regexp{}
	for _, rc := range cfg.ScrapeConfigs[0].RelabelConfigs {
		if rc.Action == "keep" {
			out[string(rc.SourceLabels[0])] = regexp.MustCompile("^(?:" + rc.Regex.String() + ")$")
		}
	}
	return out
}
