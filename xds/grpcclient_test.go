package xds

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	grpcxds "google.golang.org/grpc/xds"
)

// TestGRPCXDSClientReachesTheBackend: grpc-go's own xDS client, an
// independent consumer of the Envoy API, dials xds:///<policy name> with a
// bootstrap pointing at the control plane. It must accept the API
// listener, the route configuration, the cluster and the endpoints (with
// their locality and weight) and reach the real backend through EDS.
func TestGRPCXDSClientReachesTheBackend(t *testing.T) {
	// The backend: a gRPC server with the standard health service.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	backend := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("contentguard.backend", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(backend, hs)
	go func() { _ = backend.Serve(ln) }()
	t.Cleanup(backend.Stop)

	file := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, file, policyDoc("analysis-api", "http://"+ln.Addr().String(), "2s"))
	pl := startPlane(t, file)

	bootstrap := fmt.Sprintf(`{
  "xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
  "node": {"id": "grpc-client-1", "cluster": "tests"}
}`, pl.addr)
	resolver, err := grpcxds.NewXDSResolverWithConfigForTesting([]byte(bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("xds:///analysis-api", grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(resolver))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "contentguard.backend"}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatalf("health check through xds:///analysis-api: %v", err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("backend status %v", resp.GetStatus())
	}
	nodes := pl.srv.Nodes()
	if len(nodes) != 1 || nodes[0].Flavor != FlavorGRPC || nodes[0].NACKs != 0 {
		t.Fatalf("nodes %+v: want one gRPC node that accepted every resource", nodes)
	}
}
