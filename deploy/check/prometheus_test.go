package check

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/config"
	_ "github.com/prometheus/prometheus/discovery/kubernetes" // kubernetes_sd_configs in kubernetes.yml
	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// TestKubernetesScrapesEnvoyPods: the Prometheus of kubernetes.yml scrapes
// what deploy/envoy/pod.yaml runs — the control plane (contentguard xds,
// job xds) and the sidecar beside Envoy (job sidecar: xds_connected and
// the edge's metrics) — on the admin listener each one's --admin opens, on
// the pod's address; and a NetworkPolicy admits only Prometheus to those
// ports and admits nothing undeclared. Every item decodes strictly into
// the Kubernetes API types.
func TestKubernetesScrapesEnvoyPods(t *testing.T) {
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
	type workload struct {
		name, namespace string
		meta            metav1.ObjectMeta // of its pods
		spec            corev1.PodSpec
	}
	workloads := map[string]workload{}
	var netpols []networkingv1.NetworkPolicy
	for _, item := range list.Items {
		var head struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		}
		if err := item.Decode(&head); err != nil {
			t.Fatal(err)
		}
		raw, err := yaml.Marshal(&item)
		if err != nil {
			t.Fatal(err)
		}
		name := head.Kind + "/" + head.Metadata.Name
		decode := func(v any) {
			if err := sigsyaml.UnmarshalStrict(raw, v); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		switch head.Kind {
		case "Deployment":
			var d appsv1.Deployment
			decode(&d)
			workloads[name] = workload{name, d.Namespace, d.Spec.Template.ObjectMeta, d.Spec.Template.Spec}
		case "Pod":
			var p corev1.Pod
			decode(&p)
			workloads[name] = workload{name, p.Namespace, p.ObjectMeta, p.Spec}
		case "NetworkPolicy":
			var np networkingv1.NetworkPolicy
			decode(&np)
			netpols = append(netpols, np)
		}
	}
	keeps := k8sScrapeKeeps(t)
	prometheus := map[string]string{"app.kubernetes.io/name": "prometheus"}
	for _, want := range []struct{ workload, role, job string }{
		{"Deployment/contentguard-xds", "xds", "xds"},
		{"Pod/content-api", "sidecar", "sidecar"},
	} {
		w, ok := workloads[want.workload]
		if !ok {
			t.Errorf("deploy/envoy/pod.yaml has no %s", want.workload)
			continue
		}
		if v := w.meta.Labels["app.kubernetes.io/part-of"]; !keeps["__meta_kubernetes_pod_label_app_kubernetes_io_part_of"].MatchString(v) {
			t.Errorf("%s is labelled app.kubernetes.io/part-of=%q: kubernetes.yml does not keep it", w.name, v)
		}
		// The ports Prometheus scrapes, and the ports the policies admit
		// from Prometheus only.
		scraped := map[string]bool{}
		for _, c := range w.spec.Containers {
			if !isContentguard(t, c) {
				continue // Envoy
			}
			role, set := parseArgs(t, w.name+" container "+c.Name, c.Args)
			if role != want.role {
				continue
			}
			if c.Name != want.job {
				t.Errorf("%s container %s: Prometheus names the job after the container; the alerts and dashboards expect %s", w.name, c.Name, want.job)
			}
			admin := set["admin"]
			if admin == "" {
				admin = flags(t, role)["admin"].Default
			}
			host, _, _ := net.SplitHostPort(admin)
			for _, p := range c.Ports {
				if !keeps["__meta_kubernetes_pod_container_port_name"].MatchString(p.Name) {
					continue
				}
				if int(p.ContainerPort) != portOf(admin) {
					t.Errorf("%s: port %s (%d) is scraped, the admin API (/metrics) is on %s", w.name, p.Name, p.ContainerPort, admin)
				}
				if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
					t.Errorf("%s: port %s is scraped, but --admin %s listens on loopback", w.name, p.Name, admin)
				}
				// A policy may name the port or give its number.
				scraped[p.Name], scraped[strconv.Itoa(int(p.ContainerPort))] = true, true
			}
		}
		if len(scraped) == 0 {
			t.Errorf("%s: no port of its %s is scraped", w.name, want.role)
		}
		covered := false
		for _, np := range netpols {
			if np.Namespace != w.namespace || !selects(t, &np.Spec.PodSelector, w.meta.Labels) {
				continue
			}
			covered = true
			eachAdmittedPort(t, np, w.name, w.spec, func(rule networkingv1.NetworkPolicyIngressRule, port string, _ int32) {
				if !scraped[port] {
					return
				}
				// The admin API resets breakers: Prometheus only.
				if len(rule.From) == 0 {
					t.Errorf("NetworkPolicy %s admits anyone to %s's admin port %s", np.Name, w.name, port)
				}
				for _, from := range rule.From {
					if from.PodSelector == nil || !selects(t, from.PodSelector, prometheus) || len(from.PodSelector.MatchLabels) != 1 {
						t.Errorf("NetworkPolicy %s admits %v to %s's admin port, want Prometheus only", np.Name, from, w.name)
					}
				}
			})
		}
		if !covered {
			t.Errorf("%s: no NetworkPolicy covers its pods", w.name)
		}
	}
}
