package check

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// dashboard is the part of a Grafana dashboard JSON model these files
// use; decoding refuses anything else, so a typo cannot hide a panel.
type dashboard struct {
	UID           string          `json:"uid"`
	Title         string          `json:"title"`
	Description   string          `json:"description"`
	Tags          []string        `json:"tags"`
	Timezone      string          `json:"timezone"`
	Editable      bool            `json:"editable"`
	SchemaVersion int             `json:"schemaVersion"`
	Version       int             `json:"version"`
	Refresh       string          `json:"refresh"`
	Time          json.RawMessage `json:"time"`
	Templating    json.RawMessage `json:"templating"`
	Annotations   json.RawMessage `json:"annotations"`
	Panels        []struct {
		ID          int             `json:"id"`
		Type        string          `json:"type"`
		Title       string          `json:"title"`
		Description string          `json:"description"`
		Datasource  datasourceRef   `json:"datasource"`
		GridPos     json.RawMessage `json:"gridPos"`
		FieldConfig json.RawMessage `json:"fieldConfig"`
		Options     json.RawMessage `json:"options"`
		Targets     []struct {
			RefID        string        `json:"refId"`
			Datasource   datasourceRef `json:"datasource"`
			Expr         string        `json:"expr"`
			LegendFormat string        `json:"legendFormat"`
			Range        bool          `json:"range"`
		} `json:"targets"`
	} `json:"panels"`
	file string
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panelQuery struct{ panel, expr string }

func (d dashboard) queries() []panelQuery {
	var out []panelQuery
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out = append(out, panelQuery{p.Title + "/" + tg.RefID, tg.Expr})
		}
	}
	return out
}

func dashboards(t *testing.T) []dashboard {
	t.Helper()
	files, err := filepath.Glob(inRepo(t, "deploy/grafana/dashboards/*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	var out []dashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		d.file = filepath.Base(f)
		out = append(out, d)
	}
	return out
}

// TestDashboards: the four dashboards of the original service and the
// Edge dashboard, each query parsed by Prometheus's PromQL parser, every
// panel on the provisioned data source. (TestComposeStack runs every query
// against a Prometheus that scraped the binaries.)
func TestDashboards(t *testing.T) {
	ds := provisionedDatasource(t)
	want := map[string]bool{"HTTP Request Metrics": false, "Business Metrics": false, "System Health": false,
		"Circuit Breaker Status": false, "Edge": false}
	uids := map[string]bool{}
	for _, d := range dashboards(t) {
		for w := range want {
			if strings.HasSuffix(d.Title, "— "+w) {
				want[w] = true
			}
		}
		if uids[d.UID] || d.UID == "" {
			t.Errorf("%s: uid %q empty or taken", d.file, d.UID)
		}
		uids[d.UID] = true
		if len(d.Panels) < 4 {
			t.Errorf("%s: %d panels", d.file, len(d.Panels))
		}
		for _, p := range d.Panels {
			if p.Datasource.UID != ds.UID || p.Datasource.Type != ds.Type || len(p.Targets) == 0 {
				t.Errorf("%s %q: datasource %+v, %d queries; want the provisioned %s", d.file, p.Title, p.Datasource, len(p.Targets), ds.UID)
			}
			for _, q := range p.Targets {
				if q.Datasource != p.Datasource {
					t.Errorf("%s %q: query datasource %+v", d.file, p.Title, q.Datasource)
				}
				if _, err := parser.NewParser(parser.Options{}).ParseExpr(grafanaVars.Replace(q.Expr)); err != nil {
					t.Errorf("%s %q: %s: %v", d.file, p.Title, q.Expr, err)
				}
			}
		}
	}
	for w, ok := range want {
		if !ok {
			t.Errorf("no dashboard %q", w)
		}
	}
}

type provisionedDS struct {
	Name, UID, Type, URL string
}

// provisionedDatasource reads Grafana's data source provisioning and
// checks it names the compose stack's Prometheus where it listens.
func provisionedDatasource(t *testing.T) provisionedDS {
	t.Helper()
	b, err := os.ReadFile(inRepo(t, "deploy/grafana/provisioning/datasources/prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name      string `yaml:"name"`
			UID       string `yaml:"uid"`
			Type      string `yaml:"type"`
			Access    string `yaml:"access"`
			URL       string `yaml:"url"`
			IsDefault bool   `yaml:"isDefault"`
			Editable  bool   `yaml:"editable"`
		} `yaml:"datasources"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil || doc.APIVersion != 1 || len(doc.Datasources) != 1 {
		t.Fatalf("datasource provisioning: %v %+v", err, doc)
	}
	d := doc.Datasources[0]
	return provisionedDS{d.Name, d.UID, d.Type, d.URL}
}

// TestGrafanaProvisioning: the compose file mounts the provisioning and
// the dashboards where the providers look, and the data source URL is the
// compose Prometheus on the port its command listens on.
func TestGrafanaProvisioning(t *testing.T) {
	p := loadCompose(t)
	var grafana, prometheus string
	for n, s := range p.Services {
		switch kind(s) {
		case "grafana":
			grafana = n
		case "prometheus":
			prometheus = n
		}
	}
	mounts := bindMounts(t, p.Services[grafana])
	b, err := os.ReadFile(inRepo(t, "deploy/grafana/provisioning/dashboards/contentguard.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var prov struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name            string                `yaml:"name"`
			Folder          string                `yaml:"folder"`
			Type            string                `yaml:"type"`
			DisableDeletion bool                  `yaml:"disableDeletion"`
			AllowUIUpdates  bool                  `yaml:"allowUiUpdates"`
			Options         struct{ Path string } `yaml:"options"`
		} `yaml:"providers"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&prov); err != nil || len(prov.Providers) != 1 {
		t.Fatalf("dashboard provisioning: %v", err)
	}
	mounted := func(container string) string {
		for c, h := range mounts {
			if container == c || strings.HasPrefix(container, c+"/") {
				return filepath.Join(h, strings.TrimPrefix(container, c))
			}
		}
		return ""
	}
	if got := mounted(prov.Providers[0].Options.Path); got != inRepo(t, "deploy/grafana/dashboards") {
		t.Errorf("dashboards provider reads %s; the compose file mounts %q there", prov.Providers[0].Options.Path, got)
	}
	for _, dir := range []string{"datasources", "dashboards"} {
		if got := mounted("/etc/grafana/provisioning/" + dir); got != inRepo(t, "deploy/grafana/provisioning/"+dir) {
			t.Errorf("/etc/grafana/provisioning/%s is %q", dir, got)
		}
	}
	if home := environment(p.Services[grafana])["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home != "" {
		if _, err := os.Stat(mounted(home)); err != nil {
			t.Errorf("home dashboard %s: %v", home, err)
		}
	}
	ds := provisionedDatasource(t)
	listen := ""
	for _, a := range p.Services[prometheus].Command {
		if v, ok := strings.CutPrefix(a, "--web.listen-address="); ok {
			listen = v
		}
	}
	if want := "http://" + prometheus + ":" + strings.TrimPrefix(listen, ":"); ds.URL != want || ds.Type != "prometheus" {
		t.Errorf("data source %+v; want %s", ds, want)
	}
}
