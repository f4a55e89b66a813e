package check

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/config"
	_ "github.com/prometheus/prometheus/discovery/kubernetes" // kubernetes_sd_configs in kubernetes.yml
	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	sigsyaml "sigs.k8s.io/yaml"
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

// TestKubernetesScrapesEnvoyControlPlane: the Prometheus of kubernetes.yml
// scrapes the control plane of deploy/envoy/pod.yaml (contentguard xds) on
// the admin listener its --admin flag opens, as job xds — the job the
// alerts and the System Health dashboard name.
func TestKubernetesScrapesEnvoyControlPlane(t *testing.T) {
	b, err := os.ReadFile(inRepo(t, "deploy/envoy/pod.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Items []yaml.Node `yaml:"items"`
	}
	if err := yaml.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	var d *appsv1.Deployment
	for _, item := range list.Items {
		var meta struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		}
		if err := item.Decode(&meta); err != nil {
			t.Fatal(err)
		}
		if meta.Kind != "Deployment" || meta.Metadata.Name != "contentguard-xds" {
			continue
		}
		raw, err := yaml.Marshal(&item)
		if err != nil {
			t.Fatal(err)
		}
		d = &appsv1.Deployment{}
		if err := sigsyaml.UnmarshalStrict(raw, d); err != nil {
			t.Fatalf("Deployment/contentguard-xds: %v", err)
		}
	}
	if d == nil {
		t.Fatal("deploy/envoy/pod.yaml has no Deployment/contentguard-xds")
	}
	keeps := k8sScrapeKeeps(t)
	if v := d.Spec.Template.Labels["app.kubernetes.io/part-of"]; !keeps["__meta_kubernetes_pod_label_app_kubernetes_io_part_of"].MatchString(v) {
		t.Errorf("the control plane's pods are labelled app.kubernetes.io/part-of=%q: kubernetes.yml does not keep them", v)
	}
	scraped := false
	for _, c := range d.Spec.Template.Spec.Containers {
		role, set := parseArgs(t, "Deployment/contentguard-xds container "+c.Name, c.Args)
		if role != "xds" {
			continue
		}
		if c.Name != "xds" {
			t.Errorf("container %s: Prometheus names the job after the container; the alerts and dashboards expect xds", c.Name)
		}
		admin := set["admin"]
		if admin == "" {
			admin = flags(t, "xds")["admin"].Default
		}
		host, _, _ := net.SplitHostPort(admin)
		for _, p := range c.Ports {
			if !keeps["__meta_kubernetes_pod_container_port_name"].MatchString(p.Name) {
				continue
			}
			if int(p.ContainerPort) != portOf(admin) {
				t.Errorf("port %s (%d) is scraped, the admin API (/metrics) is on %s", p.Name, p.ContainerPort, admin)
			}
			if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
				t.Errorf("port %s is scraped, but --admin %s listens on loopback", p.Name, admin)
			}
			scraped = true
		}
	}
	if !scraped {
		t.Error("no port of the control plane is scraped")
	}
}
