package xds

import (
	"encoding/binary"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"

	"github.com/contentguard/contentguard/xds/policypb"
)

// TestNoPINGPerACK: served with GRPCServerOptions, the control plane
// answers a push and its ACK with the push alone. With gRPC's default
// (bandwidth-probing) windows it would follow every ACK with a window
// update and a PING, which the node answers: twice the frames, and the
// system calls, of a policy change.
func TestNoPINGPerACK(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, file, policyDoc("demo", "http://127.0.0.1:8081", "2s"))
	src, err := NewSource(file)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(ServerOptions{Source: src, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &frameListener{Listener: inner}
	g := grpc.NewServer(GRPCServerOptions()...)
	srv.Register(g)
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	pl := &plane{srv: srv, addr: inner.Addr().String()}

	stream := sidecarStream(t, pl, "sidecar-1")
	const changes = 5
	for i := 0; i <= changes; i++ {
		if i > 0 {
			writeFile(t, file, policyDoc("demo", "http://127.0.0.1:8081", []string{"1s", "2s", "3s", "4s", "5s"}[i-1]))
			pl.reload(t)
		}
		r := recvDelta(t, stream)
		if err := stream.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: policypb.TypeURL, ResponseNonce: r.GetNonce()}); err != nil {
			t.Fatal(err)
		}
	}
	// A fence: the server reads the last ACK before this request, and
	// writes anything the ACK made it send before this answer (an empty
	// wildcard answer: a sidecar node has no clusters).
	if err := stream.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: resource.ClusterType}); err != nil {
		t.Fatal(err)
	}
	if r := recvDelta(t, stream); r.GetTypeUrl() != resource.ClusterType {
		t.Fatalf("fence answered with %s", r.GetTypeUrl())
	}
	got := ln.counts()
	if got[http2.FrameData] < changes+2 {
		t.Fatalf("the server wrote %d DATA frames, want at least %d (a frame count that does not count)", got[http2.FrameData], changes+2)
	}
	// PINGs of its own, not answers to the client's (grpc-go's client
	// probes the bandwidth too, unless told otherwise as xdsclient is).
	if got[ping] != 0 || got[http2.FrameWindowUpdate] != 0 {
		t.Errorf("the server wrote %d PING and %d WINDOW_UPDATE frames over %d pushes and their ACKs, want none",
			got[ping], got[http2.FrameWindowUpdate], changes+1)
	}
}

// ping counts PING frames that are no PING ACKs; http2.FramePing counts
// the ACKs.
const ping = http2.FrameType(0xff)

// frameListener counts the HTTP/2 frames its connections write, by type.
type frameListener struct {
	net.Listener
	mu     sync.Mutex
	frames map[http2.FrameType]int
}

func (l *frameListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &frameConn{Conn: c, l: l}, nil
}

func (l *frameListener) counts() map[http2.FrameType]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[http2.FrameType]int{}
	for k, v := range l.frames {
		out[k] = v
	}
	return out
}

// frameConn follows the frames in what a server writes (a server sends no
// preface): a 9-byte header, whose first 3 bytes are the payload's length
// and the 4th the frame's type, then the payload.
type frameConn struct {
	net.Conn
	l      *frameListener
	header []byte // of the frame under way, while incomplete
	skip   int    // payload bytes of the last frame still to come
}

func (c *frameConn) Write(p []byte) (int, error) {
	c.l.mu.Lock()
	for rest := p; len(rest) > 0; {
		if c.skip > 0 {
			n := min(c.skip, len(rest))
			c.skip -= n
			rest = rest[n:]
			continue
		}
		n := min(9-len(c.header), len(rest))
		c.header = append(c.header, rest[:n]...)
		rest = rest[n:]
		if len(c.header) == 9 {
			if c.l.frames == nil {
				c.l.frames = map[http2.FrameType]int{}
			}
			typ := http2.FrameType(c.header[3])
			if typ == http2.FramePing && !http2.Flags(c.header[4]).Has(http2.FlagPingAck) {
				typ = ping
			}
			c.l.frames[typ]++
			c.skip = int(binary.BigEndian.Uint32(append([]byte{0}, c.header[:3]...)))
			c.header = c.header[:0]
		}
	}
	c.l.mu.Unlock()
	return c.Conn.Write(p)
}
