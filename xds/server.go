package xds

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/contentguard/contentguard/xds/policypb"
)

// Flavors of node: what a node is decides what it is served.
const (
	FlavorEnvoy   = "envoy"        // Envoy resources that enforce the policy through ext_authz
	FlavorGRPC    = "grpc"         // an API listener and its routes, clusters and endpoints
	FlavorSidecar = "contentguard" // the policy resource itself
)

// SidecarUserAgent is the user_agent_name contentguard's sidecar sends in
// its node: such a node is served the policy resource.
const SidecarUserAgent = "contentguard"

// DefaultMaxNodes bounds the nodes a server keeps snapshots for.
const DefaultMaxNodes = 10000

// ServerOptions configure a Server.
type ServerOptions struct {
	// Source holds the policies. Required.
	Source *Source
	// Envoy says where Envoy listens and where its ext_authz runs.
	Envoy Options
	// Logger; default discards.
	Logger *slog.Logger
	// Registry receives the xds_* metrics; nil registers nothing.
	Registry prometheus.Registerer
	// MaxNodes bounds the nodes connected at once; default DefaultMaxNodes.
	MaxNodes int
	// Context ends the server's ADS streams when it is done: a gRPC
	// server's GracefulStop waits for its streams, and a node's stream
	// never ends by itself. Nil: streams end only with their nodes.
	Context context.Context
}

// Server is the control plane: an ADS server (State of the World and
// Delta) over go-control-plane's snapshot cache, with a snapshot per node
// made from the node's policy and flavor.
type Server struct {
	opts  ServerOptions
	log   *slog.Logger
	cache cache.SnapshotCache
	xds   serverv3.Server
	m     *metrics

	mu    sync.Mutex
	nodes map[string]*nodeState
	// streams map a stream to its node, apart for State of the World and
	// Delta: go-control-plane numbers the two kinds separately.
	sotw, delta map[int64]*streamState
	// built caches snapshots by policy hash and flavor: nodes of one
	// policy share one (immutable) snapshot.
	built map[string]*snapshot
	// reported is the error reported for each refused file, so that a
	// refused document is logged and counted once.
	reported map[string]string
}

type nodeState struct {
	id, cluster string
	flavor      string
	streams     int
	policy      string // file of the policy in force
	version     string
	err         error // why the last policy could not be served to this node
	nacks       int
	lastNACK    string
}

type streamState struct {
	node string
	// sent is the version of the last response per type URL, by nonce,
	// so that a NACK names the version it rejects.
	sent map[string]sentResponse
}

type sentResponse struct{ nonce, version string }

// NewServer returns a server over opts.Source.
func NewServer(opts ServerOptions) (*Server, error) {
	if opts.Source == nil {
		return nil, errors.New("xds: ServerOptions.Source is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxNodes <= 0 {
		opts.MaxNodes = DefaultMaxNodes
	}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:     opts,
		log:      opts.Logger,
		m:        m,
		nodes:    map[string]*nodeState{},
		sotw:     map[int64]*streamState{},
		delta:    map[int64]*streamState{},
		built:    map[string]*snapshot{},
		reported: map[string]string{},
	}
	s.cache = cache.NewSnapshotCache(true, cache.IDHash{}, cplLogger{s.log})
	ctx := opts.Context
	if ctx == nil {
		ctx = context.Background()
	}
	s.xds = serverv3.NewServer(ctx, s.cache, serverv3.CallbackFuncs{
		StreamOpenFunc:          func(ctx context.Context, id int64, typ string) error { return s.opened() },
		DeltaStreamOpenFunc:     func(ctx context.Context, id int64, typ string) error { return s.opened() },
		StreamClosedFunc:        func(id int64, _ *core.Node) { s.closed(s.sotw, id) },
		DeltaStreamClosedFunc:   func(id int64, _ *core.Node) { s.closed(s.delta, id) },
		StreamRequestFunc:       s.onRequest,
		StreamResponseFunc:      s.onResponse,
		StreamDeltaRequestFunc:  s.onDeltaRequest,
		StreamDeltaResponseFunc: nil,
	})
	s.reportErrors()
	return s, nil
}

// streamWindow is the flow-control window of a control plane's streams and
// connections: HTTP/2's initial window, fixed.
const streamWindow = 1<<16 - 1

// GRPCServerOptions are what the gRPC server that serves a Server needs
// besides its usual limits: fixed flow-control windows. gRPC otherwise
// sizes its receive window by probing the bandwidth, which costs a window
// update and a PING after every request that follows a quiet spell — after
// every ACK, the way xDS streams talk — and a PING ACK from the node: two
// more writes and two more reads per node and push, doubling the system
// calls of a policy change. Requests are small (a node, resource names),
// so gRPC's initial window is enough, and a fixed one bounds what a node
// can make the server buffer.
func GRPCServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.StaticStreamWindowSize(streamWindow), grpc.StaticConnWindowSize(streamWindow)}
}

// Register serves ADS (State of the World and Delta) on g, a server made
// with GRPCServerOptions.
func (s *Server) Register(g *grpc.Server) {
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(g, s.xds)
}

// Watch reloads the source every interval until ctx ends, and refreshes
// the nodes' snapshots after every change.
func (s *Server) Watch(ctx context.Context, interval time.Duration) {
	s.opts.Source.Watch(ctx, interval, s.Refresh)
}

func (s *Server) opened() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.nodes) >= s.opts.MaxNodes {
		return fmt.Errorf("xds: more than %d nodes", s.opts.MaxNodes)
	}
	return nil
}

func (s *Server) closed(streams map[int64]*streamState, id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := streams[id]
	delete(streams, id)
	if st == nil {
		return
	}
	n := s.nodes[st.node]
	if n == nil {
		return
	}
	n.streams--
	if n.streams <= 0 {
		delete(s.nodes, st.node)
		s.cache.ClearSnapshot(st.node)
		s.m.nodes.Set(float64(len(s.nodes)))
	}
}

// attach registers a stream's first request: the node, its snapshot.
func (s *Server) attach(streams map[int64]*streamState, id int64, node *core.Node) *streamState {
	st := streams[id]
	if st != nil || node == nil {
		return st
	}
	st = &streamState{node: node.GetId(), sent: map[string]sentResponse{}}
	streams[id] = st
	n := s.nodes[node.GetId()]
	if n == nil {
		n = &nodeState{id: node.GetId(), cluster: node.GetCluster(), flavor: flavorOf(node)}
		s.nodes[n.id] = n
		s.m.nodes.Set(float64(len(s.nodes)))
		s.update(n)
	}
	n.streams++
	return st
}

func flavorOf(node *core.Node) string {
	ua := node.GetUserAgentName()
	switch {
	case ua == SidecarUserAgent:
		return FlavorSidecar
	case strings.HasPrefix(ua, "gRPC"):
		return FlavorGRPC
	}
	return FlavorEnvoy
}

func (s *Server) onRequest(id int64, req *discoverygrpc.DiscoveryRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.attach(s.sotw, id, req.GetNode())
	if st == nil {
		return errors.New("xds: the first request of a stream must name its node")
	}
	if req.GetErrorDetail() == nil {
		return nil
	}
	// A NACK. Its version_info is the last version the node accepted; the
	// cache would answer it at once with the version just rejected, and
	// again after every NACK, in a tight loop. Have the request ask for
	// what it rejected instead: the cache parks it until a new version.
	rejected := req.GetVersionInfo()
	if sent, ok := st.sent[req.GetTypeUrl()]; ok && sent.nonce == req.GetResponseNonce() {
		rejected = sent.version
	}
	s.nack(st.node, req.GetTypeUrl(), rejected, req.GetErrorDetail().GetMessage())
	req.VersionInfo = rejected
	return nil
}

func (s *Server) onResponse(_ context.Context, id int64, req *discoverygrpc.DiscoveryRequest, resp *discoverygrpc.DiscoveryResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.sotw[id]; st != nil {
		st.sent[resp.GetTypeUrl()] = sentResponse{nonce: resp.GetNonce(), version: resp.GetVersionInfo()}
	}
}

func (s *Server) onDeltaRequest(id int64, req *discoverygrpc.DeltaDiscoveryRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.attach(s.delta, id, req.GetNode())
	if st == nil {
		return errors.New("xds: the first request of a stream must name its node")
	}
	if req.GetErrorDetail() != nil {
		// Delta keeps what it sent as sent: a NACK is not answered again.
		n := s.nodes[st.node]
		version := ""
		if n != nil {
			version = n.version
		}
		s.nack(st.node, req.GetTypeUrl(), version, req.GetErrorDetail().GetMessage())
	}
	return nil
}

// nack logs and counts one NACK (s.mu held).
func (s *Server) nack(node, typeURL, version, detail string) {
	s.m.nacks.WithLabelValues(shortType(typeURL)).Inc()
	if n := s.nodes[node]; n != nil {
		n.nacks++
		n.lastNACK = detail
	}
	s.log.Warn("xds NACK: the node rejected a version; it gets the next one", "node", node, "type", typeURL, "version", version, "error", detail)
}

func shortType(typeURL string) string {
	return typeURL[strings.LastIndexByte(typeURL, '.')+1:]
}

// Refresh makes new snapshots for every node after the source changed.
// Nodes whose resources did not change get nothing new.
func (s *Server) Refresh() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reportErrors()
	s.built = map[string]*snapshot{}
	for _, n := range s.nodes {
		s.update(n)
	}
}

// reportErrors logs and counts each newly refused policy document once
// (s.mu held, or during NewServer).
func (s *Server) reportErrors() {
	errs := s.opts.Source.Errors()
	for file, err := range errs {
		if s.reported[file] == err.Error() {
			continue
		}
		s.reported[file] = err.Error()
		s.m.sourceErrors.Inc()
		s.log.Error("policy refused; the last good policy of the file stays in force", "file", file, "err", err.Error())
	}
	for file := range s.reported {
		if errs[file] == nil {
			delete(s.reported, file)
		}
	}
	s.m.sourceInvalid.Set(float64(len(errs)))
}

// update sets the snapshot of node n (s.mu held).
func (s *Server) update(n *nodeState) {
	e := s.opts.Source.For(n.id, n.cluster)
	if e == nil {
		n.err = fmt.Errorf("no policy applies to node %q (cluster %q)", n.id, n.cluster)
		s.log.Warn("xds: no policy for node", "node", n.id, "cluster", n.cluster)
		return
	}
	key := e.Policy.Hash + "/" + n.flavor
	snap := s.built[key]
	if snap == nil {
		var err error
		if snap, err = s.build(e, n.flavor); err != nil {
			n.err = err
			s.m.translateErrors.WithLabelValues(n.flavor).Inc()
			s.log.Error("xds: cannot serve the policy to this node; it keeps its last snapshot", "node", n.id, "flavor", n.flavor, "file", e.File, "err", err.Error())
			return
		}
		s.built[key] = snap
	}
	n.err = nil
	n.policy = e.File
	if v := snap.Version(); v != n.version {
		n.version = v
		if err := s.cache.SetSnapshot(context.Background(), n.id, snap); err != nil {
			s.log.Error("xds: set snapshot", "node", n.id, "err", err.Error())
			return
		}
		s.m.snapshots.Inc()
	}
}

// build makes the snapshot of one policy for one flavor of node.
func (s *Server) build(e *Entry, flavor string) (*snapshot, error) {
	byType := map[string][]named{}
	switch flavor {
	case FlavorSidecar:
		byType[policypb.TypeURL] = []named{{name: PolicyResourceName, msg: &policypb.Policy{
			Name:     e.Policy.Metadata.Name,
			Document: e.Document,
			Source:   e.File,
			Sha256:   e.Policy.Hash,
		}}}
	case FlavorGRPC:
		r, err := GRPC(e.Policy, e.Policy.Metadata.Name, s.opts.Envoy)
		if err != nil {
			return nil, err
		}
		addResources(byType, r)
		// No Consistent(): it does not follow an API listener to its routes.
	default:
		r, err := Envoy(e.Policy, s.opts.Envoy)
		if err != nil {
			return nil, err
		}
		if err := consistent(r); err != nil {
			return nil, err
		}
		addResources(byType, r)
	}
	return newSnapshot(byType)
}

// PolicyResourceName is the name of the policy resource a sidecar node is
// served: one per node, whatever the policy is called.
const PolicyResourceName = "policy"

func addResources(byType map[string][]named, r *Resources) {
	for _, c := range r.Clusters {
		byType[resource.ClusterType] = append(byType[resource.ClusterType], named{c.GetName(), c})
	}
	for _, e := range r.Endpoints {
		byType[resource.EndpointType] = append(byType[resource.EndpointType], named{e.GetClusterName(), e})
	}
	for _, l := range r.Listeners {
		byType[resource.ListenerType] = append(byType[resource.ListenerType], named{l.GetName(), l})
	}
	for _, rc := range r.Routes {
		byType[resource.RouteType] = append(byType[resource.RouteType], named{rc.GetName(), rc})
	}
}

// consistent checks with go-control-plane that every route and endpoint the
// resources reference is there, and nothing else.
func consistent(r *Resources) error {
	all := map[resource.Type][]types.Resource{}
	for _, c := range r.Clusters {
		all[resource.ClusterType] = append(all[resource.ClusterType], c)
	}
	for _, e := range r.Endpoints {
		all[resource.EndpointType] = append(all[resource.EndpointType], e)
	}
	for _, l := range r.Listeners {
		all[resource.ListenerType] = append(all[resource.ListenerType], l)
	}
	for _, rc := range r.Routes {
		all[resource.RouteType] = append(all[resource.RouteType], rc)
	}
	snap, err := cache.NewSnapshot("check", all)
	if err != nil {
		return err
	}
	if err := snap.Consistent(); err != nil {
		return fmt.Errorf("xds: inconsistent snapshot: %w", err)
	}
	return nil
}

// NodeStatus is what the admin endpoint says about one node.
type NodeStatus struct {
	ID       string `json:"id"`
	Cluster  string `json:"cluster,omitempty"`
	Flavor   string `json:"flavor"`
	Streams  int    `json:"streams"`
	Policy   string `json:"policy,omitempty"`
	Version  string `json:"version,omitempty"`
	Error    string `json:"error,omitempty"`
	NACKs    int    `json:"nacks"`
	LastNACK string `json:"last_nack,omitempty"`
}

// Nodes returns the connected nodes.
func (s *Server) Nodes() []NodeStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]NodeStatus, 0, len(s.nodes))
	for _, id := range sortedKeys(s.nodes) {
		n := s.nodes[id]
		ns := NodeStatus{ID: n.id, Cluster: n.cluster, Flavor: n.flavor, Streams: n.streams, Policy: n.policy,
			Version: n.version, NACKs: n.nacks, LastNACK: n.lastNACK}
		if n.err != nil {
			ns.Error = n.err.Error()
		}
		out = append(out, ns)
	}
	return out
}

func documentHash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// cplLogger sends go-control-plane's log lines to slog: its warnings and
// errors as such, the rest at debug. A line is formatted only when its
// level is on: go-control-plane logs at debug and info on every push and
// every ACK, with maps of resource names in its arguments.
type cplLogger struct{ log *slog.Logger }

func (l cplLogger) Debugf(format string, args ...any) { l.logf(slog.LevelDebug, format, args) }
func (l cplLogger) Infof(format string, args ...any)  { l.logf(slog.LevelDebug, format, args) }
func (l cplLogger) Warnf(format string, args ...any)  { l.logf(slog.LevelWarn, format, args) }
func (l cplLogger) Errorf(format string, args ...any) { l.logf(slog.LevelError, format, args) }

func (l cplLogger) logf(level slog.Level, format string, args []any) {
	ctx := context.Background()
	if l.log.Enabled(ctx, level) {
		l.log.Log(ctx, level, "xds: "+fmt.Sprintf(format, args...))
	}
}

type metrics struct {
	nacks           *prometheus.CounterVec
	translateErrors *prometheus.CounterVec
	sourceErrors    prometheus.Counter
	sourceInvalid   prometheus.Gauge
	snapshots       prometheus.Counter
	nodes           prometheus.Gauge
}

// Metric names of the control plane.
const (
	MetricNACKs           = "xds_nacks_total"
	MetricTranslateErrors = "xds_translate_errors_total"
	MetricPolicyErrors    = "xds_policy_errors_total"
	MetricPolicyInvalid   = "xds_policy_files_invalid"
	MetricSnapshots       = "xds_snapshots_total"
	MetricNodes           = "xds_nodes"
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricNACKs,
			Help: "Versions rejected by a node (NACK), by resource type; each logged with its error detail."}, []string{"type"}),
		translateErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricTranslateErrors,
			Help: "Policies that could not be turned into a node's resources (the node kept its last snapshot), by flavor."}, []string{"flavor"}),
		sourceErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricPolicyErrors,
			Help: "Policy documents refused on load (the last good policy of the file stays)."}),
		sourceInvalid: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricPolicyInvalid,
			Help: "Policy files whose current document is refused."}),
		snapshots: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricSnapshots,
			Help: "Snapshots set for nodes (a new version of a node's resources)."}),
		nodes: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricNodes, Help: "Nodes connected."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.nacks, m.translateErrors, m.sourceErrors, m.sourceInvalid, m.snapshots, m.nodes} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("xds: register metrics: %w", err)
			}
		}
	}
	return m, nil
}
