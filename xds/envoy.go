package xds

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	accesslog "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	als "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/grpc/v3"
	bodylimit "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/body_size_limit/v3"
	extauthz "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	xff "github.com/envoyproxy/go-control-plane/envoy/extensions/http/original_ip_detection/xff/v3"
	upstreamhttp "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/contentguard/contentguard/edge/secheaders"
	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/xds/policypb"
)

// Names of the resources generated for a policy. Envoy's bootstrap (and
// grpc-go's, for the API listener) refer to them.
const (
	ListenerName        = "contentguard_ingress"
	RouteConfigName     = "contentguard_routes"
	UpstreamClusterName = "contentguard_upstream"
	ExtAuthzClusterName = "contentguard_ext_authz"
)

// Filter names, as Envoy and grpc-go know them.
const (
	filterExtAuthz  = "envoy.filters.http.ext_authz"
	filterBodyLimit = "envoy.filters.http.body_size_limit"
	filterRouter    = "envoy.filters.http.router"
	networkHCM      = "envoy.filters.network.http_connection_manager"
)

// Defaults of Options.
const (
	DefaultListenAddress  = "0.0.0.0:10000"
	DefaultExtAuthzAddr   = "127.0.0.1:9191"
	DefaultAuthzTimeout   = 500 * time.Millisecond
	DefaultLogFlush       = 100 * time.Millisecond
	requestHeadersTimeout = 10 * time.Second
	// headerSlack is how far above maxHeaderBytes Envoy still accepts a
	// request head, so that the engine, not Envoy, answers an oversize
	// one (with problem+json), as the sidecar does.
	headerSlack = 16 << 10
)

// Options are what the policy does not say about an Envoy deployment.
type Options struct {
	// ListenAddress is Envoy's public listener (host:port); default
	// DefaultListenAddress.
	ListenAddress string
	// ExtAuthz is the host:port (an IP address) of `contentguard sidecar
	// --ext-authz`, which also takes the access logs; default
	// DefaultExtAuthzAddr (the sidecar in the same pod).
	ExtAuthz string
	// AuthzTimeout bounds one Check call; default DefaultAuthzTimeout.
	// Past it Envoy answers 503 (fail closed).
	AuthzTimeout time.Duration
	// LogFlush is how long Envoy buffers access-log entries before
	// streaming them; default DefaultLogFlush. It delays what the circuit
	// breaker hears by at most that much.
	LogFlush time.Duration
}

func (o Options) withDefaults() Options {
	if o.ListenAddress == "" {
		o.ListenAddress = DefaultListenAddress
	}
	if o.ExtAuthz == "" {
		o.ExtAuthz = DefaultExtAuthzAddr
	}
	if o.AuthzTimeout <= 0 {
		o.AuthzTimeout = DefaultAuthzTimeout
	}
	if o.LogFlush <= 0 {
		o.LogFlush = DefaultLogFlush
	}
	return o
}

// Resources are the Envoy resources of one policy, by type.
type Resources struct {
	Listeners []*listener.Listener
	Routes    []*route.RouteConfiguration
	Clusters  []*cluster.Cluster
	Endpoints []*endpoint.ClusterLoadAssignment
}

// Messages returns every resource, in xDS order (clusters, endpoints,
// listeners, routes).
func (r *Resources) Messages() []proto.Message {
	var out []proto.Message
	for _, c := range r.Clusters {
		out = append(out, c)
	}
	for _, e := range r.Endpoints {
		out = append(out, e)
	}
	for _, l := range r.Listeners {
		out = append(out, l)
	}
	for _, rc := range r.Routes {
		out = append(out, rc)
	}
	return out
}

// validator is what protoc-gen-validate generates on every Envoy message.
type validator interface{ ValidateAll() error }

// validate runs ValidateAll on m, which does not look inside Any: call it on
// every message before packing it.
func validate(m proto.Message) error {
	v, ok := m.(validator)
	if !ok {
		return fmt.Errorf("xds: %T has no ValidateAll", m)
	}
	if err := v.ValidateAll(); err != nil {
		return fmt.Errorf("xds: invalid %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return nil
}

// pack validates m and packs it into an Any, deterministically (maps in
// key order): the same policy must give the same bytes, or every reload
// would be a new version.
func pack(m proto.Message) (*anypb.Any, error) {
	if err := validate(m); err != nil {
		return nil, err
	}
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true}); err != nil {
		return nil, err
	}
	return a, nil
}

// packer packs messages, remembering the first failure, so that building a
// resource reads as one expression per message.
type packer struct{ err error }

func (pk *packer) any(m proto.Message) *anypb.Any {
	a, err := pack(m)
	if err != nil && pk.err == nil {
		pk.err = err
	}
	return a
}

// Envoy translates p into the resources an Envoy sidecar needs to enforce
// it: a listener whose connection manager normalises paths as the engine
// does and asks `contentguard sidecar --ext-authz` about every request, the
// route to the upstream with the policy's timeout, the upstream and ext_authz
// clusters and their endpoints. docs/envoy.md lists how each policy field is
// enforced. A policy Envoy cannot enforce exactly is refused with an error
// naming the field (see Enforceable).
func Envoy(p *policy.Policy, opts Options) (*Resources, error) {
	if err := Enforceable(p); err != nil {
		return nil, err
	}
	o := opts.withDefaults()
	up, err := parseUpstream(p.Spec.Upstream.URL)
	if err != nil {
		return nil, err
	}
	authzHost, authzPort, err := splitIPPort(o.ExtAuthz, "ext_authz address")
	if err != nil {
		return nil, err
	}
	listenHost, listenPort, err := splitIPPort(o.ListenAddress, "listen address")
	if err != nil {
		return nil, err
	}
	pk := &packer{}
	hc := envoyHCM(p, o, pk)
	if pk.err != nil {
		return nil, pk.err
	}
	l := &listener.Listener{
		Name:    ListenerName,
		Address: socketAddress(listenHost, listenPort),
		FilterChains: []*listener.FilterChain{{
			Filters: []*listener.Filter{{
				Name:       networkHCM,
				ConfigType: &listener.Filter_TypedConfig{TypedConfig: pk.any(hc)},
			}},
		}},
		// Bound what one connection may buffer (Envoy's default is 1 MiB).
		PerConnectionBufferLimitBytes: wrapperspb.UInt32(32 << 10),
	}
	rc := routeConfig(p, false, pk)
	res := &Resources{
		Listeners: []*listener.Listener{l},
		Routes:    []*route.RouteConfiguration{rc},
		Clusters:  []*cluster.Cluster{upstreamCluster(p, up, false, pk), extAuthzCluster(pk)},
		Endpoints: []*endpoint.ClusterLoadAssignment{
			loadAssignment(UpstreamClusterName, up.host, up.port),
			loadAssignment(ExtAuthzClusterName, authzHost, authzPort),
		},
	}
	if !up.ip {
		res.Endpoints = res.Endpoints[1:] // a DNS upstream carries its own
	}
	if pk.err != nil {
		return nil, pk.err
	}
	if err := res.validate(); err != nil {
		return nil, err
	}
	return res, nil
}

func (r *Resources) validate() error {
	for _, m := range r.Messages() {
		if err := validate(m); err != nil {
			return err
		}
	}
	return nil
}

// Enforceable reports the first policy field Envoy cannot enforce as the
// policy means it, as a policy.Errors naming the field; nil when every field
// can be. A field is never dropped silently.
func Enforceable(p *policy.Policy) error {
	var errs policy.Errors
	fail := func(path, format string, args ...any) {
		errs = append(errs, policy.Error{File: p.Source, Path: path, Message: fmt.Sprintf(format, args...)})
	}
	s := &p.Spec
	if s.Upstream.URL == "" {
		fail("spec.upstream.url", "is required on Envoy: the route needs a cluster to send allowed requests to")
	}
	if s.TokenIssuer != nil {
		fail("spec.tokenIssuer", "is served by the contentguard sidecar's own listener, which Envoy does not route to: "+
			"run the issuer on the sidecar (contentguard sidecar) and point Envoy's clients there")
	}
	// The body timeout is Envoy's request_timeout, one per connection
	// manager: routes that differ cannot all be enforced.
	if len(s.Routes) > 1 {
		for i := 1; i < len(s.Routes); i++ {
			if s.Routes[i].BodyTimeout != s.Routes[0].BodyTimeout {
				fail(fmt.Sprintf("spec.routes[%d].bodyTimeout", i),
					"is %s where spec.routes[0] has %s: Envoy bounds the arrival of a request (request_timeout) once per listener, not per route",
					s.Routes[i].BodyTimeout, s.Routes[0].BodyTimeout)
				break
			}
		}
	}
	if s.Upstream.URL != "" {
		if _, err := parseUpstream(s.Upstream.URL); err != nil {
			fail("spec.upstream.url", "%v", err)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// upstream is spec.upstream.url, taken apart.
type upstream struct {
	host string
	port uint32
	ip   bool
	tls  bool
}

func parseUpstream(raw string) (upstream, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return upstream{}, fmt.Errorf("xds: upstream %q is not an absolute URL", raw)
	}
	if u.Path != "" && u.Path != "/" {
		return upstream{}, fmt.Errorf("xds: upstream %q has a path prefix, which Envoy's route would have to rewrite: give the upstream at its root", raw)
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return upstream{}, fmt.Errorf("xds: upstream %q: bad port", raw)
	}
	host := u.Hostname()
	_, ipErr := netip.ParseAddr(host)
	return upstream{host: host, port: uint32(n), ip: ipErr == nil, tls: u.Scheme == "https"}, nil
}

func splitIPPort(addr, what string) (string, uint32, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("xds: %s %q: %v", what, addr, err)
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return "", 0, fmt.Errorf("xds: %s %q: the host must be an IP address", what, addr)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("xds: %s %q: bad port", what, addr)
	}
	return host, uint32(n), nil
}

func socketAddress(host string, port uint32) *core.Address {
	return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
		Address:       host,
		PortSpecifier: &core.SocketAddress_PortValue{PortValue: port},
	}}}
}

// adsSource says "over the same ADS stream", for RDS and EDS.
func adsSource() *core.ConfigSource {
	return &core.ConfigSource{
		ResourceApiVersion:    core.ApiVersion_V3,
		ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
	}
}

func envoyGRPC(cluster string, timeout time.Duration) *core.GrpcService {
	return &core.GrpcService{
		TargetSpecifier: &core.GrpcService_EnvoyGrpc_{EnvoyGrpc: &core.GrpcService_EnvoyGrpc{ClusterName: cluster}},
		Timeout:         durationpb.New(timeout),
	}
}

// envoyHCM is the connection manager of Envoy's listener. Its parts, in the
// order a request meets them:
//
//   - paths are normalised as the engine does (%2F and %5C unescaped, RFC
//     3986 dot segments, merged slashes), so that the path the engine
//     judges is the path the upstream gets (the engine refuses one it would
//     normalise further: edge.Request.PathAsIs);
//   - Envoy neither generates nor replaces request ids: the engine keeps or
//     makes the policy's, and ext_authz hands it to the upstream and client;
//   - the client address: the engine reads the peer and the forwarding
//     headers itself; Envoy's own view (its logs, x-envoy-external-address)
//     trusts the policy's proxies for X-Forwarded-For;
//   - ext_authz decides; the body limit and the router follow;
//   - Envoy's own errors (timeouts, an unreachable upstream, an oversize
//     body) are answered as problem+json with the request id.
func envoyHCM(p *policy.Policy, o Options, pk *packer) *hcm.HttpConnectionManager {
	s := &p.Spec
	hc := &hcm.HttpConnectionManager{
		StatPrefix: "contentguard",
		CodecType:  hcm.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			ConfigSource:    adsSource(),
			RouteConfigName: RouteConfigName,
		}},
		HttpFilters: []*hcm.HttpFilter{
			{Name: filterExtAuthz, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: pk.any(extAuthzFilter(o))}},
			{Name: filterBodyLimit, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: pk.any(&bodylimit.BodySizeLimit{
				MaxRequestBytes: wrapperspb.UInt64(uint64(s.Limits.MaxBodyBytes)),
			})}},
			{Name: filterRouter, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: pk.any(&router.Router{})}},
		},
		// HTTP/1.0 requests are judged like any other (a request without
		// Host meets the routes all the same).
		HttpProtocolOptions:          &core.Http1ProtocolOptions{AcceptHttp_10: true, DefaultHostForHttp_10: "contentguard"},
		NormalizePath:                wrapperspb.Bool(true),
		MergeSlashes:                 true,
		PathWithEscapedSlashesAction: hcm.HttpConnectionManager_UNESCAPE_AND_FORWARD,
		GenerateRequestId:            wrapperspb.Bool(false),
		PreserveExternalRequestId:    true,
		UseRemoteAddress:             wrapperspb.Bool(true),
		MaxRequestHeadersKb:          wrapperspb.UInt32(headerKiB(s.Limits.MaxHeaderBytes)),
		RequestHeadersTimeout:        durationpb.New(requestHeadersTimeout),
		RequestTimeout:               durationpb.New(s.Routes[0].BodyTimeout + requestHeadersTimeout),
		LocalReplyConfig:             localReplies(p),
		AccessLog: []*accesslog.AccessLog{{
			Name: "envoy.access_loggers.http_grpc",
			ConfigType: &accesslog.AccessLog_TypedConfig{TypedConfig: pk.any(&als.HttpGrpcAccessLogConfig{
				CommonConfig: &als.CommonGrpcAccessLogConfig{
					LogName:             policypb.AccessLogName,
					GrpcService:         envoyGRPC(ExtAuthzClusterName, o.AuthzTimeout),
					TransportApiVersion: core.ApiVersion_V3,
					BufferFlushInterval: durationpb.New(o.LogFlush),
					BufferSizeBytes:     wrapperspb.UInt32(16 << 10),
				},
				AdditionalRequestHeadersToLog: requestIDHeaders(p),
			})},
		}},
	}
	if cidrs := trustedXFF(p); cidrs != nil {
		hc.OriginalIpDetectionExtensions = []*core.TypedExtensionConfig{{
			Name: "envoy.http.original_ip_detection.xff",
			TypedConfig: pk.any(&xff.XffConfig{
				XffTrustedCidrs: &xff.XffTrustedCidrs{Cidrs: cidrs},
				SkipXffAppend:   wrapperspb.Bool(false),
			}),
		}}
		hc.UseRemoteAddress = nil
	}
	for _, r := range s.Routes {
		if r.WebSocket {
			// The engine lets an upgrade through only on the routes that
			// allow it (Decision.Upgrade) and refuses it everywhere else.
			hc.UpgradeConfigs = []*hcm.HttpConnectionManager_UpgradeConfig{{UpgradeType: "websocket"}}
			break
		}
	}
	return hc
}

func headerKiB(maxHeaderBytes int64) uint32 {
	kib := (maxHeaderBytes + headerSlack + 1023) / 1024
	if kib > 8192 { // Envoy's maximum
		kib = 8192
	}
	return uint32(kib)
}

// requestIDHeaders are the request headers the access log carries: the
// policy's request id header, by which the ext_authz server finds the
// decision an outcome belongs to.
func requestIDHeaders(p *policy.Policy) []string {
	return []string{strings.ToLower(p.Spec.RequestID.Header)}
}

// trustedXFF is the policy's trusted proxies as Envoy CIDR ranges, when the
// policy reads the client from X-Forwarded-For only (Envoy's detection
// knows no other header); nil otherwise.
func trustedXFF(p *policy.Policy) []*core.CidrRange {
	ci := p.Spec.ClientIP
	if len(ci.TrustedProxies) == 0 || len(ci.Headers) != 1 || ci.Headers[0] != "X-Forwarded-For" {
		return nil
	}
	out := make([]*core.CidrRange, 0, len(ci.TrustedProxies))
	for _, pfx := range ci.TrustedProxies {
		out = append(out, &core.CidrRange{AddressPrefix: pfx.Addr().String(), PrefixLen: wrapperspb.UInt32(uint32(pfx.Bits()))})
	}
	return out
}

func extAuthzFilter(o Options) *extauthz.ExtAuthz {
	return &extauthz.ExtAuthz{
		Services:            &extauthz.ExtAuthz_GrpcService{GrpcService: envoyGRPC(ExtAuthzClusterName, o.AuthzTimeout)},
		TransportApiVersion: core.ApiVersion_V3,
		// Fail closed: no decision, no request.
		FailureModeAllow: false,
		StatusOnError:    &typeHTTPStatus503,
		// Every header field as sent, repeated names apart.
		EncodeRawHeaders: true,
		// Refuse header mutations Envoy would not apply as asked.
		ValidateMutations:           true,
		StatPrefix:                  "contentguard",
		EnforceResponseHeaderLimits: true,
	}
}

// routeConfig is the one virtual host: every path to the upstream cluster
// with the policy's timeout (the engine already matched the policy's
// routes), the policy's security headers on every answer Envoy makes
// itself, and the policy hash in ext_authz's context. For gRPC clients the
// per-route ext_authz settings are optional (grpc-go does not know the
// filter).
func routeConfig(p *policy.Policy, forGRPC bool, pk *packer) *route.RouteConfiguration {
	perRoute := pk.any(&extauthz.ExtAuthzPerRoute{Override: &extauthz.ExtAuthzPerRoute_CheckSettings{
		CheckSettings: &extauthz.CheckSettings{ContextExtensions: map[string]string{policypb.ContextPolicyKey: p.Hash}},
	}})
	if forGRPC {
		perRoute = pk.any(&route.FilterConfig{Config: perRoute, IsOptional: true})
	}
	action := &route.RouteAction{
		ClusterSpecifier: &route.RouteAction_Cluster{Cluster: UpstreamClusterName},
		Timeout:          durationpb.New(p.Spec.Upstream.Timeout),
	}
	vh := &route.VirtualHost{
		Name:    "contentguard",
		Domains: []string{"*"},
		Routes: []*route.Route{{
			Name:   "upstream",
			Match:  &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
			Action: &route.Route_Route{Route: action},
		}},
		TypedPerFilterConfig: map[string]*anypb.Any{filterExtAuthz: perRoute},
	}
	rc := &route.RouteConfiguration{
		Name:         RouteConfigName,
		VirtualHosts: []*route.VirtualHost{vh},
	}
	if !forGRPC {
		rc.ResponseHeadersToAdd = headerOptions(securityHeaders(p))
	}
	return rc
}

// securityHeaders are the policy's security headers for plain-HTTP answers
// (Envoy's listener is plain HTTP; the engine adds HSTS on TLS itself).
func securityHeaders(p *policy.Policy) [][2]string {
	sh := p.Spec.SecurityHeaders
	switch {
	case sh.Custom != nil:
		h, err := secheaders.Custom(sh.Custom)
		if err != nil {
			return nil // policy validation has refused it already
		}
		return h
	case sh.Preset == "strict":
		return secheaders.Strict(false)
	}
	return nil
}

// headerOptions sets each header, replacing any value the upstream sent:
// OVERWRITE_IF_EXISTS_OR_ADD means the same on every Envoy version.
func headerOptions(h [][2]string) []*core.HeaderValueOption {
	out := make([]*core.HeaderValueOption, 0, len(h))
	for _, kv := range h {
		out = append(out, &core.HeaderValueOption{
			Header:       &core.HeaderValue{Key: strings.ToLower(kv[0]), Value: kv[1]},
			AppendAction: core.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		})
	}
	return out
}

// localReplies render Envoy's own answers as the engine renders its
// rejections: problem+json with the request id and reason, the status the
// engine would give (502, not Envoy's 503, for an upstream it cannot
// reach). Envoy passes every local reply through these mappers, the
// engine's own refusals too (ext_authz denials are local replies): those
// carry policypb.MetadataDecided and are left as the engine made them.
func localReplies(p *policy.Policy) *hcm.LocalReplyConfig {
	id := strings.ToLower(p.Spec.RequestID.Header)
	mapper := func(filter *accesslog.AccessLogFilter, status int, reason, title, detail string) *hcm.ResponseMapper {
		body, _ := structpb.NewStruct(map[string]any{
			"type":       "https://contentguard.dev/problems/" + strings.ReplaceAll(reason, "_", "-"),
			"title":      title,
			"status":     status,
			"detail":     detail,
			"request_id": "%REQ(" + id + ")%",
			"reason":     reason,
		})
		return &hcm.ResponseMapper{
			Filter:     filter,
			StatusCode: wrapperspb.UInt32(uint32(status)),
			BodyFormatOverride: &core.SubstitutionFormatString{
				Format:      &core.SubstitutionFormatString_JsonFormat{JsonFormat: body},
				ContentType: "application/problem+json",
			},
			HeadersToAdd: []*core.HeaderValueOption{{
				Header:       &core.HeaderValue{Key: id, Value: "%REQ(" + id + ")%"},
				AppendAction: core.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
			}},
		}
	}
	flags := func(f ...string) *accesslog.AccessLogFilter {
		return &accesslog.AccessLogFilter{FilterSpecifier: &accesslog.AccessLogFilter_ResponseFlagFilter{
			ResponseFlagFilter: &accesslog.ResponseFlagFilter{Flags: f},
		}}
	}
	status := func(code uint32) *accesslog.AccessLogFilter {
		return &accesslog.AccessLogFilter{FilterSpecifier: &accesslog.AccessLogFilter_StatusCodeFilter{
			StatusCodeFilter: &accesslog.StatusCodeFilter{Comparison: &accesslog.ComparisonFilter{
				Op:    accesslog.ComparisonFilter_EQ,
				Value: &core.RuntimeUInt32{DefaultValue: code, RuntimeKey: "contentguard.local_reply." + strconv.Itoa(int(code))},
			}},
		}}
	}
	// notDecided matches a reply the engine did not make: the key is
	// absent (and, were it present, its value is never "no").
	notDecided := &accesslog.AccessLogFilter{FilterSpecifier: &accesslog.AccessLogFilter_MetadataFilter{
		MetadataFilter: &accesslog.MetadataFilter{
			Matcher: &matcher.MetadataMatcher{
				Filter: policypb.MetadataNamespace,
				Path:   []*matcher.MetadataMatcher_PathSegment{{Segment: &matcher.MetadataMatcher_PathSegment_Key{Key: policypb.MetadataDecided}}},
				Value: &matcher.ValueMatcher{MatchPattern: &matcher.ValueMatcher_StringMatch{
					StringMatch: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: "no"}},
				}},
			},
			MatchIfKeyNotFound: wrapperspb.Bool(true),
		},
	}}
	and := func(fs ...*accesslog.AccessLogFilter) *accesslog.AccessLogFilter {
		return &accesslog.AccessLogFilter{FilterSpecifier: &accesslog.AccessLogFilter_AndFilter{AndFilter: &accesslog.AndFilter{Filters: fs}}}
	}
	timeout := p.Spec.Upstream.Timeout.String()
	return &hcm.LocalReplyConfig{Mappers: []*hcm.ResponseMapper{
		mapper(flags(FlagUpstreamTimeout), 504, "upstream_timeout", "Gateway Timeout", "the upstream did not answer within "+timeout),
		mapper(flags(FlagConnectionFailure, FlagNoHealthyUpstream, FlagConnectionTermination, FlagRemoteReset, FlagProtocolError, FlagOverflow),
			502, "upstream_unreachable", "Bad Gateway", "the upstream could not be reached"),
		mapper(and(status(413), notDecided), 413, "body_too_large", "Content Too Large",
			"the request body exceeds the limit of "+strconv.FormatInt(p.Spec.Limits.MaxBodyBytes, 10)+" bytes"),
		mapper(and(status(408), notDecided), 408, "client_timeout", "Request Timeout", "the request did not arrive in time"),
		mapper(and(status(431), notDecided), 431, "headers_too_large", "Request Header Fields Too Large", "the request headers are too large"),
		mapper(and(status(403), notDecided), 403, "upgrade_refused", "Forbidden",
			"Envoy upgrades a connection only to websocket, and only when a route of the policy allows it"),
		mapper(and(status(400), notDecided), 400, "bad_path", "Bad Request", "the request path is not a valid, normalisable path"),
		mapper(and(flags(FlagAuthzError), notDecided), 503, "authz_unavailable", "Service Unavailable", "the edge could not decide on the request"),
	}}
}

// Envoy's response flags (the short names its access logs and filters use)
// that the local replies and the access-log outcome read.
const (
	FlagUpstreamTimeout       = "UT"
	FlagConnectionFailure     = "UF"
	FlagNoHealthyUpstream     = "UH"
	FlagConnectionTermination = "UC"
	FlagRemoteReset           = "UR"
	FlagProtocolError         = "UPE" // the upstream's answer was not valid HTTP
	FlagOverflow              = "UO"
	FlagAuthzError            = "UAEX"
)

var typeHTTPStatus503 = typeStatus(503) // Service Unavailable

// upstreamCluster is the policy's upstream. Its circuit breakers and
// outlier detection are Envoy's second line behind the engine's breaker:
// they eject the upstream only after twice the policy's consecutive
// failures (the engine's breaker has opened long before), for openFor.
func upstreamCluster(p *policy.Policy, up upstream, forGRPC bool, pk *packer) *cluster.Cluster {
	cb := p.Spec.CircuitBreaker
	c := &cluster.Cluster{
		Name:           UpstreamClusterName,
		ConnectTimeout: durationpb.New(minDuration(p.Spec.Upstream.Timeout, 5*time.Second)),
		LbPolicy:       cluster.Cluster_ROUND_ROBIN,
	}
	if up.ip {
		c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_EDS}
		c.EdsClusterConfig = &cluster.Cluster_EdsClusterConfig{EdsConfig: adsSource()}
	} else {
		typ := cluster.Cluster_STRICT_DNS
		if forGRPC {
			typ = cluster.Cluster_LOGICAL_DNS
		}
		c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: typ}
		c.LoadAssignment = loadAssignment(UpstreamClusterName, up.host, up.port)
	}
	if forGRPC {
		return c
	}
	c.CircuitBreakers = &cluster.CircuitBreakers{Thresholds: []*cluster.CircuitBreakers_Thresholds{{
		Priority: core.RoutingPriority_DEFAULT,
		// contentguard never retries a request: neither may Envoy.
		MaxRetries: wrapperspb.UInt32(0),
	}}}
	if cb.ConsecutiveFailures > 0 {
		c.OutlierDetection = &cluster.OutlierDetection{
			Consecutive_5Xx:                    wrapperspb.UInt32(0),
			EnforcingConsecutive_5Xx:           wrapperspb.UInt32(0),
			ConsecutiveGatewayFailure:          wrapperspb.UInt32(uint32(2 * cb.ConsecutiveFailures)),
			EnforcingConsecutiveGatewayFailure: wrapperspb.UInt32(100),
			BaseEjectionTime:                   durationpb.New(cb.OpenFor),
			MaxEjectionTime:                    durationpb.New(cb.OpenFor),
			MaxEjectionPercent:                 wrapperspb.UInt32(100),
			EnforcingSuccessRate:               wrapperspb.UInt32(0),
		}
	}
	if up.tls {
		c.TransportSocket = upstreamTLS(up.host, pk)
	}
	return c
}

func minDuration(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}

// extAuthzCluster is `contentguard sidecar --ext-authz`: gRPC, so HTTP/2.
func extAuthzCluster(pk *packer) *cluster.Cluster {
	opts := &upstreamhttp.HttpProtocolOptions{
		UpstreamProtocolOptions: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
					Http2ProtocolOptions: &core.Http2ProtocolOptions{},
				},
			},
		},
	}
	return &cluster.Cluster{
		Name:                 ExtAuthzClusterName,
		ConnectTimeout:       durationpb.New(time.Second),
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
		EdsClusterConfig:     &cluster.Cluster_EdsClusterConfig{EdsConfig: adsSource()},
		LbPolicy:             cluster.Cluster_ROUND_ROBIN,
		TypedExtensionProtocolOptions: map[string]*anypb.Any{
			"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": pk.any(opts),
		},
	}
}

// loadAssignment is one endpoint in one locality. grpc-go needs the
// locality and its weight; Envoy takes them as they are.
func loadAssignment(clusterName, host string, port uint32) *endpoint.ClusterLoadAssignment {
	return &endpoint.ClusterLoadAssignment{
		ClusterName: clusterName,
		Endpoints: []*endpoint.LocalityLbEndpoints{{
			Locality:            &core.Locality{Region: "contentguard", Zone: "local"},
			LoadBalancingWeight: wrapperspb.UInt32(1),
			LbEndpoints: []*endpoint.LbEndpoint{{
				HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
					Address: socketAddress(host, port),
				}},
				HealthStatus:        core.HealthStatus_HEALTHY,
				LoadBalancingWeight: wrapperspb.UInt32(1),
			}},
		}},
	}
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
