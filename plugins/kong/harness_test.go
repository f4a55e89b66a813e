package kong

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/Kong/go-pdk"
	"github.com/Kong/go-pdk/bridge"
	"github.com/Kong/go-pdk/bridge/bridgetest"
	"github.com/Kong/go-pdk/client"
	"github.com/Kong/go-pdk/ctx"
	"github.com/Kong/go-pdk/ip"
	pdklog "github.com/Kong/go-pdk/log"
	"github.com/Kong/go-pdk/nginx"
	"github.com/Kong/go-pdk/node"
	"github.com/Kong/go-pdk/request"
	"github.com/Kong/go-pdk/response"
	"github.com/Kong/go-pdk/router"
	"github.com/Kong/go-pdk/service"
	servicerequest "github.com/Kong/go-pdk/service/request"
	serviceresponse "github.com/Kong/go-pdk/service/response"
	"github.com/Kong/go-pdk/test"
)

// harnessCalls are the PDK functions the plugin may call, all of which
// go-pdk's test harness answers. Any other call fails the test: it would
// be unmocked in the harness, and it is a round trip the plugin does not
// budget for.
var harnessCalls = map[string]bool{
	"kong.request.get_headers":          true,
	"kong.client.get_ip":                true,
	"kong.request.get_method":           true,
	"kong.request.get_path_with_query":  true,
	"kong.request.get_scheme":           true,
	"kong.response.exit":                true,
	"kong.service.request.clear_header": true,
	"kong.service.request.set_headers":  true,
	"kong.service.request.set_path":     true,
	"kong.response.set_headers":         true,
	"kong.ctx.shared.set":               true,
	"kong.ctx.shared.get":               true,
	"kong.response.get_status":          true,
	"kong.response.get_source":          true,
}

// exchange is one request through the plugin's phases over go-pdk's test
// harness: test.TestEnv answers every PDK call (its Handle, reached through
// bridgetest.MockFunc's socket protocol, as in test.New) and the exchange
// records each call on the way.
//
// It drives the phases itself rather than through TestEnv.DoAccess and
// DoLog for three reasons: to see every call on the socket, because
// benchmarks have no *testing.T for test.New, and because Kong runs the
// Log phase after an exit too (as its own event), which DoLog skips.
type exchange struct {
	*test.TestEnv
	tb testing.TB

	mu     sync.Mutex
	calls  map[string][]string // PDK methods by phase, in order
	exited bool
	// broken PDK methods are answered with bytes that do not decode, as
	// if Kong's answer had been cut short.
	broken map[string]bool
}

// newExchange prepares req; it fails like the harness for a request the
// harness cannot represent (methods other than GET, POST, PUT and PATCH; a
// GET with a body, or one of the others without).
func newExchange(tb testing.TB, req test.Request) (*exchange, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	service := test.Request{Method: req.Method, Url: req.Url, Headers: req.Headers.Clone(), Body: req.Body}
	return &exchange{
		TestEnv: &test.TestEnv{
			ClientReq:  req,
			ServiceReq: service,
			ServiceRes: test.Response{Headers: http.Header{}},
			ClientRes:  test.Response{Headers: http.Header{}},
			Ctx:        test.Ctx{Store: map[string]interface{}{}},
		},
		tb:    tb,
		calls: map[string][]string{},
	}, nil
}

// session is the harness's end of one phase's socket.
type session struct {
	*exchange
	phase  string
	closed atomic.Bool
}

// Handle answers one PDK call with the harness and records it. The
// harness reports its own failures (an answer it cannot encode) through
// the *testing.T of test.New, which this environment has not: they panic,
// and come back here as the test's errors.
func (s *session) Handle(method string, args []byte) (out []byte) {
	x := s.exchange
	defer func() {
		if r := recover(); r != nil {
			x.tb.Errorf("the harness failed to answer %s: %v", method, r)
			out = nil
		}
	}()
	x.mu.Lock()
	x.calls[s.phase] = append(x.calls[s.phase], method)
	if method == "kong.response.exit" {
		x.exited = true
	}
	x.mu.Unlock()
	if !harnessCalls[method] {
		x.tb.Errorf("the %s phase called %s, which the plugin does not budget for", s.phase, method)
		return nil
	}
	if x.broken[method] {
		return []byte{0xff} // a field tag whose varint never ends
	}
	return x.TestEnv.Handle(method, args)
}

// Errorf reports the mock socket's failures, except its end.
func (s *session) Errorf(format string, args ...interface{}) {
	if !s.closed.Load() {
		s.tb.Errorf(format, args...)
	}
}

// run calls one phase handler with a PDK on a fresh socket, as go-pdk's
// server starts each event with pdk.Init on its connection.
func (x *exchange) run(phase string, handler func(*pdk.PDK)) {
	s := &session{exchange: x, phase: phase}
	conn := bridgetest.MockFunc(s)
	handler(newPDK(conn))
	s.closed.Store(true)
	_ = conn.Close()
}

func newPDK(conn net.Conn) *pdk.PDK {
	b := bridge.New(conn)
	return &pdk.PDK{
		Client:          client.Client{PdkBridge: b},
		Ctx:             ctx.Ctx{PdkBridge: b},
		Log:             pdklog.Log{PdkBridge: b},
		Nginx:           nginx.Nginx{PdkBridge: b},
		Request:         request.Request{PdkBridge: b},
		Response:        response.Response{PdkBridge: b},
		Router:          router.Router{PdkBridge: b},
		IP:              ip.Ip{PdkBridge: b},
		Node:            node.Node{PdkBridge: b},
		Service:         service.Service{PdkBridge: b},
		ServiceRequest:  servicerequest.Request{PdkBridge: b},
		ServiceResponse: serviceresponse.Response{PdkBridge: b},
	}
}

// do runs the request through Kong's phases: Access; when it forwarded,
// the upstream's answer up (merged into the client's response by the
// harness's DoResponse, which calls no handler: the plugin has no Response
// phase); and Log.
func (x *exchange) do(c *Config, up test.Response) {
	x.run("access", c.Access)
	if !x.exited {
		x.ServiceRes = up
		x.DoResponse(c)
	}
	x.run("log", c.Log)
}

// callsOf lists the PDK calls a phase made, in order.
func (x *exchange) callsOf(phase string) []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]string(nil), x.calls[phase]...)
}
