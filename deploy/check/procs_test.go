package check

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/contentguard/contentguard/backend/host"
	"github.com/contentguard/contentguard/internal/polltest"
	"github.com/contentguard/contentguard/internal/syncbuf"
)

// Deployment files run here without Docker or Kubernetes: each process a
// file describes runs as the file says — the same command, flags,
// environment and mounted files — with two translations, both recorded in
// a place: a listen address becomes a free loopback port, and every name a
// file uses for another process ("redis:6379", a mounted path) becomes
// where that process or file really is. A name nothing answers to fails
// the test: that is the check that a file refers to nothing the code does
// not have.

// until polls cond for up to seconds seconds.
func until(seconds int, cond func() bool) bool {
	return polltest.Until(time.Duration(seconds)*time.Second, cond)
}

// place maps the names of one deployment to what runs here.
type place struct {
	t testing.TB
	// addrs maps "service:port" to the "127.0.0.1:port" of its listener.
	addrs map[string]string
	// loopbackOnly lists the "service:port" listeners bound to their own
	// loopback: reachable from their container or pod only.
	loopbackOnly map[string]bool
	// services are the names other processes may use for a process.
	services map[string]bool
	// files maps a path inside a container to the file or directory here.
	files map[string]string
	// aliases maps fixed addresses on a deployment's network to this
	// machine's loopback.
	aliases map[string]string
	dir     string
	mounts  int
	// local, when set, is the pod whose containers share a loopback:
	// 127.0.0.1:port and localhost:port name its listeners.
	local string
}

func newPlace(t testing.TB) *place {
	return &place{t: t, addrs: map[string]string{}, loopbackOnly: map[string]bool{}, services: map[string]bool{},
		files: map[string]string{}, aliases: map[string]string{}, dir: t.TempDir()}
}

// serviceRef matches "name:port" with a name the place knows.
func (pl *place) serviceRef() *regexp.Regexp {
	var names []string
	for n := range pl.services {
		names = append(names, regexp.QuoteMeta(n))
	}
	sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })
	if len(names) == 0 {
		return regexp.MustCompile(`^\b$`)
	}
	return regexp.MustCompile(`\b(` + strings.Join(names, "|") + `):([0-9]+)\b`)
}

// rewrite translates s, found in where: every service:port to the address
// here (one no listener has fails the test), every mounted path to its
// file here.
func (pl *place) rewrite(where, s string) string {
	pl.t.Helper()
	// The pod's own loopback first: what the rest produces is final.
	if pl.local != "" {
		s = regexp.MustCompile(`\b(127\.0\.0\.1|localhost):([0-9]+)\b`).ReplaceAllStringFunc(s, func(ref string) string {
			addr, ok := pl.addrs[pl.local+":"+strconv.Itoa(portOf(ref))]
			if !ok {
				pl.t.Errorf("%s: %s: nothing in pod %s listens there", where, ref, pl.local)
				return ref
			}
			return addr
		})
	}
	s = pl.serviceRef().ReplaceAllStringFunc(s, func(ref string) string {
		addr, ok := pl.addrs[ref]
		if !ok {
			pl.t.Errorf("%s: %q names %s, where nothing listens (listeners: %v)", where, s, ref, pl.listeners())
			return ref
		}
		if pl.loopbackOnly[ref] {
			pl.t.Errorf("%s: %q names %s, which listens on its own loopback only", where, s, ref)
		}
		return addr
	})
	// Longest container paths first: /etc/a/b before /etc/a.
	var paths []string
	for p := range pl.files {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	for _, p := range paths {
		s = strings.ReplaceAll(s, p, pl.files[p])
	}
	for from, to := range pl.aliases {
		s = strings.ReplaceAll(s, from, to)
	}
	return s
}

func (pl *place) listeners() []string {
	var l []string
	for k := range pl.addrs {
		l = append(l, k)
	}
	sort.Strings(l)
	return l
}

// freeAddr is a loopback address with a port the kernel had free a moment
// ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is one process of a deployment, running here.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *syncbuf.Buffer
	// ports maps the port the file names to the address here.
	ports  map[int]string
	exited chan struct{}
}

// stop ends the process (SIGTERM, then SIGKILL after 15s) and waits.
func (p *proc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// start runs argv with env (on top of a clean environment) until cleanup.
func start(t testing.TB, name string, argv []string, env map[string]string, dir string) *proc {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = cleanEnv()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Dir = dir
	p := &proc{name: name, cmd: cmd, log: &syncbuf.Buffer{}, ports: map[int]string{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: start %v: %v", name, argv, err)
	}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("--- %s (%s):\n%s", name, strings.Join(argv, " "), tail(p.log.String(), 4000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// awaitListening waits until every address of p accepts connections.
func (p *proc) awaitListening(t testing.TB) {
	t.Helper()
	for port, addr := range p.ports {
		ok := until(60, func() bool {
			select {
			case <-p.exited:
				return true
			default:
			}
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
		select {
		case <-p.exited:
			t.Fatalf("%s exited: %s", p.name, tail(p.log.String(), 4000))
		default:
		}
		if !ok {
			t.Fatalf("%s does not listen on %s (its port %d):\n%s", p.name, addr, port, tail(p.log.String(), 4000))
		}
	}
}

// listenFlags are the listeners `contentguard role` opens with the flags
// set and the environment env, by flag name: the flag's value when set,
// else its default, for the flags whose value is a listen address; the
// backend's API address comes from host.Detect, as the binary computes it.
// Which flags listen in which mode is what backend.go and sidecar.go do.
func listenFlags(t testing.TB, role string, set map[string]string, env func(string) string) map[string]string {
	t.Helper()
	fs := flags(t, role)
	value := func(name string) string {
		if v, ok := set[name]; ok {
			return v
		}
		return fs[name].Default
	}
	out := map[string]string{}
	switch role {
	case "sidecar":
		for _, name := range []string{"listen", "admin", "authz", "ext-authz"} {
			if v := value(name); v != "" {
				out[name] = v
			}
		}
	case "xds":
		for _, name := range []string{"listen", "admin"} {
			if v := value(name); v != "" {
				out[name] = v
			}
		}
	case "backend":
		metrics := value("metrics-listen")
		if m := env("METRICS_LISTEN"); m != "" {
			if _, ok := set["metrics-listen"]; !ok {
				metrics = m
			}
		}
		if set["worker"] == "true" {
			if metrics != "" {
				out["metrics-listen"] = metrics
			}
			break
		}
		if mode, addr := host.Detect(set["listen"], env); mode != host.ModeLambda {
			out["listen"] = addr
		}
		if _, ok := set["metrics-listen"]; ok || env("METRICS_LISTEN") != "" {
			out["metrics-listen"] = metrics
		}
	}
	for name, addr := range out {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			t.Fatalf("contentguard %s --%s %q is not a listen address: %v", role, name, addr, err)
		}
	}
	return out
}

// startContentguard runs `contentguard args...` as the service name of pl
// with env: its listeners on free loopback ports (recorded as name:port in
// pl), every other reference translated by pl. mounts maps container paths
// to files here, for this process only.
func startContentguard(t testing.TB, pl *place, name string, args []string, env map[string]string, mounts map[string]string) *proc {
	t.Helper()
	where := name
	for c, h := range mounts {
		pl.files[c] = h
	}
	defer func() {
		for c := range mounts {
			delete(pl.files, c)
		}
	}()
	role, set := parseArgs(t, where, args)
	getenv := func(k string) string { return env[k] }
	listeners := listenFlags(t, role, set, getenv)
	newEnv := map[string]string{}
	for k, v := range env {
		if _, read := envVars(t)[k]; !read {
			t.Errorf("%s: environment variable %s: contentguard reads no such variable", where, k)
		}
		newEnv[k] = pl.rewrite(where+" env "+k, v)
	}
	ports := map[int]string{}
	for flagName, addr := range listeners {
		port, real := pl.listen(name, addr)
		if port == 0 {
			t.Fatalf("%s: --%s %s: a deployment needs a fixed port", where, flagName, addr)
		}
		ports[port] = real
		set[flagName] = real
	}
	argv := []string{binary(t), role}
	var names []string
	for k := range set {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := set[k]
		if _, listener := listeners[k]; !listener {
			v = pl.rewrite(where+" --"+k, v)
		}
		argv = append(argv, "--"+k+"="+v)
	}
	delete(newEnv, "METRICS_LISTEN") // its listener is the --metrics-listen above
	if _, ok := newEnv["PORT"]; ok && role == "backend" {
		delete(newEnv, "PORT") // its listener is the --listen above
	}
	p := start(t, name, argv, newEnv, pl.dir)
	p.ports = ports
	p.awaitListening(t)
	return p
}

// listen gives the listener addr of service name an address here (the
// same one each time it is asked) and returns its port and that address.
func (pl *place) listen(name, addr string) (int, string) {
	h, p, err := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)
	if err != nil || port == 0 {
		return 0, ""
	}
	ref := fmt.Sprintf("%s:%d", name, port)
	if real, ok := pl.addrs[ref]; ok {
		return port, real
	}
	real := pl.freeAddr()
	pl.addrs[ref] = real
	if h == "127.0.0.1" || h == "localhost" || h == "::1" {
		pl.loopbackOnly[ref] = true
	}
	return port, real
}

// freeAddr is a free loopback address that this place has not handed out
// yet. Every listener is planned before any process binds, and the kernel
// may offer a port it just freed again: two services on one port would
// fail a run by chance (it did: Redis and a sidecar's admin API).
func (pl *place) freeAddr() string {
	pl.t.Helper()
	taken := map[string]bool{}
	for _, a := range pl.addrs {
		taken[a] = true
	}
	for range 100 {
		if a := freeAddr(pl.t); !taken[a] {
			return a
		}
	}
	pl.t.Fatal("no free loopback port the place has not handed out")
	return ""
}

// planContentguard gives the listeners of `contentguard args...` run as
// service name their addresses here before anything starts, so that
// services may name each other in any order.
func planContentguard(t testing.TB, pl *place, name string, args []string, env map[string]string) {
	t.Helper()
	role, set := parseArgs(t, name, args)
	for _, addr := range listenFlags(t, role, set, func(k string) string { return env[k] }) {
		pl.listen(name, addr)
	}
}

// mountFile copies the file src (rewritten by pl) into pl's directory and
// returns the copy's path.
func (pl *place) mountFile(where, src string) string {
	pl.t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		pl.t.Fatalf("%s: %v", where, err)
	}
	pl.mounts++
	dst := filepath.Join(pl.dir, "mounts", fmt.Sprint(pl.mounts), filepath.Base(src))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		pl.t.Fatal(err)
	}
	if err := os.WriteFile(dst, []byte(pl.rewrite(where, string(b))), 0o644); err != nil {
		pl.t.Fatal(err)
	}
	return dst
}
