package extauthz_test

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/sidecar/extauthz"
)

// TestPanicIsARefusal: a panic while deciding (a bug; here the engine
// lookup panics once) is an error for that one Check — Envoy, with
// failure_mode_allow false, refuses the request with status_on_error —
// logged, and the server goes on deciding. grpc-go does not recover a
// handler's panic: unrecovered, it ends the process, and with it every
// decision awaiting its outcome.
func TestPanicIsARefusal(t *testing.T) {
	_, e, clk := newServer(t)
	var calls atomic.Int64
	var logged strings.Builder
	s, err := extauthz.New(extauthz.Options{
		Engine: func() *edge.Engine {
			if calls.Add(1) == 1 {
				panic("a bug")
			}
			return e
		},
		Now:    clk.now,
		Logger: slog.New(slog.NewTextHandler(&logged, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	conn := serve(t, s)
	client := authv3.NewAuthorizationClient(conn)

	resp, err := client.Check(context.Background(), checkReq("panics"))
	if status.Code(err) != codes.Internal || resp.GetOkResponse() != nil {
		t.Fatalf("a Check that panicked: %v, %v; want the error Internal and no OK", resp, err)
	}
	if !strings.Contains(logged.String(), "a bug") {
		t.Errorf("the panic is not logged: %q", logged.String())
	}
	resp, err = client.Check(context.Background(), checkReq("next"))
	if err != nil || resp.GetOkResponse() == nil {
		t.Fatalf("the next Check: %v, %v; want an OK", resp, err)
	}
	if n := s.Pending(); n != 1 {
		t.Errorf("%d decisions await their outcome, want the next one's alone", n)
	}
}
