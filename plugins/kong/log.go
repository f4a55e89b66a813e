package kong

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime"

	"github.com/Kong/go-pdk"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/telemetry/edgemetrics"
)

// Log reports what became of a request Access allowed, for the circuit
// breaker and the metrics: the key Access left in kong.ctx.shared, the
// status the client got and where it came from (kong.response.get_source:
// the service, Kong's own error page, or another plugin's exit). Kong runs
// it after the response is sent (for plugin servers, from a timer over data
// saved at the end of the request), so its calls add no latency. A request
// Access refused left no key and costs one call.
func (c *Config) Log(kong *pdk.PDK) {
	defer c.recoverLog()
	key, err := kong.Ctx.GetSharedString(sharedKey)
	if err != nil || key == "" {
		return // refused in Access, or never reached it
	}
	n := c.node
	if n == nil {
		return
	}
	p, ok := n.inflight.take(key)
	if !ok {
		return // for an earlier plugin-server process, or displaced
	}
	status, err := kong.Response.GetStatus()
	var source string
	if err == nil {
		source, err = kong.Response.GetSource()
	}
	if err != nil {
		// Unknown: release the slot, count nothing.
		p.engine.Observe(&p.d, edge.Outcome{ClientFault: true})
		n.log.Warn("cannot read the outcome of a request", "err", err.Error(), "request_id", p.d.RequestID)
		return
	}
	o := outcome(source, status)
	o.Duration = n.now().Sub(p.start)
	p.engine.Observe(&p.d, o)
	n.metrics.HTTP().Record(p.method, edgemetrics.RouteLabel(p.d.Route), status, o.Duration)
}

// Sources of a response, as kong.response.get_source names them.
const (
	sourceService = "service" // the upstream answered
	sourceError   = "error"   // Kong answered with an error of its own
	sourceExit    = "exit"    // a plugin answered (kong.response.exit)
)

// statusClientClosed is the status NGINX logs when the client closed the
// connection before the answer was sent.
const statusClientClosed = 499

// outcome translates Kong's account of an allowed request into the
// engine's. The upstream is blamed only for what it did: its own answers,
// and Kong's 502/503 (it could not be reached or had no healthy target) and
// 504 (it did not answer in time). A client that went away, sent a body
// Kong refused or was too slow is the client's fault; an exit by a plugin
// after this one and Kong's own failures (500) say nothing about the
// upstream. Both release a half-open probe slot without counting
// (edge.Outcome.ClientFault).
func outcome(source string, status int) edge.Outcome {
	switch {
	case status == statusClientClosed:
		return edge.Outcome{Status: status, ClientFault: true}
	case source == sourceService:
		return edge.Outcome{Status: status}
	case source == sourceError && status == http.StatusGatewayTimeout:
		return edge.Outcome{Status: status, Timeout: true}
	case source == sourceError && (status == http.StatusBadGateway || status == http.StatusServiceUnavailable):
		return edge.Outcome{Status: status, Connection: true}
	default:
		// Kong's own 4xx (400, 408, 411, 413, 414, 494: the client's
		// request), its 500, another plugin's exit, or a source this
		// version does not know.
		return edge.Outcome{Status: status, ClientFault: true}
	}
}

// recoverLog keeps a bug in the log phase from taking the plugin server
// down.
func (c *Config) recoverLog() {
	if r := recover(); r != nil {
		stack := make([]byte, 16<<10)
		stack = stack[:runtime.Stack(stack, false)]
		c.logger().Error("panic in the log phase", "panic", fmt.Sprint(r), "stack", string(stack))
	}
}

func (c *Config) logger() *slog.Logger {
	if c.node != nil {
		return c.node.log
	}
	return defaultNode().log
}
