package check

import (
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// manifests are one rendered overlay, decoded strictly into k8s.io/api
// types (a field the type does not have fails).
type manifests struct {
	overlay         string
	deployments     []appsv1.Deployment
	statefulSets    []appsv1.StatefulSet
	services        []corev1.Service
	configMaps      map[string]corev1.ConfigMap
	secrets         map[string]corev1.Secret
	serviceAccounts map[string]bool
	namespaces      []corev1.Namespace
	pdbs            []policyv1.PodDisruptionBudget
	hpas            []autoscalingv2.HorizontalPodAutoscaler
	netpols         []networkingv1.NetworkPolicy
}

// workload is a Deployment or StatefulSet, by what the checks need.
type workload struct {
	kind, name string
	selector   *metav1.LabelSelector
	template   corev1.PodTemplateSpec
	claims     []string // a StatefulSet's volume claim templates
}

func (m *manifests) workloads() []workload {
	var out []workload
	for _, d := range m.deployments {
		out = append(out, workload{kind: "Deployment", name: d.Name, selector: d.Spec.Selector, template: d.Spec.Template})
	}
	for _, s := range m.statefulSets {
		w := workload{kind: "StatefulSet", name: s.Name, selector: s.Spec.Selector, template: s.Spec.Template}
		for _, c := range s.Spec.VolumeClaimTemplates {
			w.claims = append(w.claims, c.Name)
		}
		out = append(out, w)
	}
	return out
}

// render builds an overlay with kustomize (sigs.k8s.io/kustomize/api, as
// kubectl -k does) over a copy of deploy/k8s in memory, with keys made by
// `contentguard token keygen` where the base expects the operator's.
func render(t *testing.T, overlay string) *manifests {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	root := inRepo(t, "deploy/k8s")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return mem.WriteFile(filepath.Join("/k8s", strings.TrimPrefix(path, root)), b)
	})
	if err != nil {
		t.Fatal(err)
	}
	keys := t.TempDir()
	if out, err := exec.Command(binary(t), "token", "keygen", "--out", keys).CombinedOutput(); err != nil {
		t.Fatalf("token keygen: %v\n%s", err, out)
	}
	for _, f := range []string{"signing.pem", "jwks.json"} {
		b, err := os.ReadFile(filepath.Join(keys, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := mem.WriteFile("/k8s/base/keys/"+f, b); err != nil {
			t.Fatal(err)
		}
	}
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, "/k8s/overlays/"+overlay)
	if err != nil {
		t.Fatalf("kustomize build deploy/k8s/overlays/%s: %v", overlay, err)
	}
	m := &manifests{overlay: overlay, configMaps: map[string]corev1.ConfigMap{}, secrets: map[string]corev1.Secret{}, serviceAccounts: map[string]bool{}}
	for _, r := range res.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		gvk := r.GetGvk()
		where := fmt.Sprintf("%s %s/%s", overlay, gvk.Kind, r.GetName())
		decode := func(into any) {
			if err := yaml.UnmarshalStrict(y, into); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
		}
		switch gvk.ApiVersion() + "/" + gvk.Kind {
		case "apps/v1/Deployment":
			var d appsv1.Deployment
			decode(&d)
			m.deployments = append(m.deployments, d)
		case "apps/v1/StatefulSet":
			var s appsv1.StatefulSet
			decode(&s)
			m.statefulSets = append(m.statefulSets, s)
		case "v1/Service":
			var s corev1.Service
			decode(&s)
			m.services = append(m.services, s)
		case "v1/ConfigMap":
			var c corev1.ConfigMap
			decode(&c)
			m.configMaps[c.Name] = c
		case "v1/Secret":
			var s corev1.Secret
			decode(&s)
			m.secrets[s.Name] = s
		case "v1/ServiceAccount":
			var s corev1.ServiceAccount
			decode(&s)
			m.serviceAccounts[s.Name] = true
		case "v1/Namespace":
			var n corev1.Namespace
			decode(&n)
			m.namespaces = append(m.namespaces, n)
		case "policy/v1/PodDisruptionBudget":
			var p policyv1.PodDisruptionBudget
			decode(&p)
			m.pdbs = append(m.pdbs, p)
		case "autoscaling/v2/HorizontalPodAutoscaler":
			var h autoscalingv2.HorizontalPodAutoscaler
			decode(&h)
			m.hpas = append(m.hpas, h)
		case "networking.k8s.io/v1/NetworkPolicy":
			var n networkingv1.NetworkPolicy
			decode(&n)
			m.netpols = append(m.netpols, n)
		default:
			t.Errorf("%s: no check knows %s", where, gvk)
		}
		if gvk.Kind != "Namespace" && r.GetNamespace() == "" {
			t.Errorf("%s: no namespace", where)
		}
	}
	return m
}

func selects(t *testing.T, sel *metav1.LabelSelector, l map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatal(err)
	}
	return !s.Empty() && s.Matches(labels.Set(l))
}

// portNumber resolves a port by number or container port name on a pod.
func portNumber(spec corev1.PodSpec, p intstr.IntOrString) (int32, bool) {
	if p.Type == intstr.Int {
		for _, c := range spec.Containers {
			for _, cp := range c.Ports {
				if cp.ContainerPort == p.IntVal {
					return cp.ContainerPort, true
				}
			}
		}
		return p.IntVal, false
	}
	for _, c := range spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == p.StrVal {
				return cp.ContainerPort, true
			}
		}
	}
	return 0, false
}

// isContentguard tells a container of the contentguard image: its entry
// point is the binary, its arguments a command of it.
func isContentguard(t *testing.T, c corev1.Container) bool {
	return len(c.Command) == 0 && len(c.Args) > 0 && commands(t)[c.Args[0]]
}

// TestKubernetesOverlays renders every overlay and checks the manifests
// against each other and against the binary.
func TestKubernetesOverlays(t *testing.T) {
	overlays, err := os.ReadDir(inRepo(t, "deploy/k8s/overlays"))
	if err != nil || len(overlays) < 2 {
		t.Fatalf("overlays: %v", err)
	}
	for _, o := range overlays {
		t.Run(o.Name(), func(t *testing.T) {
			m := render(t, o.Name())
			checkManifests(t, m)
			if o.Name() == "dev" {
				runPods(t, m)
			}
		})
	}
}

func checkManifests(t *testing.T, m *manifests) {
	keeps := k8sScrapeKeeps(t)
	scraped := 0
	roles := map[string]bool{}
	for _, w := range m.workloads() {
		where := w.kind + "/" + w.name
		spec := w.template.Spec
		if !selects(t, w.selector, w.template.Labels) {
			t.Errorf("%s: selector %v does not select its own pods %v", where, w.selector, w.template.Labels)
		}
		if sa := spec.ServiceAccountName; sa != "" && !m.serviceAccounts[sa] {
			t.Errorf("%s: service account %s does not exist", where, sa)
		}
		podNonRoot := spec.SecurityContext != nil && spec.SecurityContext.RunAsNonRoot != nil && *spec.SecurityContext.RunAsNonRoot
		volumes := map[string]corev1.Volume{}
		for _, v := range spec.Volumes {
			volumes[v.Name] = v
			checkVolume(t, m, where, v)
		}
		for _, c := range w.claims {
			volumes[c] = corev1.Volume{Name: c}
		}
		for _, c := range spec.Containers {
			cw := where + " container " + c.Name
			sc := c.SecurityContext
			if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil ||
				!*sc.ReadOnlyRootFilesystem || (sc.Privileged != nil && *sc.Privileged) || sc.Capabilities == nil ||
				len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
				t.Errorf("%s: securityContext %+v: want no privilege escalation, a read-only root, no capabilities", cw, sc)
			}
			if !podNonRoot && (sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) {
				t.Errorf("%s: not runAsNonRoot", cw)
			}
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if _, ok := c.Resources.Requests[r]; !ok {
					t.Errorf("%s: no %s request", cw, r)
				}
				if _, ok := c.Resources.Limits[r]; !ok {
					t.Errorf("%s: no %s limit", cw, r)
				}
			}
			if c.LivenessProbe == nil || c.ReadinessProbe == nil {
				t.Errorf("%s: liveness and readiness probes wanted", cw)
			}
			for _, vm := range c.VolumeMounts {
				if _, ok := volumes[vm.Name]; !ok {
					t.Errorf("%s: mounts volume %s, which the pod does not have", cw, vm.Name)
				}
			}
			for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
				if p == nil {
					continue
				}
				var port intstr.IntOrString
				switch {
				case p.HTTPGet != nil:
					port = p.HTTPGet.Port
				case p.TCPSocket != nil:
					port = p.TCPSocket.Port
				default:
					continue
				}
				if _, ok := portNumber(corev1.PodSpec{Containers: []corev1.Container{c}}, port); !ok {
					t.Errorf("%s: a probe asks port %s, which the container does not declare", cw, port.String())
				}
			}
			if !isContentguard(t, c) {
				continue
			}
			role, set := parseArgs(t, cw, c.Args)
			if role == "backend" && set["worker"] == "true" {
				role = "worker"
			}
			roles[role] = true
			env := map[string]string{}
			for _, e := range c.Env {
				env[e.Name] = e.Value
				if _, ok := envVars(t)[e.Name]; !ok {
					t.Errorf("%s: %s: contentguard reads no such variable", cw, e.Name)
				}
			}
			// Declared ports are the listeners of its flags, reachable from
			// the pod's network; a scraped port is one Prometheus keeps.
			r, s := parseArgs(t, cw, c.Args)
			listens := listenFlags(t, r, s, func(k string) string { return env[k] })
			for _, cp := range c.Ports {
				found := false
				for _, addr := range listens {
					h, _, _ := net.SplitHostPort(addr)
					found = found || (portOf(addr) == int(cp.ContainerPort) && h != "127.0.0.1" && h != "localhost")
				}
				if !found {
					t.Errorf("%s: port %s %d: the container does not listen there for the pod network (%v)", cw, cp.Name, cp.ContainerPort, listens)
				}
				if keeps["__meta_kubernetes_pod_container_port_name"].MatchString(cp.Name) &&
					keeps["__meta_kubernetes_pod_label_app_kubernetes_io_part_of"].MatchString(w.template.Labels["app.kubernetes.io/part-of"]) {
					scraped++
				}
			}
		}
	}
	for _, role := range []string{"backend", "worker", "sidecar"} {
		if !roles[role] {
			t.Errorf("no container runs the %s role", role)
		}
	}
	if scraped < 3 {
		t.Errorf("kubernetes.yml keeps %d contentguard ports of these pods; want the sidecar's admin, the backend's and the worker's metrics", scraped)
	}
	checkServices(t, m)
	checkPolicies(t, m)
}

func checkVolume(t *testing.T, m *manifests, where string, v corev1.Volume) {
	t.Helper()
	switch {
	case v.ConfigMap != nil:
		cm, ok := m.configMaps[v.ConfigMap.Name]
		if !ok {
			t.Errorf("%s: volume %s: no ConfigMap %s", where, v.Name, v.ConfigMap.Name)
		}
		for _, it := range v.ConfigMap.Items {
			if _, ok := cm.Data[it.Key]; !ok {
				t.Errorf("%s: volume %s: ConfigMap %s has no key %s", where, v.Name, cm.Name, it.Key)
			}
		}
	case v.Secret != nil:
		s, ok := m.secrets[v.Secret.SecretName]
		if !ok {
			t.Errorf("%s: volume %s: no Secret %s", where, v.Name, v.Secret.SecretName)
		}
		for _, it := range v.Secret.Items {
			if _, ok := s.Data[it.Key]; !ok {
				t.Errorf("%s: volume %s: Secret %s has no key %s", where, v.Name, s.Name, it.Key)
			}
		}
	}
}

// backing is the workload a Service selects.
func (m *manifests) backing(t *testing.T, s corev1.Service) (workload, bool) {
	var found []workload
	for _, w := range m.workloads() {
		if selects(t, &metav1.LabelSelector{MatchLabels: s.Spec.Selector}, w.template.Labels) {
			found = append(found, w)
		}
	}
	if len(found) != 1 {
		return workload{}, false
	}
	return found[0], true
}

func checkServices(t *testing.T, m *manifests) {
	for _, s := range m.services {
		w, ok := m.backing(t, s)
		if !ok {
			t.Errorf("Service %s: its selector %v must select exactly one workload", s.Name, s.Spec.Selector)
			continue
		}
		for _, p := range s.Spec.Ports {
			if _, ok := portNumber(w.template.Spec, p.TargetPort); !ok {
				t.Errorf("Service %s: targetPort %s is no port of %s", s.Name, p.TargetPort.String(), w.name)
			}
		}
	}
	for _, st := range m.statefulSets {
		found := false
		for _, s := range m.services {
			found = found || s.Name == st.Spec.ServiceName
		}
		if !found {
			t.Errorf("StatefulSet %s: serviceName %s is no Service", st.Name, st.Spec.ServiceName)
		}
	}
}

func checkPolicies(t *testing.T, m *manifests) {
	for _, p := range m.pdbs {
		n := 0
		for _, w := range m.workloads() {
			if selects(t, p.Spec.Selector, w.template.Labels) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("PodDisruptionBudget %s selects %d workloads", p.Name, n)
		}
	}
	for _, h := range m.hpas {
		var target *appsv1.Deployment
		for i := range m.deployments {
			if m.deployments[i].Name == h.Spec.ScaleTargetRef.Name && h.Spec.ScaleTargetRef.Kind == "Deployment" {
				target = &m.deployments[i]
			}
		}
		if target == nil {
			t.Errorf("HorizontalPodAutoscaler %s scales %v, which does not exist", h.Name, h.Spec.ScaleTargetRef)
			continue
		}
		for _, metric := range h.Spec.Metrics {
			if metric.Resource == nil {
				continue
			}
			for _, c := range target.Spec.Template.Spec.Containers {
				if _, ok := c.Resources.Requests[metric.Resource.Name]; !ok {
					t.Errorf("HorizontalPodAutoscaler %s scales on %s, which container %s does not request", h.Name, metric.Resource.Name, c.Name)
				}
			}
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas > h.Spec.MaxReplicas {
			t.Errorf("HorizontalPodAutoscaler %s: min %v max %d", h.Name, h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
	}
	// Every pod is covered by a policy, every policy covers pods, every
	// port a policy admits is declared; and the backend's API port, on
	// the pods that run it, is admitted by none: only the sidecar in the
	// same pod reaches it (over loopback, where it listens).
	for _, w := range m.workloads() {
		covered := false
		apiPorts := map[int32]bool{}
		for _, c := range w.template.Spec.Containers {
			if !isContentguard(t, c) {
				continue
			}
			role, set := parseArgs(t, w.name, c.Args)
			if role != "backend" || set["worker"] == "true" {
				continue
			}
			addr := listenFlags(t, role, set, func(string) string { return "" })["listen"]
			if h, _, _ := net.SplitHostPort(addr); h != "127.0.0.1" {
				t.Errorf("%s: the backend listens on %s; behind its sidecar it listens on the pod's loopback", w.name, addr)
			}
			apiPorts[int32(portOf(addr))] = true
		}
		for _, np := range m.netpols {
			if !selects(t, &np.Spec.PodSelector, w.template.Labels) {
				continue
			}
			covered = true
			eachAdmittedPort(t, np, w.name, w.template.Spec, func(_ networkingv1.NetworkPolicyIngressRule, _ string, n int32) {
				if apiPorts[n] {
					t.Errorf("NetworkPolicy %s admits the backend's port %d on %s", np.Name, n, w.name)
				}
			})
			for _, rule := range np.Spec.Ingress {
				for _, from := range rule.From {
					if from.PodSelector == nil || (from.NamespaceSelector != nil) {
						continue
					}
					hits := 0
					for _, other := range m.workloads() {
						if selects(t, from.PodSelector, other.template.Labels) {
							hits++
						}
					}
					if hits == 0 {
						t.Errorf("NetworkPolicy %s admits pods %v, which no workload has", np.Name, from.PodSelector.MatchLabels)
					}
				}
			}
		}
		if !covered {
			t.Errorf("%s: no NetworkPolicy covers its pods", w.name)
		}
	}
}

// eachAdmittedPort calls f for every port an ingress rule of np admits to
// the pods of spec (the workload name), by the port's name or number as
// the rule gives it and its number; a rule that admits every port, or a
// port the pods do not declare, is an error.
func eachAdmittedPort(t *testing.T, np networkingv1.NetworkPolicy, name string, spec corev1.PodSpec, f func(rule networkingv1.NetworkPolicyIngressRule, port string, n int32)) {
	t.Helper()
	for _, rule := range np.Spec.Ingress {
		if len(rule.Ports) == 0 {
			t.Errorf("NetworkPolicy %s admits every port of %s", np.Name, name)
		}
		for _, p := range rule.Ports {
			n, ok := portNumber(spec, *p.Port)
			if !ok {
				t.Errorf("NetworkPolicy %s admits port %s, which %s does not declare", np.Name, p.Port.String(), name)
			}
			f(rule, p.Port.String(), n)
		}
	}
}

// runPods runs the pods of the overlay here: Redis, then each contentguard
// pod's containers with their arguments, environment and mounted
// ConfigMap and Secret files, sharing their pod's loopback; every probe
// must pass and every port Prometheus keeps must serve /metrics.
func runPods(t *testing.T, m *manifests) {
	pl := newPlace(t)
	img := rootImage(t)
	// Services are names; their ports lead to the pods behind them.
	type svcPort struct{ svc, ref string }
	var svcPorts []svcPort
	for _, s := range m.services {
		pl.services[s.Name] = true
		w, _ := m.backing(t, s)
		for _, p := range s.Spec.Ports {
			n, _ := portNumber(w.template.Spec, p.TargetPort)
			svcPorts = append(svcPorts, svcPort{fmt.Sprintf("%s:%d", s.Name, p.Port), fmt.Sprintf("%s:%d", w.name, n)})
		}
	}
	workloads := m.workloads()
	sort.Slice(workloads, func(i, j int) bool { return workloads[i].kind > workloads[j].kind }) // StatefulSets (Redis) first
	// Plan every listener first, then name the Services after them.
	for _, w := range workloads {
		pl.services[w.name] = true
		for _, c := range w.template.Spec.Containers {
			if isContentguard(t, c) {
				planContentguard(t, pl, w.name, c.Args, containerEnv(c))
			} else {
				for _, cp := range c.Ports {
					pl.listen(w.name, fmt.Sprintf(":%d", cp.ContainerPort))
				}
			}
		}
	}
	for _, sp := range svcPorts {
		if addr, ok := pl.addrs[sp.ref]; ok {
			pl.addrs[sp.svc] = addr
		}
	}
	for _, w := range workloads {
		pod := map[int]string{}
		for _, c := range w.template.Spec.Containers {
			where := w.name + "/" + c.Name
			if !isContentguard(t, c) {
				if !strings.HasPrefix(c.Image, "redis:") {
					t.Fatalf("%s: image %s: no test runs it", where, c.Image)
				}
				addr := pl.addrs[fmt.Sprintf("%s:%d", w.name, c.Ports[0].ContainerPort)]
				argv := append([]string{mustLook(t, "redis-server")}, c.Args[1:]...)
				dir := t.TempDir()
				argv = append(argv, "--bind", "127.0.0.1", "--port", strconv.Itoa(portOf(addr)), "--dir", dir, "--save", "")
				for i, a := range argv {
					if a == "/data" {
						argv[i] = dir
					}
				}
				p := start(t, where, argv, nil, dir)
				p.ports[int(c.Ports[0].ContainerPort)] = addr
				p.awaitListening(t)
				for port, a := range p.ports {
					pod[port] = a
				}
				probeAll(t, where, c, pod, []string{"-p", strconv.Itoa(portOf(addr))})
				continue
			}
			// Containers of a pod reach each other on its loopback; the
			// mounted files are written with every name translated.
			pl.local = w.name
			mounts := map[string]string{}
			for _, vm := range c.VolumeMounts {
				mounts[vm.MountPath] = t.TempDir()
				pl.files[vm.MountPath] = mounts[vm.MountPath]
			}
			for _, vm := range c.VolumeMounts {
				writeVolume(t, pl, m, w, vm, mounts[vm.MountPath])
			}
			env := map[string]string{}
			for k, v := range img.Env {
				env[k] = v
			}
			for k, v := range containerEnv(c) {
				env[k] = v
			}
			p := startContentguard(t, pl, w.name, c.Args, env, mounts)
			pl.local = ""
			for port, a := range p.ports {
				pod[port] = a
			}
		}
		for _, c := range w.template.Spec.Containers {
			if isContentguard(t, c) {
				probeAll(t, w.name+"/"+c.Name, c, pod, nil)
				for _, cp := range c.Ports {
					if k8sScrapeKeeps(t)["__meta_kubernetes_pod_container_port_name"].MatchString(cp.Name) {
						waitHTTP(t, w.name+"/"+c.Name+" scrape", "http://"+pod[int(cp.ContainerPort)]+"/metrics")
					}
				}
			}
		}
	}
	// The edge answers through the Service, with the policy of the
	// ConfigMap and the keys of the Secret.
	if r := do(t, &http.Client{Timeout: 10 * time.Second}, "POST", "http://"+pl.addrs["contentguard:80"]+"/api/v1/analyze",
		`{"content":"a b a"}`, "X-API-Key", "demo-api-key"); r.status != 200 {
		t.Fatalf("through the Service: %d %s", r.status, r.body)
	}
}

func mustLook(t *testing.T, name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is needed: %v", name, err)
	}
	return p
}

func containerEnv(c corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	return env
}

// writeVolume writes what a volume mount shows (a ConfigMap's or Secret's
// items) into a directory here.
func writeVolume(t *testing.T, pl *place, m *manifests, w workload, vm corev1.VolumeMount, dir string) {
	t.Helper()
	for _, v := range w.template.Spec.Volumes {
		if v.Name != vm.Name {
			continue
		}
		switch {
		case v.ConfigMap != nil:
			for _, it := range v.ConfigMap.Items {
				text := pl.rewrite(w.name+" ConfigMap "+v.ConfigMap.Name+" "+it.Key, m.configMaps[v.ConfigMap.Name].Data[it.Key])
				if err := os.WriteFile(filepath.Join(dir, it.Path), []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		case v.Secret != nil:
			for _, it := range v.Secret.Items {
				if err := os.WriteFile(filepath.Join(dir, it.Path), m.secrets[v.Secret.SecretName].Data[it.Key], 0o600); err != nil {
					t.Fatal(err)
				}
			}
		default:
			t.Fatalf("%s: volume %s: only ConfigMaps and Secrets run here", w.name, v.Name)
		}
	}
}

// probeAll runs a container's probes against the pod here.
func probeAll(t *testing.T, where string, c corev1.Container, pod map[int]string, execArgs []string) {
	t.Helper()
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
		if p == nil {
			continue
		}
		pw := where + " " + name + " probe"
		switch {
		case p.HTTPGet != nil:
			n, _ := portNumber(corev1.PodSpec{Containers: []corev1.Container{c}}, p.HTTPGet.Port)
			waitHTTP(t, pw, "http://"+pod[int(n)]+p.HTTPGet.Path)
		case p.TCPSocket != nil:
			n, _ := portNumber(corev1.PodSpec{Containers: []corev1.Container{c}}, p.TCPSocket.Port)
			if conn, err := net.DialTimeout("tcp", pod[int(n)], 5*time.Second); err != nil {
				t.Errorf("%s: %v", pw, err)
			} else {
				conn.Close()
			}
		case p.Exec != nil:
			argv := append([]string(nil), p.Exec.Command...)
			if argv[0] == rootImage(t).BinaryPath {
				argv[0] = binary(t)
			} else {
				argv = append([]string{mustLook(t, argv[0])}, append(execArgs, argv[1:]...)...)
			}
			for i, a := range argv {
				argv[i] = regexp.MustCompile(`127\.0\.0\.1:(\d+)`).ReplaceAllStringFunc(a, func(m string) string {
					real, ok := pod[portOf(m)]
					if !ok {
						t.Errorf("%s: %s asks port %d, where nothing in the pod listens", pw, a, portOf(m))
					}
					return real
				})
			}
			waitCommand(t, pw, argv, cleanEnv())
		}
	}
}

// waitHTTP waits for a 2xx answer from url.
func waitHTTP(t *testing.T, what, url string) {
	t.Helper()
	status := 0
	if !until(30, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		status = resp.StatusCode
		return status/100 == 2
	}) {
		t.Errorf("%s: GET %s: %d", what, url, status)
	}
}
