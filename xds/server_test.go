package xds

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/contentguard/contentguard/internal/grpctest"
	"github.com/contentguard/contentguard/internal/polltest"
	"github.com/contentguard/contentguard/xds/policypb"
)

// policyDoc is a small valid policy; upstream and timeout vary by test.
func policyDoc(name, upstream, timeout string) string {
	return fmt.Sprintf(`apiVersion: contentguard.dev/v1
kind: EdgePolicy
metadata: {name: %s}
spec:
  upstream: {url: %s, timeout: %s}
  routes:
    - name: all
      match: {pathPrefix: /}
      auth: none
`, name, upstream, timeout)
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	// Write beside and rename, as editors and ConfigMaps do: a reader never
	// sees half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

type plane struct {
	srv  *Server
	addr string
	reg  *prometheus.Registry
}

// startPlane serves the policy file or directory at path over ADS on a
// loopback port.
func startPlane(t testing.TB, path string) *plane {
	t.Helper()
	return startPlaneWith(t, path, ServerOptions{})
}

// startPlaneWith is startPlane with opts, whose Source, Registry and Logger
// it sets.
func startPlaneWith(t testing.TB, path string, opts ServerOptions) *plane {
	t.Helper()
	src, err := NewSource(path)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	opts.Source, opts.Registry, opts.Logger = src, reg, slog.New(slog.DiscardHandler)
	srv, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	return &plane{srv: srv, addr: grpctest.Serve(t, "", srv.Register), reg: reg}
}

// reload reads the source again and pushes what changed, as Watch does.
func (p *plane) reload(t testing.TB) {
	t.Helper()
	if _, err := p.srv.opts.Source.Load(); err != nil {
		t.Fatal(err)
	}
	p.srv.Refresh()
}

func dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !polltest.Until(10*time.Second, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// adsClient is an ADS client of the plane, its streams bounded by the test.
func adsClient(t testing.TB, pl *plane) (discovery.AggregatedDiscoveryServiceClient, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return discovery.NewAggregatedDiscoveryServiceClient(dial(t, pl.addr)), ctx
}

// planeFor serves a policy file holding doc; it returns the file too.
func planeFor(t testing.TB, doc string) (*plane, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, file, doc)
	return startPlane(t, file), file
}

func recvSotw(t testing.TB, s discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient) *discovery.DiscoveryResponse {
	t.Helper()
	resp, err := s.Recv()
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	return resp
}

// TestNACKIsParkedUntilTheNextVersion: a node rejects a version (State of
// the World). go-control-plane's cache alone would send the same version
// straight back, and again after every NACK; the server logs and counts
// the NACK once, with its error detail, and the next message the node gets
// is the next version.
func TestNACKIsParkedUntilTheNextVersion(t *testing.T) {
	pl, file := planeFor(t, policyDoc("demo", "http://127.0.0.1:8081", "2s"))
	client, ctx := adsClient(t, pl)
	stream, err := client.StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := &core.Node{Id: "envoy-1", UserAgentName: "envoy"}
	if err := stream.Send(&discovery.DiscoveryRequest{Node: node, TypeUrl: resource.ClusterType}); err != nil {
		t.Fatal(err)
	}
	first := recvSotw(t, stream)
	if len(first.GetResources()) != 2 {
		t.Fatalf("got %d clusters, want the upstream and ext_authz", len(first.GetResources()))
	}
	nack := &discovery.DiscoveryRequest{TypeUrl: resource.ClusterType, ResponseNonce: first.GetNonce(),
		ErrorDetail: &statuspb.Status{Code: 3, Message: "cluster contentguard_upstream: bad connect_timeout"}}
	if err := stream.Send(nack); err != nil {
		t.Fatal(err)
	}
	nacks := pl.srv.m.nacks.WithLabelValues("Cluster")
	waitFor(t, "the NACK to be counted", func() bool { return testutil.ToFloat64(nacks) == 1 })

	// The next version: a longer timeout changes the clusters' connect
	// timeout.
	writeFile(t, file, policyDoc("demo", "http://127.0.0.1:8081", "3s"))
	pl.reload(t)
	next := recvSotw(t, stream)
	if next.GetVersionInfo() == first.GetVersionInfo() {
		t.Fatalf("after the NACK the node got version %s again, want the next one", next.GetVersionInfo())
	}
	if got := testutil.ToFloat64(nacks); got != 1 {
		t.Errorf("NACKs counted: %v, want 1", got)
	}
	nodes := pl.srv.Nodes()
	if len(nodes) != 1 || nodes[0].NACKs != 1 || !strings.Contains(nodes[0].LastNACK, "bad connect_timeout") {
		t.Errorf("node status %+v: want one NACK with its error detail", nodes)
	}
	// ACK the next version: nothing more is counted.
	if err := stream.Send(&discovery.DiscoveryRequest{TypeUrl: resource.ClusterType, VersionInfo: next.GetVersionInfo(), ResponseNonce: next.GetNonce()}); err != nil {
		t.Fatal(err)
	}
}

func recvDelta(t testing.TB, s discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesClient) *discovery.DeltaDiscoveryResponse {
	t.Helper()
	resp, err := s.Recv()
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	return resp
}

// TestHotReloadDeltaAndBadFile: a sidecar subscribed over Delta gets the
// policy; a change to the file is pushed as a new version; a bad file keeps
// the last good policy and says why (log, metric, /admin/xds); fixing it
// pushes again.
func TestHotReloadDeltaAndBadFile(t *testing.T) {
	pl, file := planeFor(t, policyDoc("demo", "http://127.0.0.1:8081", "2s"))
	stream := sidecarStream(t, pl, "sidecar-1")
	first := recvDelta(t, stream)
	doc := policyOf(t, first)
	if !strings.Contains(string(doc.GetDocument()), "timeout: 2s") || doc.GetName() != "demo" {
		t.Fatalf("first policy: %q", doc.GetDocument())
	}
	ack := func(r *discovery.DeltaDiscoveryResponse) {
		if err := stream.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: policypb.TypeURL, ResponseNonce: r.GetNonce()}); err != nil {
			t.Fatal(err)
		}
	}
	ack(first)

	// A bad file: refused, said so three ways, last good kept.
	writeFile(t, file, strings.Replace(policyDoc("demo", "http://127.0.0.1:8081", "2s"), "auth: none", "auth: nobody", 1))
	pl.reload(t)
	if got := testutil.ToFloat64(pl.srv.m.sourceErrors); got != 1 {
		t.Errorf("%s = %v, want 1", MetricPolicyErrors, got)
	}
	pl.reload(t) // the same bad document again: not counted twice
	if got := testutil.ToFloat64(pl.srv.m.sourceErrors); got != 1 {
		t.Errorf("%s = %v after reading the same bad file again, want 1", MetricPolicyErrors, got)
	}
	rec := httptest.NewRecorder()
	pl.srv.AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/admin/xds", nil))
	var admin struct {
		Policies []struct{ Hash string } `json:"policies"`
		Refused  []struct{ File, Error string }
		Nodes    []NodeStatus
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &admin); err != nil {
		t.Fatal(err)
	}
	if len(admin.Refused) != 1 || !strings.Contains(admin.Refused[0].Error, "spec.routes[0].auth") {
		t.Errorf("/admin/xds refused = %+v, want the file with its error", admin.Refused)
	}
	if len(admin.Policies) != 1 || admin.Policies[0].Hash != doc.GetSha256() {
		t.Errorf("/admin/xds policies = %+v, want the last good one (%s)", admin.Policies, doc.GetSha256())
	}

	// Fixed: the new version is pushed.
	writeFile(t, file, policyDoc("demo", "http://127.0.0.1:8081", "5s"))
	pl.reload(t)
	next := recvDelta(t, stream)
	if got := policyOf(t, next); !strings.Contains(string(got.GetDocument()), "timeout: 5s") {
		t.Fatalf("after the fix: %q", got.GetDocument())
	}
	if testutil.ToFloat64(pl.srv.m.sourceInvalid) != 0 {
		t.Errorf("%s still counts the fixed file", MetricPolicyInvalid)
	}
}

// sidecarStream subscribes to the policy over Delta as contentguard's
// sidecar node id does.
func sidecarStream(t testing.TB, pl *plane, id string) discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesClient {
	t.Helper()
	client, ctx := adsClient(t, pl)
	stream, err := client.DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := &core.Node{Id: id, UserAgentName: SidecarUserAgent}
	if err := stream.Send(&discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: policypb.TypeURL}); err != nil {
		t.Fatal(err)
	}
	return stream
}

func policyOf(t testing.TB, r *discovery.DeltaDiscoveryResponse) *policypb.Policy {
	t.Helper()
	if len(r.GetResources()) != 1 {
		t.Fatalf("got %d resources, want the one policy", len(r.GetResources()))
	}
	p := &policypb.Policy{}
	if err := r.GetResources()[0].GetResource().UnmarshalTo(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDeltaPushesOnlyWhatChanged: an Envoy node over Delta; a change of the
// policy's security headers changes the route configuration only, and that
// is all the next response carries.
func TestDeltaPushesOnlyWhatChanged(t *testing.T) {
	doc := policyDoc("demo", "http://127.0.0.1:8081", "2s")
	pl, file := planeFor(t, doc)
	client, ctx := adsClient(t, pl)
	stream, err := client.DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := &core.Node{Id: "envoy-delta", UserAgentName: "envoy"}
	for _, typ := range []string{resource.ClusterType, resource.RouteType} {
		req := &discovery.DeltaDiscoveryRequest{TypeUrl: typ}
		if typ == resource.ClusterType {
			req.Node = node
		}
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]*discovery.DeltaDiscoveryResponse{}
	for len(seen) < 2 {
		r := recvDelta(t, stream)
		seen[r.GetTypeUrl()] = r
		if err := stream.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: r.GetTypeUrl(), ResponseNonce: r.GetNonce()}); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, file, strings.Replace(doc, "  routes:", "  securityHeaders: {X-Frame-Options: SAMEORIGIN}\n  routes:", 1))
	pl.reload(t)
	r := recvDelta(t, stream)
	if r.GetTypeUrl() != resource.RouteType || len(r.GetResources()) != 1 || len(r.GetRemovedResources()) != 0 {
		t.Fatalf("after a header change got %s with %d resources (%d removed), want the one route configuration",
			r.GetTypeUrl(), len(r.GetResources()), len(r.GetRemovedResources()))
	}
	rc := &route.RouteConfiguration{}
	if err := r.GetResources()[0].GetResource().UnmarshalTo(rc); err != nil {
		t.Fatal(err)
	}
	if h := rc.GetResponseHeadersToAdd(); len(h) != 1 || h[0].GetHeader().GetValue() != "SAMEORIGIN" {
		t.Errorf("route headers %v, want X-Frame-Options: SAMEORIGIN", h)
	}
}

// TestDirectoryMapsNodesToPolicies: a node gets DIR/<id>.yaml, else
// DIR/<cluster>.yaml, else DIR/default.yaml.
func TestDirectoryMapsNodesToPolicies(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "default.yaml"), policyDoc("fallback", "http://127.0.0.1:8081", "2s"))
	writeFile(t, filepath.Join(dir, "billing.yaml"), policyDoc("billing", "http://127.0.0.1:8082", "2s"))
	writeFile(t, filepath.Join(dir, "sidecar-7.yaml"), policyDoc("seven", "http://127.0.0.1:8083", "2s"))
	writeFile(t, filepath.Join(dir, "README.md"), "not a policy")
	pl := startPlane(t, dir)
	for _, c := range []struct{ id, cluster, want string }{
		{"sidecar-7", "billing", "seven"},
		{"sidecar-8", "billing", "billing"},
		{"sidecar-9", "search", "fallback"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		stream, err := discovery.NewAggregatedDiscoveryServiceClient(dial(t, pl.addr)).DeltaAggregatedResources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		node := &core.Node{Id: c.id, Cluster: c.cluster, UserAgentName: SidecarUserAgent}
		if err := stream.Send(&discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: policypb.TypeURL}); err != nil {
			t.Fatal(err)
		}
		if got := policyOf(t, recvDelta(t, stream)).GetName(); got != c.want {
			t.Errorf("node %s of cluster %s got policy %q, want %q", c.id, c.cluster, got, c.want)
		}
		cancel()
	}
}

// TestStreamsEndWithTheContext: when ServerOptions.Context is done, the open
// State of the World and Delta streams end (the node sees the stream end
// and reconnects elsewhere), so that GracefulStop returns at once:
// `contentguard xds` used to wait out its 5 s bound on every stop while a
// node was connected.
func TestStreamsEndWithTheContext(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, file, policyDoc("demo", "http://127.0.0.1:8081", "2s"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pl := startPlaneWith(t, file, ServerOptions{Context: ctx})
	delta := sidecarStream(t, pl, "sidecar-1")
	recvDelta(t, delta)
	client, sctx := adsClient(t, pl)
	sotw, err := client.StreamAggregatedResources(sctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := sotw.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: "envoy-1", UserAgentName: "envoy"}, TypeUrl: resource.ClusterType}); err != nil {
		t.Fatal(err)
	}
	recvSotw(t, sotw)
	cancel()
	// Each Recv is bounded by the test's stream context (30 s): a stream
	// that does not end fails with DeadlineExceeded, not EOF.
	if _, err := delta.Recv(); err != io.EOF {
		t.Errorf("delta stream after the context ended: %v, want EOF", err)
	}
	if _, err := sotw.Recv(); err != io.EOF {
		t.Errorf("State of the World stream after the context ended: %v, want EOF", err)
	}
}
