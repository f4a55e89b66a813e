package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bootstrap "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	accesslogdata "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/contentguard/contentguard/conformance"
	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/internal/syncbuf"
	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/sidecar/extauthz"
	"github.com/contentguard/contentguard/sidecar/xdsclient"
	"github.com/contentguard/contentguard/xds"
	"github.com/contentguard/contentguard/xds/policypb"
)

// startProcess runs the test binary as contentguard with args until the
// test ends (SIGTERM, then it must exit 0).
func startProcess(t *testing.T, args ...string) *syncbuf.Buffer {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "CG_RUN_MAIN=1")
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s exited: %v\n%s", args[0], err, stderr.String())
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("%s did not stop on SIGTERM\n%s", args[0], stderr.String())
		}
	})
	return &stderr
}

// TestXDSAndSidecarCommands runs `contentguard xds --policy FILE --listen
// ADDR` and `contentguard sidecar --xds ADDR --node ID --ext-authz ADDR` as
// processes: the sidecar takes its policy from the control plane and
// enforces it as a proxy and through ext_authz; a change of the file
// reaches both.
func TestXDSAndSidecarCommands(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "upstream "+r.URL.Path) }))
	defer up.Close()
	file := filepath.Join(t.TempDir(), "policy.yaml")
	write := func(paths ...string) {
		doc := "apiVersion: contentguard.dev/v1\nkind: EdgePolicy\nmetadata: {name: cmd-xds}\nspec:\n  upstream: {url: " + up.URL + ", timeout: 5s}\n  routes:\n"
		for _, p := range paths {
			doc += "    - {name: r" + strings.TrimPrefix(p, "/") + ", match: {path: " + p + "}, auth: none}\n"
		}
		if err := os.WriteFile(file+".tmp", []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file+".tmp", file); err != nil {
			t.Fatal(err)
		}
	}
	write("/a")
	// Every address is port 0; the processes' logs say what they bound.
	cpLog := startProcess(t, "xds", "--policy", file, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--watch-interval", "100ms")
	xdsAddr := logField(t, cpLog, "serving xDS", "listen")
	xdsAdmin := logField(t, cpLog, "serving the xds admin API", "addr")
	scLog := startProcess(t, "sidecar", "--xds", xdsAddr, "--node", "pod-1", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--ext-authz", "127.0.0.1:0")
	listen := logField(t, scLog, "starting sidecar", "listen")
	authz := logField(t, scLog, "serving Envoy ext_authz and access-log services", "addr")
	scAdmin := logField(t, scLog, "starting sidecar", "admin")

	client := &http.Client{Timeout: 5 * time.Second}
	get := func(url string) int {
		resp, err := client.Get(url)
		if err != nil {
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	waitUntil(t, func() bool { return get("http://"+listen+"/a") == http.StatusOK })
	if got := get("http://" + listen + "/b"); got != http.StatusNotFound {
		t.Fatalf("/b: %d, want 404\nsidecar: %s\nxds: %s", got, scLog.String(), cpLog.String())
	}

	conn, err := grpc.NewClient(authz, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	check := func(path string) int {
		code, err := extAuthzCheck(conn, path)
		if err != nil {
			t.Fatalf("Check %s: %v", path, err)
		}
		return code
	}
	if a, c := check("/a"), check("/c"); a != 200 || c != 404 {
		t.Fatalf("ext_authz: /a %d, /c %d; want 200, 404", a, c)
	}

	write("/a", "/c")
	waitUntil(t, func() bool { return get("http://"+listen+"/c") == http.StatusOK })
	if got := check("/c"); got != 200 {
		t.Fatalf("ext_authz after the change: /c %d, want 200", got)
	}

	// The sidecar says how its subscription stands, as JSON and as metrics.
	var sub xdsclient.Status
	waitUntil(t, func() bool {
		resp, err := client.Get("http://" + scAdmin + "/admin/xds")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&sub) == nil && sub.Applied == 2
	})
	if sub.Server != xdsAddr || sub.Node != "pod-1" || !sub.Connected || sub.Refused != 0 || sub.Resource == "" || sub.Version == "" {
		t.Fatalf("sidecar /admin/xds = %+v", sub)
	}
	resp, err := client.Get("http://" + scAdmin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	metrics := string(body)
	for _, want := range []string{"xds_connected 1\n", `xds_updates_total{result="applied"} 2` + "\n", `xds_updates_total{result="refused"} 0` + "\n"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("sidecar /metrics lacks %q", want)
		}
	}

	resp, err = client.Get("http://" + xdsAdmin + "/admin/xds")
	if err != nil {
		t.Fatal(err)
	}
	var state struct{ Nodes []xds.NodeStatus }
	err = json.NewDecoder(resp.Body).Decode(&state)
	resp.Body.Close()
	if err != nil || len(state.Nodes) != 1 || state.Nodes[0].ID != "pod-1" || state.Nodes[0].Flavor != xds.FlavorSidecar {
		t.Fatalf("/admin/xds nodes %+v (%v)", state.Nodes, err)
	}
}

// extAuthzCheck asks the ext_authz service on conn about GET path as Envoy
// would for a client at 192.0.2.7: 200 when the request is allowed, else the
// status Envoy answers with.
func extAuthzCheck(conn *grpc.ClientConn, path string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &core.Address{Address: &core.Address_SocketAddress{
			SocketAddress: &core.SocketAddress{Address: "192.0.2.7", PortSpecifier: &core.SocketAddress_PortValue{PortValue: 40000}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: path, Host: "api.test", Scheme: "http", Headers: map[string]string{"user-agent": "test"}}},
	}})
	if err != nil {
		return 0, err
	}
	if resp.GetOkResponse() != nil {
		return http.StatusOK, nil
	}
	return int(resp.GetDeniedResponse().GetStatus().GetCode()), nil
}

// TestPolicyEnvoy: `contentguard policy envoy --policy FILE` prints a
// bootstrap that decodes with Envoy's protos and passes ValidateAll, every
// packed message included; a policy Envoy cannot enforce is refused with
// the field named.
func TestPolicyEnvoy(t *testing.T) {
	code, out, errs := runCLI(t, "policy", "envoy", "--policy", filepath.Join(conformance.Dir(), "policies", "standard.yaml"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	b := &bootstrap.Bootstrap{}
	if err := xds.DecodeYAML([]byte(out), b); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if err := xds.Validate(b); err != nil {
		t.Fatal(err)
	}
	if n := len(b.GetStaticResources().GetListeners()); n != 1 {
		t.Fatalf("%d listeners", n)
	}
	bad := filepath.Join(t.TempDir(), "issuer.yaml")
	doc := `apiVersion: contentguard.dev/v1
kind: EdgePolicy
metadata: {name: with-issuer}
spec:
  upstream: {url: "http://127.0.0.1:8081"}
  tokenIssuer: {issuer: https://x.test, audience: api, signingKey: {file: key.pem}}
  routes: [{name: all, match: {pathPrefix: /}, auth: none}]
`
	if err := os.WriteFile(bad, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runCLI(t, "policy", "envoy", "--policy", bad); code != 1 || !strings.Contains(errs, "spec.tokenIssuer") {
		t.Fatalf("unenforceable policy: exit %d, %q", code, errs)
	}
}

// TestExtAuthzStopEndsLogStreams: stopping the ext_authz service (the
// sidecar's SIGTERM) ends Envoy's access-log stream with the service's
// response. Envoy never ends that stream: GracefulStop waited for it for
// 5 s and then cut the connection, and Envoy saw Unavailable.
func TestExtAuthzStopEndsLogStreams(t *testing.T) {
	p, err := policy.DecodeJSON([]byte(`{"apiVersion":"contentguard.dev/v1","kind":"EdgePolicy","metadata":{"name":"t"},
		"spec":{"upstream":{"url":"http://127.0.0.1:1"},"routes":[{"name":"all","match":{"pathPrefix":"/"},"auth":"none"}]}}`), "t.json")
	if err != nil {
		t.Fatal(err)
	}
	e, err := edge.New(context.Background(), p, edge.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	reg := prometheus.NewRegistry()
	addr, stop, err := serveExtAuthz(context.Background(), "127.0.0.1:0", func() *edge.Engine { return e }, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	logs, err := accesslogv3.NewAccessLogServiceClient(conn).StreamAccessLogs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// An entry nobody awaits: once the service counts it, the stream is
	// the service's (a stop before that would refuse a stream it never had).
	if err := logs.Send(&accesslogv3.StreamAccessLogsMessage{
		Identifier: &accesslogv3.StreamAccessLogsMessage_Identifier{LogName: policypb.AccessLogName},
		LogEntries: &accesslogv3.StreamAccessLogsMessage_HttpLogs{HttpLogs: &accesslogv3.StreamAccessLogsMessage_HTTPAccessLogEntries{
			LogEntry: []*accesslogdata.HTTPAccessLogEntry{{
				Request:  &accesslogdata.HTTPRequestProperties{RequestHeaders: map[string]string{"x-request-id": "nobody's"}},
				Response: &accesslogdata.HTTPResponseProperties{ResponseCode: wrapperspb.UInt32(200), ResponseCodeDetails: "via_upstream"},
			}}}},
	}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return counterValue(t, reg, extauthz.MetricUnmatched) == 1 })
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	if err := logs.RecvMsg(new(accesslogv3.StreamAccessLogsResponse)); err != nil {
		t.Fatalf("the access-log stream when the service stopped: %v, want the service's response", err)
	}
	<-stopped
}

// counterValue is the value of the unlabelled counter name in reg, or -1.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return -1
}
