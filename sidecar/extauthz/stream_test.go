package extauthz_test

import (
	"context"
	"io"
	"testing"
	"time"

	accesslogdata "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/internal/grpctest"
	"github.com/contentguard/contentguard/internal/polltest"
	"github.com/contentguard/contentguard/sidecar/extauthz"
	"github.com/contentguard/contentguard/xds/policypb"
)

// serve serves s on a loopback gRPC server until the test ends and
// returns a connection to it.
func serve(t testing.TB, s *extauthz.Server) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(grpctest.Serve(t, "", s.Register), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestLogStreamsEndWithTheContext: when Options.Context ends, Envoy's
// access-log stream ends cleanly: the service sends its one response, then
// the status OK. Envoy never ends the stream itself, so without this a gRPC
// GracefulStop waited for it until its bound and then cut every connection.
func TestLogStreamsEndWithTheContext(t *testing.T) {
	_, e, clk := newServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := extauthz.New(extauthz.Options{Engine: func() *edge.Engine { return e }, Now: clk.now, Context: ctx})
	if err != nil {
		t.Fatal(err)
	}
	conn := serve(t, s)
	// A stream that does not end fails the RecvMsg below with
	// DeadlineExceeded.
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	logs, err := accesslogv3.NewAccessLogServiceClient(conn).StreamAccessLogs(sctx)
	if err != nil {
		t.Fatal(err)
	}

	// The stream carries reports until the context ends.
	const id = "0190f3c2-7b1e-7cc1-9d2a-5b8f1e0a3c20"
	ticket := allow(t, s, id)
	if err := logs.Send(&accesslogv3.StreamAccessLogsMessage{
		Identifier: &accesslogv3.StreamAccessLogsMessage_Identifier{LogName: policypb.AccessLogName},
		LogEntries: &accesslogv3.StreamAccessLogsMessage_HttpLogs{HttpLogs: &accesslogv3.StreamAccessLogsMessage_HTTPAccessLogEntries{
			LogEntry: []*accesslogdata.HTTPAccessLogEntry{entry(id, ticket, 200)}}},
	}); err != nil {
		t.Fatal(err)
	}
	if !polltest.Until(10*time.Second, func() bool { return s.Pending() == 0 }) {
		t.Fatal("the report sent on the stream did not reach the server")
	}

	cancel()
	// The server's one response is its end of the stream.
	if err := logs.RecvMsg(new(accesslogv3.StreamAccessLogsResponse)); err != nil {
		t.Fatalf("the access-log stream after the context ended: %v, want its response", err)
	}
	if err := logs.RecvMsg(new(accesslogv3.StreamAccessLogsResponse)); err != io.EOF {
		t.Fatalf("after the response: %v, want EOF", err)
	}
}
