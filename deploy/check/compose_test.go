package check

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"

	"github.com/contentguard/contentguard/telemetry/otlptest"
)

const composeFile = "deploy/compose/compose.yaml"

// loadCompose decodes the compose file as Docker Compose does, validated
// against the compose-spec JSON schema (unknown keys fail), with every
// profile enabled.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	path := inRepo(t, composeFile)
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  filepath.Dir(path),
		ConfigFiles: []types.ConfigFile{{Filename: path}},
		Environment: types.Mapping{},
	}, loader.WithProfiles([]string{"*"}), func(o *loader.Options) { o.SetProjectName("contentguard", true) })
	if err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	return p
}

// kind is what runs a compose service here.
func kind(s types.ServiceConfig) string {
	img, _, _ := strings.Cut(s.Image, ":")
	switch {
	case img == "contentguard":
		return "contentguard"
	case s.Build != nil:
		return "build"
	case img == "redis":
		return "redis"
	case img == "prom/prometheus":
		return "prometheus"
	case img == "jaegertracing/all-in-one":
		return "jaeger"
	case img == "grafana/grafana":
		return "grafana"
	case img == "nginx":
		return "nginx"
	case img == "traefik":
		return "traefik"
	}
	return "unknown"
}

func environment(s types.ServiceConfig) map[string]string {
	env := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			env[k] = *v
		}
	}
	return env
}

// bindMounts maps a service's container paths to the repository files
// bound there.
func bindMounts(t *testing.T, s types.ServiceConfig) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if _, err := os.Stat(v.Source); err != nil {
			t.Errorf("service %s mounts %s, which does not exist", s.Name, v.Source)
		}
		if !v.ReadOnly {
			t.Errorf("service %s mounts %s writable: configuration is mounted :ro", s.Name, v.Source)
		}
		m[v.Target] = v.Source
	}
	return m
}

// TestComposeFile checks the compose file without running it: its images,
// builds, hardening, mounts, dependencies, the roles it runs, and that
// every variable it sets is one the binary reads.
func TestComposeFile(t *testing.T) {
	p := loadCompose(t)
	img := rootImage(t)
	roles := map[string]bool{}
	for name, s := range p.Services {
		switch kind(s) {
		case "contentguard":
			if s.Build == nil || filepath.Clean(s.Build.Context) != repoRoot(t) || s.Build.Dockerfile != "Dockerfile" {
				t.Errorf("%s: build %+v: want the root Dockerfile", name, s.Build)
			}
			if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
				t.Errorf("%s: want read_only, cap_drop ALL and no-new-privileges", name)
			}
			role, set := parseArgs(t, name, s.Command)
			roles[role] = true
			if role == "backend" && set["worker"] == "true" {
				roles["worker"] = true
			}
			for k := range environment(s) {
				if _, ok := envVars(t)[k]; !ok {
					t.Errorf("%s: %s: contentguard reads no such variable", name, k)
				}
			}
			if s.HealthCheck == nil || len(s.HealthCheck.Test) < 3 || s.HealthCheck.Test[0] != "CMD" ||
				s.HealthCheck.Test[1] != img.BinaryPath || s.HealthCheck.Test[2] != "healthcheck" {
				t.Errorf("%s: healthcheck %v: want [CMD, %s, healthcheck, URL] (the image has no shell)", name, s.HealthCheck, img.BinaryPath)
			}
		case "build":
			if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case "traefik":
			checkTraefik(t, p, img, s)
		case "unknown":
			t.Errorf("%s: image %s: no test runs or checks it", name, s.Image)
		}
		bindMounts(t, s)
		for dep, d := range s.DependsOn {
			if d.Condition == types.ServiceConditionHealthy && p.Services[dep].HealthCheck == nil {
				t.Errorf("%s waits for %s to be healthy, which has no healthcheck", name, dep)
			}
		}
	}
	// Every serving role of the binary runs in the stack.
	for _, role := range []string{"backend", "worker", "sidecar", "xds"} {
		if role == "xds" && !commands(t)["xds"] {
			continue // not a command of this binary yet
		}
		if !roles[role] {
			t.Errorf("no compose service runs the %s role", role)
		}
	}
	// Every data plane the repository has runs in a profile in front of
	// the same backend.
	profiles := map[string]bool{}
	for _, s := range p.Services {
		for _, pr := range s.Profiles {
			profiles[pr] = true
		}
	}
	for plane, profile := range map[string]string{"plugins/kong": "kong", "plugins/traefik": "traefik", "deploy/nginx": "nginx"} {
		if _, err := os.Stat(inRepo(t, plane)); err == nil && !profiles[profile] {
			t.Errorf("%s exists but the compose file has no %q profile running it", plane, profile)
		}
	}
	// The Kong profile's image routes to the backend as the stack names it.
	kong, err := os.ReadFile(inRepo(t, "deploy/kong/kong.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var kongConf struct {
		Services []struct{ URL string } `yaml:"services"`
	}
	if err := yaml.Unmarshal(kong, &kongConf); err != nil {
		t.Fatal(err)
	}
	for _, s := range kongConf.Services {
		checkServiceURL(t, p, img, "deploy/kong/kong.yml", s.URL)
	}
}

// checkServiceURL: url, which file routes to, is a contentguard service of
// the stack on a port it listens on.
func checkServiceURL(t *testing.T, p *types.Project, img image, file, url string) {
	t.Helper()
	ref := regexp.MustCompile(`//([a-z-]+):(\d+)`).FindStringSubmatch(url)
	svc, ok := p.Services[ref1(ref)]
	if !ok || kind(svc) != "contentguard" {
		t.Errorf("%s: service url %s is no contentguard service of the stack", file, url)
		return
	}
	env := map[string]string{}
	for k, v := range img.Env {
		env[k] = v
	}
	for k, v := range environment(svc) {
		env[k] = v
	}
	role, set := parseArgs(t, svc.Name, svc.Command)
	found := false
	for _, addr := range listenFlags(t, role, set, func(k string) string { return env[k] }) {
		found = found || portOf(addr) == mustAtoi(t, ref[2])
	}
	if !found {
		t.Errorf("%s: %s, where %s does not listen", file, url, svc.Name)
	}
}

// checkTraefik: the Traefik service runs deploy/traefik as its files say —
// the static configuration where --configFile points, the dynamic one
// where the file provider reads, the policy where the middleware's
// policyFile is, the plugin's source under ./plugins-local/src/<module>
// of its working directory, the web entry point published — and routes to
// a contentguard service of the stack.
func checkTraefik(t *testing.T, p *types.Project, img image, s types.ServiceConfig) {
	t.Helper()
	mounts := bindMounts(t, s)
	readYAML := func(container string) map[string]any {
		t.Helper()
		host, ok := mounts[container]
		if !ok {
			t.Fatalf("%s: nothing mounted at %s", s.Name, container)
		}
		b, err := os.ReadFile(host)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		return doc
	}
	str := func(doc map[string]any, keys ...string) string {
		t.Helper()
		var v any = doc
		for _, k := range keys {
			m, _ := v.(map[string]any)
			v = m[k]
		}
		out, _ := v.(string)
		if out == "" {
			t.Errorf("%s: no %s", s.Name, strings.Join(keys, "."))
		}
		return out
	}
	var static string
	for _, arg := range s.Command {
		if f, ok := strings.CutPrefix(arg, "--configFile="); ok {
			static = f
		}
	}
	if mounts[static] != inRepo(t, "deploy/traefik/traefik.yml") {
		t.Fatalf("%s: --configFile=%s is not deploy/traefik/traefik.yml", s.Name, static)
	}
	st := readYAML(static)
	dyn := readYAML(str(st, "providers", "file", "filename"))
	module := str(st, "experimental", "localPlugins", "contentguard", "moduleName")
	src := path.Join(s.WorkingDir, "plugins-local", "src", module)
	if mounts[src] != inRepo(t, "plugins/traefik") {
		t.Errorf("%s: the plugin's source must be mounted at %s (working_dir %q), not %v", s.Name, src, s.WorkingDir, mounts)
	}
	policy := str(dyn, "http", "middlewares", "contentguard", "plugin", "contentguard", "policyFile")
	if mounts[policy] != inRepo(t, "deploy/traefik/policy.yaml") {
		t.Errorf("%s: policyFile %s is not deploy/traefik/policy.yaml", s.Name, policy)
	}
	web := str(st, "entryPoints", "web", "address")
	published := false
	for _, port := range s.Ports {
		published = published || ":"+fmt.Sprint(port.Target) == web
	}
	if !published {
		t.Errorf("%s: the web entry point %s is not published", s.Name, web)
	}
	services, _ := dyn["http"].(map[string]any)["services"].(map[string]any)
	for name := range services {
		lb, _ := services[name].(map[string]any)["loadBalancer"].(map[string]any)
		servers, _ := lb["servers"].([]any)
		for _, srv := range servers {
			url, _ := srv.(map[string]any)["url"].(string)
			checkServiceURL(t, p, img, "deploy/traefik/dynamic.yml", url)
		}
	}
}

func ref1(m []string) string {
	if len(m) < 2 {
		return ""
	}
	return m[1]
}

func mustAtoi(t testing.TB, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// stack is the compose stack running here.
type stack struct {
	pl         *place
	procs      map[string]*proc
	otlp       *otlptest.Receiver
	prometheus string // http://127.0.0.1:port
	project    *types.Project
	policy     string // the sidecar's policy file here
}

// order is the services in an order that starts what each depends on
// first; Prometheus goes last, when every target has an address.
func order(p *types.Project) []string {
	var names []string
	for n := range p.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	done := map[string]bool{}
	var out []string
	var visit func(string)
	visit = func(n string) {
		if done[n] {
			return
		}
		done[n] = true
		var deps []string
		for d := range p.Services[n].DependsOn {
			deps = append(deps, d)
		}
		sort.Strings(deps)
		for _, d := range deps {
			visit(d)
		}
		out = append(out, n)
	}
	// What the others name and need nothing themselves first (Compose
	// starts them side by side; here one at a time), Prometheus last.
	for _, pass := range []func(string) bool{
		func(n string) bool { k := kind(p.Services[n]); return k == "redis" || k == "jaeger" },
		func(n string) bool { k := kind(p.Services[n]); return k != "prometheus" && k != "grafana" },
		func(string) bool { return true },
	} {
		for _, n := range names {
			if pass(n) {
				visit(n)
			}
		}
	}
	return out
}

// runStack starts every service of the compose file that runs here:
// contentguard's, Redis (redis-server), Jaeger (an OTLP/HTTP receiver),
// NGINX (/usr/sbin/nginx) and Prometheus (Debian's), each healthcheck
// passing before the next starts. Grafana and Kong are checked, not run.
func runStack(t *testing.T) *stack {
	p := loadCompose(t)
	st := &stack{pl: newPlace(t), procs: map[string]*proc{}, project: p}
	img := rootImage(t)
	for n, s := range p.Services {
		st.pl.services[n] = true
		// A fixed address on the compose network is this machine's loopback.
		for _, nw := range s.Networks {
			if nw != nil && nw.Ipv4Address != "" {
				st.pl.aliases[nw.Ipv4Address] = "127.0.0.1"
			}
		}
	}
	envOf := func(s types.ServiceConfig) map[string]string {
		env := map[string]string{}
		for k, v := range img.Env {
			env[k] = v
		}
		for k, v := range environment(s) {
			env[k] = v
		}
		return env
	}
	// Every listener has its address before anything starts: Compose
	// resolves names when they are used, not in start-up order.
	for name, s := range p.Services {
		switch kind(s) {
		case "contentguard":
			planContentguard(t, st.pl, name, s.Command, envOf(s))
		case "redis":
			st.pl.listen(name, ":6379")
		}
	}
	for _, name := range order(p) {
		s := p.Services[name]
		switch kind(s) {
		case "contentguard":
			env := envOf(s)
			mounts := map[string]string{}
			for c, h := range bindMounts(t, s) {
				mounts[c] = st.pl.mountFile(name+" volume "+c, h)
				if strings.HasSuffix(c, "policy.yaml") && name == "sidecar" {
					st.policy = mounts[c]
				}
			}
			st.procs[name] = startContentguard(t, st.pl, name, s.Command, env, mounts)
			st.healthcheck(t, name, s)
		case "redis":
			st.startRedis(t, name, s)
		case "jaeger":
			st.otlp = otlptest.Start(t)
			st.pl.addrs[name+":4318"] = strings.TrimPrefix(st.otlp.URL, "http://")
		case "nginx":
			st.startNGINX(t, name, s)
		case "prometheus":
			st.startPrometheus(t, name, s)
		}
		checkPorts(t, st.pl, name, s)
	}
	return st
}

// checkPorts: what a service publishes or exposes is a port it listens on
// for other containers (not on its own loopback).
func checkPorts(t *testing.T, pl *place, name string, s types.ServiceConfig) {
	t.Helper()
	switch kind(s) {
	case "grafana", "build", "jaeger", "traefik":
		return // their images' own ports; what others use of them is checked where used
	}
	var ports []string
	for _, p := range s.Ports {
		ports = append(ports, fmt.Sprint(p.Target))
	}
	ports = append(ports, s.Expose...)
	for _, port := range ports {
		ref := name + ":" + port
		if _, ok := pl.addrs[ref]; !ok {
			t.Errorf("%s publishes or exposes %s, where it does not listen (listeners: %v)", name, port, pl.listeners())
		}
		if pl.loopbackOnly[ref] {
			t.Errorf("%s publishes or exposes %s, which it binds on its own loopback only", name, port)
		}
	}
}

// healthcheck runs the service's healthcheck command here until it passes.
func (st *stack) healthcheck(t *testing.T, name string, s types.ServiceConfig) {
	t.Helper()
	hc := s.HealthCheck.Test[1:]
	argv := []string{binary(t)}
	p := st.procs[name]
	for _, a := range hc[1:] {
		// The check runs in the service's container: its own loopback.
		a = regexp.MustCompile(`127\.0\.0\.1:(\d+)`).ReplaceAllStringFunc(a, func(m string) string {
			port := portOf(m)
			real, ok := p.ports[port]
			if !ok {
				t.Errorf("%s: healthcheck %q asks port %d, where %s does not listen", name, a, port, name)
			}
			return real
		})
		argv = append(argv, a)
	}
	waitCommand(t, name+" healthcheck", argv, cleanEnv())
}

func (st *stack) startRedis(t *testing.T, name string, s types.ServiceConfig) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is needed (apt-get install redis-server): %v", err)
	}
	if s.Command[0] != "redis-server" {
		t.Fatalf("%s: command %v", name, s.Command)
	}
	_, addr := st.pl.listen(name, ":6379") // redis-server's default port
	dir := filepath.Join(st.pl.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The compose command, then where it runs here.
	argv := append([]string{bin}, s.Command[1:]...)
	argv = append(argv, "--bind", "127.0.0.1", "--port", strconv.Itoa(portOf(addr)), "--dir", dir, "--save", "")
	pr := start(t, name, argv, nil, dir)
	pr.ports[6379] = addr
	st.procs[name] = pr
	pr.awaitListening(t)
	if s.HealthCheck != nil {
		hc := s.HealthCheck.Test[1:] // [redis-cli, ping]: the port goes before the command
		argv := append([]string{hc[0], "-p", strconv.Itoa(portOf(addr))}, hc[1:]...)
		waitCommand(t, name+" healthcheck", argv, cleanEnv())
	}
}

// startNGINX runs NGINX with the files the compose file mounts, laid out
// as in the container (conf.d/, contentguard/ beside nginx.conf).
func (st *stack) startNGINX(t *testing.T, name string, s types.ServiceConfig) {
	t.Helper()
	bin := "/usr/sbin/nginx"
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("nginx is needed (apt-get install nginx): %v", err)
	}
	prefix := filepath.Join(st.pl.dir, name)
	listen := st.pl.freeAddr()
	for _, d := range []string{"conf.d", "contentguard", "logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(prefix, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var published []int
	for _, p := range s.Ports {
		published = append(published, int(p.Target))
	}
	for c, h := range bindMounts(t, s) {
		rel, ok := strings.CutPrefix(c, "/etc/nginx/")
		if !ok {
			t.Fatalf("%s mounts %s outside /etc/nginx", name, c)
		}
		b, err := os.ReadFile(h)
		if err != nil {
			t.Fatal(err)
		}
		text := st.pl.rewrite(name+" "+c, string(b))
		text = regexp.MustCompile(`(?m)^(\s*listen\s+)(\d+);`).ReplaceAllStringFunc(text, func(m string) string {
			port := mustAtoi(t, regexp.MustCompile(`\d+`).FindString(m))
			if !slices.Contains(published, port) {
				t.Errorf("%s listens on %d, which the compose file does not publish (%v)", c, port, published)
			}
			st.pl.addrs[fmt.Sprintf("%s:%d", name, port)] = listen
			return regexp.MustCompile(`\d+;`).ReplaceAllString(m, listen+";")
		})
		if err := os.WriteFile(filepath.Join(prefix, rel), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	conf := fmt.Sprintf(`%s
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/logs/error.log warn;
events { worker_connections 128; }
http {
    access_log off;
    client_body_temp_path %[2]s/tmp/body;
    proxy_temp_path %[2]s/tmp/proxy;
    fastcgi_temp_path %[2]s/tmp/fastcgi;
    uwsgi_temp_path %[2]s/tmp/uwsgi;
    scgi_temp_path %[2]s/tmp/scgi;
    include conf.d/*.conf;
}
`, user, prefix)
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-t", "-p", prefix+"/", "-c", confPath).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t on the compose NGINX files: %v\n%s", err, out)
	}
	pr := start(t, name, []string{bin, "-p", prefix + "/", "-c", confPath, "-g", "daemon off;"}, nil, prefix)
	pr.ports[published[0]] = listen
	st.procs[name] = pr
	pr.awaitListening(t)
}

// startPrometheus runs Debian's prometheus with the compose command's
// flags and the mounted configuration, its DNS service discovery replaced
// by the addresses here, scraping every second.
func (st *stack) startPrometheus(t *testing.T, name string, s types.ServiceConfig) {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus is needed (apt-get install prometheus): %v", err)
	}
	mounts := bindMounts(t, s)
	dir := filepath.Join(st.pl.dir, name)
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	addr := st.pl.freeAddr()
	argv := []string{bin}
	var configPath string
	for _, a := range s.Command {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "--config.file":
			configPath = v
			v = filepath.Join(dir, "prometheus.yml")
		case "--storage.tsdb.path":
			v = filepath.Join(dir, "data")
		case "--web.listen-address":
			st.pl.addrs[fmt.Sprintf("%s:%d", name, portOf(v))] = addr
			v = addr
		}
		argv = append(argv, k+"="+v)
	}
	src, ok := mounts[configPath]
	if !ok {
		t.Fatalf("%s: --config.file %s is not mounted", name, configPath)
	}
	// Rule files are mounted beside the configuration.
	for c, h := range mounts {
		if filepath.Dir(c) == filepath.Dir(configPath) && c != configPath {
			b, err := os.ReadFile(h)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(c)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg := st.prometheusConfig(t, name, src)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	argv = append(argv, "--web.enable-lifecycle")
	pr := start(t, name, argv, nil, dir)
	pr.ports[9090] = addr
	st.procs[name] = pr
	pr.awaitListening(t)
	st.prometheus = "http://" + addr
}

// prometheusConfig is the compose Prometheus configuration with every
// dns_sd_configs name:port a static target here, scraping each second.
func (st *stack) prometheusConfig(t *testing.T, self, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["global"] = map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s"}
	// A static target on its own host is Prometheus itself.
	for _, sc := range cfg["scrape_configs"].([]any) {
		job := sc.(map[string]any)
		static, _ := job["static_configs"].([]any)
		for _, s := range static {
			targets := s.(map[string]any)["targets"].([]any)
			for i, tg := range targets {
				host, port, _ := net.SplitHostPort(tg.(string))
				if host != "localhost" && host != "127.0.0.1" {
					continue
				}
				addr, ok := st.pl.addrs[self+":"+port]
				if !ok {
					t.Errorf("prometheus job %s scrapes %s: Prometheus does not listen there", job["job_name"], tg)
					continue
				}
				targets[i] = addr
			}
		}
	}
	for _, sc := range cfg["scrape_configs"].([]any) {
		job := sc.(map[string]any)
		dns, ok := job["dns_sd_configs"].([]any)
		if !ok {
			continue
		}
		var targets []any
		for _, d := range dns {
			d := d.(map[string]any)
			for _, n := range d["names"].([]any) {
				ref := fmt.Sprintf("%s:%d", n, d["port"])
				addr, ok := st.pl.addrs[ref]
				if !ok {
					if st.pl.services[n.(string)] {
						t.Errorf("prometheus job %s scrapes %s, where nothing listens (listeners: %v)", job["job_name"], ref, st.pl.listeners())
					} else {
						t.Errorf("prometheus job %s scrapes %s: no such compose service", job["job_name"], ref)
					}
					continue
				}
				if st.pl.loopbackOnly[ref] {
					t.Errorf("prometheus job %s scrapes %s, which listens on its own loopback only", job["job_name"], ref)
				}
				targets = append(targets, addr)
			}
		}
		delete(job, "dns_sd_configs")
		job["static_configs"] = []any{map[string]any{"targets": targets}}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// scrapedServices are the services the mounted Prometheus configuration
// finds, by name and port.
func scrapedServices(t *testing.T, path string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ScrapeConfigs []struct {
			DNS []struct {
				Names []string
				Port  int
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, sc := range cfg.ScrapeConfigs {
		for _, d := range sc.DNS {
			for _, n := range d.Names {
				out[n] = d.Port
			}
		}
	}
	return out
}
