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
// breaker and the metrics, in three PDK calls: the key Access left in
// kong.ctx.shared, the status the client got (kong.response.get_status) and
// where it came from (kong.response.get_source: the service, Kong's own
// error page, or a plugin's exit). A request Access refused left no key and
// costs one call.
//
// Kong runs an external plugin's Log phase from a timer after the response
// is sent, over data it saved at the end of the request: its calls add no
// latency, and only the PDK functions Kong answers from that saved data
// work there. Both calls above are among them; kong.service.response
// .get_status, which would give the upstream's own status in one call, is
// not (it reads ngx.var.upstream_status, which a timer cannot, and fails).
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
		p.engine.Observe(&p.d, edge.Outcome{Unknown: true})
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

// outcome translates Kong's account of an allowed request into the
// engine's. The upstream is blamed only for what it did: its own answers,
// and Kong's 502/503 (it could not be reached or had no healthy target) and
// 504 (it did not answer in time). What the client did is the client's
// fault (edge.Outcome.ClientFault): it went away (499, whatever the
// source), or Kong refused the body it sent — too slow (408), too large
// (413), malformed or unframed (400, 411). An answer the upstream did not
// give — another plugin's exit (proxy-cache serving a hit,
// request-termination), Kong's own 500, a source this version does not
// know — says nothing about the upstream (edge.Outcome.Unknown). Neither
// of the last two counts for the breaker; both free a half-open probe slot.
func outcome(source string, status int) edge.Outcome {
	switch {
	case status == edge.StatusClientClosed:
		return edge.Outcome{Status: status, ClientFault: true}
	case source == sourceService:
		return edge.Outcome{Status: status}
	case source != sourceError:
		return edge.Outcome{Status: status, Unknown: true}
	}
	switch status {
	case http.StatusGatewayTimeout:
		return edge.Outcome{Status: status, Timeout: true}
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return edge.Outcome{Status: status, Connection: true}
	case http.StatusRequestTimeout:
		return edge.Outcome{Status: status, ClientFault: true, Timeout: true}
	case http.StatusBadRequest, http.StatusLengthRequired, http.StatusRequestEntityTooLarge:
		return edge.Outcome{Status: status, ClientFault: true}
	}
	return edge.Outcome{Status: status, Unknown: true}
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
