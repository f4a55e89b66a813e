package check

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// TestComposeStack runs the compose stack here (see runStack), sends it
// the traffic of a day in the life of an edge — analyses, a job, tokens,
// refused credentials, a rate limit, a policy edit and a broken one, a
// JWKS that fails before it answers, a backend that dies and comes back —
// and asks a real Prometheus, which scraped every role, for what the
// dashboards and the alert rules read: every dashboard query returns data,
// every metric and label the rules and dashboards name is one the
// binaries exported.
func TestComposeStack(t *testing.T) {
	st := runStack(t)
	edge := "http://" + st.pl.addrs["sidecar:8080"]
	admin := "http://" + st.pl.addrs["sidecar:9901"]
	client := &http.Client{Timeout: 30 * time.Second}

	t.Run("edge forwards to the backend", func(t *testing.T) {
		resp := do(t, client, "POST", edge+"/api/v1/analyze", `{"content":"a b a"}`, "X-API-Key", "demo-api-key")
		if resp.status != 200 || !strings.Contains(resp.body, `"word_count":3`) {
			t.Fatalf("analyze through the sidecar: %d %s", resp.status, resp.body)
		}
		if resp := do(t, client, "POST", edge+"/api/v1/analyze", `{"content":"a"}`); resp.status != 401 {
			t.Fatalf("without credentials: %d %s", resp.status, resp.body)
		}
	})

	t.Run("nginx profile", func(t *testing.T) {
		ngx := "http://" + st.pl.addrs["nginx:8088"]
		if resp := do(t, client, "POST", ngx+"/api/v1/analyze", `{"content":"a b a"}`, "X-API-Key", "demo-api-key"); resp.status != 200 ||
			!strings.Contains(resp.body, `"word_count":3`) {
			t.Fatalf("analyze through NGINX: %d %s", resp.status, resp.body)
		}
		if resp := do(t, client, "GET", ngx+"/api/v1/jobs/x", ""); resp.status != 401 || !strings.Contains(resp.body, "credentials_missing") {
			t.Fatalf("NGINX without credentials: %d %s", resp.status, resp.body)
		}
	})

	t.Run("xds profile", func(t *testing.T) {
		// The sidecar was ready, so it holds the control plane's policy:
		// the same decisions as the sidecar that reads the file.
		xedge := "http://" + st.pl.addrs["xds-sidecar:8080"]
		if resp := do(t, client, "POST", xedge+"/api/v1/analyze", `{"content":"a b a"}`, "X-API-Key", "demo-api-key"); resp.status != 200 ||
			!strings.Contains(resp.body, `"word_count":3`) {
			t.Fatalf("analyze through the xDS-configured sidecar: %d %s", resp.status, resp.body)
		}
		if resp := do(t, client, "POST", xedge+"/api/v1/analyze", `{"content":"a"}`); resp.status != 401 {
			t.Fatalf("xDS-configured sidecar without credentials: %d %s", resp.status, resp.body)
		}
		resp := do(t, client, "GET", "http://"+st.pl.addrs["xds:9902"]+"/admin/xds", "")
		if resp.status != 200 || !strings.Contains(resp.body, `"xds-sidecar"`) {
			t.Fatalf("the control plane does not list the node xds-sidecar: %d %s", resp.status, resp.body)
		}
	})

	scenario(t, st, client, edge, admin)

	t.Run("traces reach jaeger", func(t *testing.T) {
		want := map[string]bool{"contentguard-backend": false, "contentguard-sidecar": false}
		if !until(60, func() bool {
			for _, s := range st.otlp.Spans() {
				if name, ok := s.Resource["service.name"].(string); ok {
					if _, w := want[name]; w {
						want[name] = true
					}
				}
			}
			return want["contentguard-backend"] && want["contentguard-sidecar"]
		}) {
			t.Fatalf("spans at OTLP_ENDPOINT from %v", want)
		}
	})

	prom := &promAPI{base: st.prometheus, client: client}
	t.Run("prometheus scrapes every role", func(t *testing.T) {
		for _, job := range []string{"backend", "worker", "sidecar", "xds"} {
			prom.await(t, fmt.Sprintf(`up{job=%q} == 1`, job), 1)
		}
		// The three sidecars of the stack (the edge, the NGINX profile's and
		// the xds profile's).
		prom.await(t, `count(up{job="sidecar"} == 1) == 3`, 1)
	})

	t.Run("expected series", func(t *testing.T) {
		for _, q := range []string{
			`sum(max_over_time(edge_decisions_total{job="sidecar",reason="allowed"}[10m])) > 0`,
			`sum(max_over_time(edge_decisions_total{job="sidecar",reason="rate_limited"}[10m])) > 0`,
			`sum(max_over_time(edge_decisions_total{job="sidecar",reason="circuit_open"}[10m])) > 0`,
			`sum(max_over_time(auth_failures_total{reason="credentials_missing"}[10m])) > 0`,
			`sum(max_over_time(circuit_breaker_transitions_total{from="closed",to="open"}[10m])) > 0`,
			`sum(max_over_time(jwks_fetches_total{provider="partner",result="error"}[10m])) > 0`,
			`sum(max_over_time(jwks_fetches_total{provider="partner",result="ok"}[10m])) > 0`,
			`sum(max_over_time(policy_reloads_total[10m])) > 0`,
			`sum(max_over_time(policy_reload_errors_total[10m])) > 0`,
			`sum(max_over_time(token_grants_total{grant_type="password",result="ok"}[10m])) > 0`,
			`sum(max_over_time(jobs_completed_total{status="completed"}[10m])) > 0`,
			`sum(max_over_time(cache_hits_total{job="backend"}[10m])) > 0`,
			`sum(max_over_time(http_requests_total{job="backend",route="/api/v1/analyze"}[10m])) > 0`,
			`max_over_time(xds_nodes{job="xds"}[10m]) > 0`,
			`sum(max_over_time(xds_snapshots_total{job="xds"}[10m])) > 0`,
		} {
			prom.await(t, q, 1)
		}
	})

	names := prom.metricNames(t)
	t.Run("dashboards", func(t *testing.T) {
		for _, d := range dashboards(t) {
			for _, q := range d.queries() {
				t.Run(d.Title+"/"+q.panel, func(t *testing.T) {
					expr := grafanaVars.Replace(q.expr)
					checkExpr(t, prom, names, expr)
					// Data, not just a valid query: a result with samples.
					prom.await(t, expr, 1)
				})
			}
		}
	})

	t.Run("alert rules", func(t *testing.T) {
		for _, r := range alertRules(t) {
			t.Run(r.Alert, func(t *testing.T) { checkExpr(t, prom, names, r.Expr) })
		}
	})
}

// grafanaVars are the variables the dashboards use, as Grafana fills them
// for a 1s scrape interval.
var grafanaVars = strings.NewReplacer("$__rate_interval", "15s", "$__range", "5m")

type response struct {
	status int
	body   string
	header http.Header
}

func do(t *testing.T, c *http.Client, method, url, body string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, string(b), resp.Header}
}

// scenario sends the stack the traffic whose metrics the dashboards read.
func scenario(t *testing.T, st *stack, c *http.Client, edge, admin string) {
	outer := t // processes started here live as long as the stack
	key := []string{"X-API-Key", "demo-api-key"}
	// First, so that the backend's counters after its restart hold the
	// rest of the day.
	t.Run("the breaker opens and closes", func(t *testing.T) {
		backend := st.procs["backend"]
		backend.stop()
		open := false
		for i := 0; i < 20 && !open; i++ {
			r := do(t, c, "POST", edge+"/api/v1/analyze", `{"content":"x"}`, key...)
			open = r.status == 503 && strings.Contains(r.body, "circuit_open")
		}
		if !open {
			t.Fatal("the breaker did not open with the backend down")
		}
		st.procs["backend"] = restart(outer, backend)
		if r := do(t, c, "POST", admin+"/admin/breakers/reset", ""); r.status/100 != 2 {
			t.Fatalf("breaker reset: %d %s", r.status, r.body)
		}
		if r := do(t, c, "POST", edge+"/api/v1/analyze", `{"content":"back"}`, key...); r.status != 200 {
			t.Fatalf("after the reset: %d %s", r.status, r.body)
		}
	})
	t.Run("analyses and the cache", func(t *testing.T) {
		for _, path := range []string{"/api/v1/analyze", "/api/v1/analyze", "/api/v1/quality"} {
			if r := do(t, c, "POST", edge+path, `{"content":"The cat sat. The cat sat on the mat."}`, key...); r.status != 200 {
				t.Fatalf("%s: %d %s", path, r.status, r.body)
			}
		}
		if r := do(t, c, "POST", edge+"/api/v1/similarity", `{"text1":"a b","text2":"a c"}`, key...); r.status != 200 {
			t.Fatalf("similarity: %d %s", r.status, r.body)
		}
	})
	t.Run("a job runs", func(t *testing.T) {
		r := do(t, c, "POST", edge+"/api/v1/jobs", `{"kind":"analyze","input":{"operation":"analyze","content":"a b a"}}`, key...)
		if r.status != 202 {
			t.Fatalf("submit: %d %s", r.status, r.body)
		}
		var job struct{ Data struct{ ID, Status string } }
		if err := json.Unmarshal([]byte(r.body), &job); err != nil || job.Data.ID == "" {
			t.Fatalf("submit answer %s: %v", r.body, err)
		}
		if !until(60, func() bool {
			r := do(t, c, "GET", edge+"/api/v1/jobs/"+job.Data.ID, "", key...)
			return strings.Contains(r.body, `"status":"completed"`)
		}) {
			t.Fatalf("job %s never completed", job.Data.ID)
		}
	})
	t.Run("tokens and refusals", func(t *testing.T) {
		form := "grant_type=password&username=demo&password=contentguard-demo&scope=read"
		req, _ := http.NewRequest("POST", edge+"/api/v1/auth/token", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if resp.StatusCode != 200 || json.Unmarshal(b, &tok) != nil || tok.AccessToken == "" {
			t.Fatalf("password grant: %d %s", resp.StatusCode, b)
		}
		if r := do(t, c, "GET", edge+"/api/v1/webhooks", "", "Authorization", "Bearer "+tok.AccessToken); r.status != 200 {
			t.Fatalf("with the token: %d %s", r.status, r.body)
		}
		if r := do(t, c, "GET", edge+"/api/v1/jobs/none", ""); r.status != 401 {
			t.Fatalf("without credentials: %d", r.status)
		}
		// The token route allows 10 a minute per address: the 11th is 429.
		limited := false
		for i := 0; i < 12 && !limited; i++ {
			limited = do(t, c, "POST", edge+"/api/v1/auth/token", "grant_type=password").status == 429
		}
		if !limited {
			t.Fatal("the token route's rate limit never answered 429")
		}
	})
	t.Run("policy edits", func(t *testing.T) {
		// A JWT provider whose JWKS fails once, then answers: the sidecar
		// fetches it after the reload and retries after 1s.
		var calls atomic.Int64
		jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				http.Error(w, "not yet", http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"keys":[{"kty":"EC","crv":"P-256","kid":"p1","alg":"ES256","use":"sig",`+
				`"x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`)
		}))
		t.Cleanup(jwks.Close)
		orig, err := os.ReadFile(st.policy)
		if err != nil {
			t.Fatal(err)
		}
		edited := addProvider(t, orig, jwks.URL)
		reloads := func(metric string) float64 { return scrapeValue(t, c, admin+"/metrics", metric) }
		writePolicy(t, st.policy, edited)
		if !until(60, func() bool { return reloads("policy_reloads_total") >= 1 && calls.Load() >= 2 }) {
			t.Fatalf("the edited policy was not applied and fetched (reloads %v, JWKS calls %d)", reloads("policy_reloads_total"), calls.Load())
		}
		writePolicy(t, st.policy, []byte("apiVersion: contentguard.dev/v1\nkind: EdgePolicy\nspec: {routes: nope}\n"))
		if !until(60, func() bool { return reloads("policy_reload_errors_total") >= 1 }) {
			t.Fatal("the broken policy was not counted")
		}
		writePolicy(t, st.policy, edited)
	})
}

// restart runs a stopped process again with the same command and ports.
func restart(t *testing.T, p *proc) *proc {
	t.Helper()
	env := map[string]string{}
	for _, kv := range p.cmd.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	q := start(t, p.name, p.cmd.Args, env, p.cmd.Dir)
	q.ports = p.ports
	q.awaitListening(t)
	return q
}

func writePolicy(t *testing.T, path string, b []byte) {
	t.Helper()
	// Replace the file whole, as the kubelet and editors do.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// addProvider adds a JWT provider "partner" whose keys are at jwksURL.
func addProvider(t *testing.T, policy []byte, jwksURL string) []byte {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(policy, &doc); err != nil {
		t.Fatal(err)
	}
	providers := find(&doc, "spec", "auth", "jwt", "providers")
	if providers == nil {
		t.Fatal("the compose policy has no JWT providers")
	}
	var p yaml.Node
	src := fmt.Sprintf(`{name: partner, issuer: "https://partner.example", audiences: [content-api], algorithms: [ES256], jwks: {url: %q, refresh: 1h, readyWithoutKeys: true}}`, jwksURL+"/jwks.json")
	if err := yaml.Unmarshal([]byte(src), &p); err != nil {
		t.Fatal(err)
	}
	providers.Content = append(providers.Content, p.Content[0])
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func find(n *yaml.Node, path ...string) *yaml.Node {
	if n.Kind == yaml.DocumentNode {
		n = n.Content[0]
	}
	for _, key := range path {
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

// scrapeValue sums a metric's samples in a /metrics page.
func scrapeValue(t *testing.T, c *http.Client, url, metric string) float64 {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	sum := 0.0
	for _, line := range strings.Split(string(b), "\n") {
		var v float64
		if name, rest, ok := strings.Cut(line, " "); ok && (name == metric || strings.HasPrefix(name, metric+"{")) {
			fmt.Sscan(rest, &v)
			sum += v
		}
	}
	return sum
}

// promAPI asks Prometheus's HTTP API.
type promAPI struct {
	base   string
	client *http.Client
}

type sample struct {
	Metric map[string]string `json:"metric"`
}

func (p *promAPI) get(path string, q url.Values, out any) error {
	resp, err := p.client.Get(p.base + path + "?" + q.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("%s: %s", path, b)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s %v: %s", path, q, env.Error)
	}
	return json.Unmarshal(env.Data, out)
}

// query runs an instant query and returns its samples (a vector or a
// scalar counts as one).
func (p *promAPI) query(expr string) ([]sample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.get("/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, err
	}
	if data.ResultType == "scalar" {
		return []sample{{}}, nil
	}
	var out []sample
	err := json.Unmarshal(data.Result, &out)
	return out, err
}

// await waits until expr returns at least n samples.
func (p *promAPI) await(t *testing.T, expr string, n int) []sample {
	t.Helper()
	var got []sample
	var err error
	if !until(90, func() bool {
		got, err = p.query(expr)
		return err == nil && len(got) >= n
	}) {
		// Which part is empty: each selector on its own.
		var parts []string
		if e, perr := parser.NewParser(parser.Options{}).ParseExpr(expr); perr == nil {
			parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
				if vs, ok := n.(*parser.VectorSelector); ok {
					got, err := p.query(vs.String())
					parts = append(parts, fmt.Sprintf("%s: %d series %v", vs, len(got), err))
				}
				return nil
			})
		}
		t.Fatalf("Prometheus: %s returned %d samples (want %d): %v\n%s", expr, len(got), n, err, strings.Join(parts, "\n"))
	}
	return got
}

// metricNames are every metric name Prometheus holds from the scrapes.
func (p *promAPI) metricNames(t *testing.T) map[string]bool {
	t.Helper()
	var names []string
	if err := p.get("/api/v1/label/__name__/values", url.Values{}, &names); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, n := range names {
		out[n] = true
	}
	return out
}

// labelsOf are the label names on the series of a metric.
func (p *promAPI) labelsOf(t *testing.T, metric string) map[string]bool {
	t.Helper()
	var series []map[string]string
	if err := p.get("/api/v1/series", url.Values{"match[]": {metric}}, &series); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, s := range series {
		for k := range s {
			out[k] = true
		}
	}
	return out
}

// checkExpr parses expr with Prometheus's own PromQL parser and checks
// every metric it names against what Prometheus scraped from the
// binaries, and every label it matches or groups by against the labels of
// those metrics' series.
func checkExpr(t *testing.T, prom *promAPI, names map[string]bool, expr string) {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			metric := n.Name
			if metric == "" {
				t.Errorf("%s: a selector without a metric name", expr)
				return nil
			}
			if !names[metric] && !names[strings.TrimSuffix(metric, "_bucket")] {
				t.Errorf("%s: no binary exports %s", expr, metric)
				return nil
			}
			labels := prom.labelsOf(t, metric)
			for _, m := range n.LabelMatchers {
				if m.Name != "__name__" && !labels[m.Name] {
					t.Errorf("%s: %s has no label %s (it has %v)", expr, metric, m.Name, keys(labels))
				}
			}
		case *parser.AggregateExpr:
			if n.Without {
				return nil
			}
			var inner []string
			parser.Inspect(n.Expr, func(m parser.Node, _ []parser.Node) error {
				if vs, ok := m.(*parser.VectorSelector); ok {
					inner = append(inner, vs.Name)
				}
				return nil
			})
			for _, l := range n.Grouping {
				found := false
				for _, metric := range inner {
					found = found || prom.labelsOf(t, metric)[l]
				}
				if !found {
					t.Errorf("%s: grouped by %s, which none of %v has", expr, l, inner)
				}
			}
		}
		return nil
	})
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// alertRule is one rule of deploy/prometheus/alerts.yml.
type alertRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func alertRules(t *testing.T) []alertRule {
	t.Helper()
	b, err := os.ReadFile(inRepo(t, "deploy/prometheus/alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Name  string      `yaml:"name"`
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	var out []alertRule
	for _, g := range doc.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatal("no alert rules")
	}
	return out
}

var _ = filepath.Join
var _ = regexp.MustCompile
