// Package xdsclient keeps a contentguard sidecar's policy in step with an
// xDS control plane (`contentguard xds`): it subscribes over Delta ADS to
// the policy resource (policypb.TypeURL) for its node, hands each new
// policy to Options.Apply — which puts it in force atomically or refuses it
// — and ACKs it, or NACKs it with the refusal as the error detail.
//
// While the control plane is away the sidecar keeps the last good policy
// and serves with it; the client reconnects with exponential backoff and
// jitter, telling the control plane which version it has
// (initial_resource_versions), so a restarted control plane sends the
// policy again only if it is not the one in force.
package xdsclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/contentguard/contentguard/xds/policypb"
)

// UserAgent is the user_agent_name of the client's node: the control plane
// serves such nodes the policy resource.
const UserAgent = "contentguard"

// Defaults of Options.
const (
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 10 * time.Second
)

// Options configure a Client.
type Options struct {
	// Server is the control plane's host:port. Required.
	Server string
	// NodeID and Cluster name the node; the control plane maps them to a
	// policy. NodeID is required.
	NodeID, Cluster string
	// Version is the sidecar's version, sent as user_agent_version.
	Version string
	// Apply puts a policy in force, or returns why it cannot (the error
	// becomes the NACK's detail). Required.
	Apply func(*policypb.Policy) error
	// DialOptions replace the default (plain-text) transport credentials.
	DialOptions []grpc.DialOption
	// MinBackoff and MaxBackoff bound the wait between reconnections;
	// defaults DefaultMinBackoff, DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// Logger; default discards.
	Logger *slog.Logger
}

// Client is one subscription. Run it; Status says how it stands.
type Client struct {
	opts Options
	log  *slog.Logger

	mu sync.Mutex
	// resource and version name the policy in force (a node has one).
	resource, version string
	connected         bool
	applied           int
	refused           int
	lastErr           string
}

// New returns a client; it connects when Run is called.
func New(opts Options) (*Client, error) {
	if opts.Server == "" || opts.NodeID == "" || opts.Apply == nil {
		return nil, errors.New("xdsclient: Server, NodeID and Apply are required")
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Client{opts: opts, log: opts.Logger}, nil
}

// Status is a snapshot of the client: what an operator asks a sidecar
// about its control plane (the sidecar's admin API serves it as
// GET /admin/xds, and its metrics xds_connected and xds_updates_total).
type Status struct {
	Server    string `json:"server"`
	Node      string `json:"node"`
	Connected bool   `json:"connected"`
	// Resource and Version name the policy resource in force and the
	// control plane's version of it; empty before the first one.
	Resource string `json:"resource,omitempty"`
	Version  string `json:"version,omitempty"`
	// Applied and Refused count the policies put in force and NACKed since
	// the start; LastError is the latest refusal while no policy has been
	// applied since.
	Applied   int    `json:"applied"`
	Refused   int    `json:"refused"`
	LastError string `json:"last_error,omitempty"`
}

// Status returns how the client stands.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Status{Server: c.opts.Server, Node: c.opts.NodeID, Connected: c.connected,
		Resource: c.resource, Version: c.version,
		Applied: c.applied, Refused: c.refused, LastError: c.lastErr}
}

// Run subscribes until ctx ends, reconnecting with backoff. It returns
// ctx's error.
func (c *Client) Run(ctx context.Context) error {
	dial := c.opts.DialOptions
	if len(dial) == 0 {
		dial = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	// Find a dead control plane even when no packet says so. A fixed
	// window (policies are a few KiB) turns off gRPC's bandwidth probing,
	// which otherwise pings after every message.
	dial = append(dial, grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.WithInitialWindowSize(1<<20), grpc.WithInitialConnWindowSize(1<<20))
	conn, err := grpc.NewClient(c.opts.Server, dial...)
	if err != nil {
		return fmt.Errorf("xdsclient: %w", err)
	}
	defer conn.Close()
	ads := discovery.NewAggregatedDiscoveryServiceClient(conn)
	backoff := c.opts.MinBackoff
	for {
		received, err := c.stream(ctx, ads)
		c.setConnected(false)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if received {
			backoff = c.opts.MinBackoff
		}
		// Full jitter: many sidecars losing one control plane must not
		// come back in step.
		wait := backoff/2 + rand.N(backoff/2+1)
		c.log.Warn("xds stream ended; keeping the policy in force and reconnecting", "server", c.opts.Server, "err", errString(err), "in", wait.String())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		backoff = min(2*backoff, c.opts.MaxBackoff)
	}
}

// stream runs one Delta ADS stream; received says whether any response
// came (the connection worked).
func (c *Client) stream(ctx context.Context, ads discovery.AggregatedDiscoveryServiceClient) (received bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := ads.DeltaAggregatedResources(sctx, grpc.WaitForReady(false))
	if err != nil {
		return false, err
	}
	first := &discovery.DeltaDiscoveryRequest{
		Node: &core.Node{
			Id:                   c.opts.NodeID,
			Cluster:              c.opts.Cluster,
			UserAgentName:        UserAgent,
			UserAgentVersionType: &core.Node_UserAgentVersion{UserAgentVersion: c.opts.Version},
		},
		TypeUrl:                 policypb.TypeURL,
		ResourceNamesSubscribe:  []string{"*"},
		InitialResourceVersions: c.inForce(),
	}
	if err := s.Send(first); err != nil {
		return false, err
	}
	for {
		resp, err := s.Recv()
		if err != nil {
			if st, ok := grpcStatus(err); ok && st == codes.Canceled && ctx.Err() != nil {
				return received, ctx.Err()
			}
			return received, err
		}
		if !received {
			received = true
			c.setConnected(true)
			c.log.Info("xds stream up", "server", c.opts.Server, "node", c.opts.NodeID)
		}
		if err := s.Send(c.handle(resp)); err != nil {
			return received, err
		}
	}
}

// handle applies a response and returns its ACK or NACK.
func (c *Client) handle(resp *discovery.DeltaDiscoveryResponse) *discovery.DeltaDiscoveryRequest {
	reply := &discovery.DeltaDiscoveryRequest{TypeUrl: policypb.TypeURL, ResponseNonce: resp.GetNonce()}
	if resp.GetTypeUrl() != policypb.TypeURL {
		return reply // not subscribed: nothing to apply
	}
	if len(resp.GetResources()) > 1 {
		return c.nack(reply, fmt.Errorf("got %d policies in one response, want one", len(resp.GetResources())))
	}
	for _, r := range resp.GetResources() {
		p := &policypb.Policy{}
		if err := r.GetResource().UnmarshalTo(p); err != nil {
			return c.nack(reply, fmt.Errorf("resource %q: %w", r.GetName(), err))
		}
		if err := c.opts.Apply(p); err != nil {
			return c.nack(reply, err)
		}
		c.mu.Lock()
		c.resource, c.version = r.GetName(), r.GetVersion()
		c.applied++
		c.lastErr = ""
		c.mu.Unlock()
		c.log.Info("policy from the control plane in force", "policy", p.GetName(), "hash", p.GetSha256(), "source", p.GetSource())
	}
	if len(resp.GetRemovedResources()) > 0 {
		// The control plane has no policy for this node any more: keep
		// serving with the last one rather than with none.
		c.log.Warn("the control plane removed this node's policy; keeping the one in force", "removed", resp.GetRemovedResources())
	}
	return reply
}

func (c *Client) nack(reply *discovery.DeltaDiscoveryRequest, err error) *discovery.DeltaDiscoveryRequest {
	c.mu.Lock()
	c.refused++
	c.lastErr = err.Error()
	c.mu.Unlock()
	c.log.Error("policy from the control plane refused (NACK); keeping the one in force", "err", err.Error())
	reply.ErrorDetail = &statuspb.Status{Code: int32(codes.InvalidArgument), Message: err.Error()}
	return reply
}

func (c *Client) inForce() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.resource == "" {
		return nil
	}
	return map[string]string{c.resource: c.version}
}

func (c *Client) setConnected(v bool) {
	c.mu.Lock()
	c.connected = v
	c.mu.Unlock()
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func grpcStatus(err error) (codes.Code, bool) {
	s, ok := status.FromError(err)
	if !ok {
		return codes.Unknown, false
	}
	return s.Code(), true
}
