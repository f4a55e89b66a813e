package xdsclient_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"

	"github.com/contentguard/contentguard/internal/polltest"
	"github.com/contentguard/contentguard/sidecar"
	"github.com/contentguard/contentguard/sidecar/xdsclient"
	"github.com/contentguard/contentguard/xds"
)

// policyWith is a policy whose public routes are the given exact paths.
func policyWith(upstream string, paths ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: contentguard.dev/v1\nkind: EdgePolicy\nmetadata: {name: xds-test}\nspec:\n  upstream: {url: %s, timeout: 2s}\n  routes:\n", upstream)
	for _, p := range paths {
		fmt.Fprintf(&b, "    - {name: r%s, match: {path: %s}, auth: none}\n", strings.ReplaceAll(p, "/", "_"), p)
	}
	return b.String()
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// controlPlane is `contentguard xds` in process: it can be stopped and
// started again on the same address, as a restarted process would be.
type controlPlane struct {
	file string
	addr string
	srv  *xds.Server
	stop func()
}

func startControlPlane(t testing.TB, file, addr string) *controlPlane {
	t.Helper()
	src, err := xds.NewSource(file)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := xds.NewServer(xds.ServerOptions{Source: src, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(xds.GRPCServerOptions()...)
	srv.Register(g)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = g.Serve(ln) }()
	go srv.Watch(ctx, 50*time.Millisecond)
	cp := &controlPlane{file: file, addr: ln.Addr().String(), srv: srv}
	cp.stop = func() { cancel(); g.Stop() }
	t.Cleanup(cp.stop)
	return cp
}

// xdsSidecar is `contentguard sidecar --xds ADDR --node ID` in process.
type xdsSidecar struct {
	client *xdsclient.Client
	srv    *sidecar.Server
	url    string
}

func startXDSSidecar(t testing.TB, server, node string) *xdsSidecar {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h, err := xdsclient.NewHandoff(server, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := xdsclient.New(xdsclient.Options{Server: server, NodeID: node, Apply: h.Apply,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
	defer fcancel()
	p, err := h.First(fctx)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sidecar.New(ctx, sidecar.Options{Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := h.Attach(srv); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { _ = srv.Serve(ctx, ln, nil); close(served) }()
	t.Cleanup(func() { cancel(); <-served })
	return &xdsSidecar{client: c, srv: srv, url: "http://" + ln.Addr().String()}
}

func (s *xdsSidecar) status(t testing.TB, path string) int {
	t.Helper()
	resp, err := http.Get(s.url + path)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if !polltest.Until(within, cond) {
		t.Fatalf("not within %s: %s", within, what)
	}
}

// world is an upstream, a policy file allowing /a in front of it, the
// control plane serving the file and a sidecar taking its policy from it.
type world struct {
	up, file string
	cp       *controlPlane
	sc       *xdsSidecar
}

func newWorld(t testing.TB, node string) *world {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hello") }))
	t.Cleanup(up.Close)
	w := &world{up: up.URL, file: filepath.Join(t.TempDir(), "policy.yaml")}
	writeFile(t, w.file, policyWith(w.up, "/a"))
	w.cp = startControlPlane(t, w.file, "127.0.0.1:0")
	w.sc = startXDSSidecar(t, w.cp.addr, node)
	return w
}

// allow rewrites the policy to allow exactly paths.
func (w *world) allow(t testing.TB, paths ...string) {
	writeFile(t, w.file, policyWith(w.up, paths...))
}

// TestChangeIsEnforcedWithinOneSecond: a sidecar takes its policy from the
// control plane; a change of the policy file is enforced by the sidecar
// within one second of the write (the control plane polls the file every
// 50 ms here).
func TestChangeIsEnforcedWithinOneSecond(t *testing.T) {
	w := newWorld(t, "sidecar-1")
	sc, cp := w.sc, w.cp
	if got := sc.status(t, "/a"); got != http.StatusOK {
		t.Fatalf("/a: %d, want 200", got)
	}
	if got := sc.status(t, "/b"); got != http.StatusNotFound {
		t.Fatalf("/b before the change: %d, want 404", got)
	}
	w.allow(t, "/a", "/b")
	waitFor(t, time.Second, "/b allowed after the change", func() bool { return sc.status(t, "/b") == http.StatusOK })
	if got := sc.srv.Policy().Source; !strings.HasPrefix(got, "xds://"+cp.addr+"/") {
		t.Errorf("policy source %q, want the control plane's", got)
	}
}

// TestControlPlaneDownThenRestarted: with the control plane killed the
// sidecar keeps serving its last policy; a control plane restarted on the
// same address with the same policy sends nothing new (the sidecar told it
// the version it has); a change after that is applied: the sidecar is in
// step again.
func TestControlPlaneDownThenRestarted(t *testing.T) {
	w := newWorld(t, "sidecar-2")
	sc, cp := w.sc, w.cp
	waitFor(t, 10*time.Second, "the client to count the first policy", func() bool { return sc.client.Status().Applied == 1 })

	cp.stop()
	waitFor(t, 10*time.Second, "the client to see the control plane gone", func() bool { return !sc.client.Status().Connected })
	for i := 0; i < 5; i++ {
		if got := sc.status(t, "/a"); got != http.StatusOK {
			t.Fatalf("with the control plane down, /a: %d, want 200 (the last policy)", got)
		}
	}

	again := startControlPlane(t, w.file, cp.addr)
	waitFor(t, 10*time.Second, "the client to reconnect", func() bool { return sc.client.Status().Connected })
	if n := sc.client.Status().Applied; n != 1 {
		t.Fatalf("after reconnecting to the same policy the client applied %d policies, want 1", n)
	}
	w.allow(t, "/a", "/c")
	waitFor(t, 10*time.Second, "/c allowed after the restart", func() bool { return sc.status(t, "/c") == http.StatusOK })
	if nodes := again.srv.Nodes(); len(nodes) != 1 || nodes[0].ID != "sidecar-2" || nodes[0].Flavor != xds.FlavorSidecar {
		t.Errorf("the restarted control plane's nodes: %+v", nodes)
	}
}

// TestInvalidPolicyIsNACKed: a policy the sidecar cannot put in force (a
// JWKS file it does not have) is refused: the sidecar NACKs it with the
// reason, which the control plane counts and shows, and keeps the last
// good policy.
func TestInvalidPolicyIsNACKed(t *testing.T) {
	w := newWorld(t, "sidecar-3")
	sc, cp := w.sc, w.cp
	bad := strings.Replace(policyWith(w.up, "/a", "/d"), "  routes:\n", `  auth:
    jwt:
      providers:
        - {name: main, issuer: https://issuer.test, audiences: [api], algorithms: [ES256], jwks: {file: keys/missing-jwks.json}}
  routes:
`, 1)
	writeFile(t, w.file, bad)
	waitFor(t, 10*time.Second, "the control plane to count a NACK", func() bool {
		n := cp.srv.Nodes()
		return len(n) == 1 && n[0].NACKs == 1
	})
	if n := cp.srv.Nodes()[0]; !strings.Contains(n.LastNACK, "missing-jwks.json") {
		t.Errorf("NACK detail %q, want the missing JWKS file named", n.LastNACK)
	}
	if st := sc.client.Status(); st.Refused != 1 || !strings.Contains(st.LastError, "missing-jwks.json") {
		t.Errorf("client status %+v", st)
	}
	// The refusal shows in the metrics, with the policy in force still counted.
	want := `# HELP xds_connected 1 while the sidecar's stream to the xDS control plane is up.
# TYPE xds_connected gauge
xds_connected 1
# HELP xds_updates_total Policies received from the xDS control plane, by result (applied, refused).
# TYPE xds_updates_total counter
xds_updates_total{result="applied"} 1
xds_updates_total{result="refused"} 1
`
	if err := testutil.CollectAndCompare(sc.client.Collector(), strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if got := sc.status(t, "/d"); got != http.StatusNotFound {
		t.Errorf("/d after the refused policy: %d, want 404 (the last good policy)", got)
	}
	// Fixed: the next version flows.
	w.allow(t, "/a", "/d")
	waitFor(t, 10*time.Second, "/d allowed after the fix", func() bool { return sc.status(t, "/d") == http.StatusOK })
}
