// Package kong is contentguard as a Kong plugin: a go-pdk plugin whose
// instances enforce a contentguard policy file inside Kong Gateway with the
// decisions of every other data plane (the engine of package edge).
//
// Kong starts the plugin server (cmd/contentguard) once per node and asks it
// for plugin instances, one per plugin configuration (Config). The Access
// phase reads the request with as few PDK calls as Kong allows, asks the
// engine, and either answers with the engine's problem (kong.response.exit)
// or forwards with the engine's headers; the Log phase tells the engine what
// the upstream did, for its circuit breaker. There is no Response phase:
// Kong buffers the whole response of a route whose plugin has one.
//
// What an instance uses (engines, breakers, rate-limit buckets, Redis
// clients, metrics) belongs to the node (see Node), because Kong shares one
// plugin server among all NGINX workers and recreates instances freely.
package kong

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"github.com/contentguard/contentguard/internal/requestid"
)

// Version and Priority are what the plugin server reports to Kong. Priority
// runs the plugin before Kong's bundled authentication (jwt 1450, key-auth
// 1250), rate-limiting (910) and proxy-cache (100) plugins: no request
// reaches those, or a cached answer, without the policy's decision.
const (
	Version  = "0.1.0"
	Priority = 1500
)

// Config is one plugin instance's configuration, as Kong sends it (the
// json tags are the field names of Kong's schema, see -dump), and the
// instance itself: *Config has the phase handlers.
type Config struct {
	// PolicyFile is the path of the policy file on the Kong node; it is
	// watched and reloaded when it changes. Exactly one of PolicyFile and
	// Policy is set.
	PolicyFile string `json:"policy_file"`
	// Policy is the policy document inline (YAML or JSON). Relative file
	// references in it resolve against the plugin server's working
	// directory: prefer absolute paths.
	Policy string `json:"policy"`
	// Upstream names the circuit breaker of the Kong service this instance
	// guards, so that services sharing a policy do not share a breaker.
	// Default: one breaker per plugin (Kong's plugin id).
	Upstream string `json:"upstream"`
	// MetricsAddress is a loopback host:port on which the plugin server
	// serves Prometheus metrics at /metrics (the node's: every instance's
	// decisions); empty serves none. Kong's prometheus plugin cannot see
	// these counters.
	MetricsAddress string `json:"metrics_address"`

	node     *Node
	pluginID string // Kong's id of the plugin entity, when Kong sends it

	once  sync.Once
	bound *binding
	err   error
}

// binding is what a started instance enforces.
type binding struct {
	src      *source
	upstream string // the breaker's name
}

// defaultNode is the node of the instances New makes: go-pdk's constructor
// takes no arguments, and the plugin server is one process per Kong node.
var defaultNode = sync.OnceValue(func() *Node {
	n, err := NewNode(NodeOptions{})
	if err != nil {
		panic(err) // a fresh registry cannot hold the metrics already
	}
	return n
})

// New returns a new, unconfigured instance on the process's default node:
// the constructor cmd/contentguard passes to go-pdk's server.StartServer.
func New() interface{} { return &Config{node: defaultNode()} }

// UnmarshalJSON is how Kong starts an instance: go-pdk decodes the
// configuration into a new Config, and an error here refuses the instance
// (Kong logs it and answers the request 500). It checks the configuration
// (Validate) and loads the policy, so a bad one is refused at start rather
// than on the first request.
func (c *Config) UnmarshalJSON(data []byte) error {
	var doc struct {
		PolicyFile     string `json:"policy_file"`
		Policy         string `json:"policy"`
		Upstream       string `json:"upstream"`
		MetricsAddress string `json:"metrics_address"`
		PluginID       string `json:"__plugin_id"`
		Key            string `json:"__key__"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("kong: configuration: %w", err)
	}
	c.PolicyFile, c.Policy, c.Upstream, c.MetricsAddress = doc.PolicyFile, doc.Policy, doc.Upstream, doc.MetricsAddress
	c.pluginID = doc.PluginID
	if c.pluginID == "" {
		c.pluginID = doc.Key
	}
	_, err := c.bind()
	return err
}

// Validate checks the configuration without loading anything: exactly one
// of policy_file and policy (Kong's schema has no one-of), an upstream name
// fit for a metric label, a loopback metrics address.
func (c *Config) Validate() error {
	var errs []error
	switch {
	case c.PolicyFile == "" && c.Policy == "":
		errs = append(errs, errors.New("set one of policy_file and policy"))
	case c.PolicyFile != "" && c.Policy != "":
		errs = append(errs, errors.New("set only one of policy_file and policy, not both"))
	}
	// The alphabet of request IDs: safe in metric labels, problem details
	// and log lines.
	if c.Upstream != "" && !requestid.Valid(c.Upstream) {
		errs = append(errs, fmt.Errorf("upstream %q: use 1 to 128 letters, digits and . _ : -", c.Upstream))
	}
	if c.MetricsAddress != "" {
		if err := loopback(c.MetricsAddress); err != nil {
			errs = append(errs, fmt.Errorf("metrics_address %q: %w", c.MetricsAddress, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kong: configuration: %w", err)
	}
	return nil
}

// bind starts the instance once: it validates the configuration, loads (or
// shares) its policy and names its breaker. An instance that cannot start
// refuses every request.
func (c *Config) bind() (*binding, error) {
	c.once.Do(func() {
		if c.node == nil {
			c.node = defaultNode()
		}
		if c.err = c.Validate(); c.err != nil {
			return
		}
		src, err := c.node.source(c)
		if err != nil {
			c.err = err
			return
		}
		b := &binding{src: src, upstream: c.Upstream}
		switch {
		case b.upstream != "":
		case c.pluginID != "":
			b.upstream = "kong-plugin:" + c.pluginID
		default:
			b.upstream = "kong-instance:" + strconv.Itoa(c.node.nextInstance())
		}
		c.node.metrics.BreakerSeen(src.breakers.Get(b.upstream))
		if c.MetricsAddress != "" {
			c.node.serveMetrics(c.MetricsAddress)
		}
		c.bound = b
	})
	return c.bound, c.err
}

// loopback accepts host:port with a loopback IP or localhost: the metrics
// describe the node's traffic and policy, for the node's own scraper.
func loopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if host == "localhost" {
		return nil
	}
	if a, err := netip.ParseAddr(host); err != nil || !a.IsLoopback() {
		return errors.New("the host must be a loopback address (127.0.0.1, ::1 or localhost)")
	}
	return nil
}
