package xds

import (
	"fmt"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/contentguard/contentguard/policy"
)

// GRPC translates p for proxyless gRPC clients (grpc-go's xds:/// resolver):
// an API listener named target, with a connection manager of its own, the
// route, and the upstream cluster with its endpoints. grpc-go knows only the
// router, fault and gcp_authn filters, so ext_authz is there but optional
// (and so is its per-route setting), and nothing about trusted hops is set:
// gRPC clients are the callers, not a proxy in front of them.
//
// The snapshot of a gRPC client holds exactly these resources: grpc-go asks
// for each by name, and go-control-plane's ADS cache answers a named request
// only when it names every resource of the type.
func GRPC(p *policy.Policy, target string, opts Options) (*Resources, error) {
	if target == "" {
		return nil, fmt.Errorf("xds: a gRPC listener needs the target name clients dial")
	}
	o := opts.withDefaults()
	up, err := parseUpstream(p.Spec.Upstream.URL)
	if err != nil {
		return nil, err
	}
	pk := &packer{}
	hc := &hcm.HttpConnectionManager{
		StatPrefix: "contentguard_grpc",
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			ConfigSource:    adsSource(),
			RouteConfigName: RouteConfigName,
		}},
		HttpFilters: []*hcm.HttpFilter{
			{Name: filterExtAuthz, IsOptional: true, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: pk.any(extAuthzFilter(o))}},
			{Name: filterRouter, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: pk.any(&router.Router{})}},
		},
	}
	l := &listener.Listener{
		Name:        target,
		ApiListener: &listener.ApiListener{ApiListener: pk.any(hc)},
	}
	res := &Resources{
		Listeners: []*listener.Listener{l},
		Routes:    []*route.RouteConfiguration{routeConfig(p, true, pk)},
		Clusters:  []*cluster.Cluster{upstreamCluster(p, up, true, pk)},
	}
	if up.ip {
		res.Endpoints = []*endpoint.ClusterLoadAssignment{loadAssignment(UpstreamClusterName, up.host, up.port)}
	}
	if pk.err != nil {
		return nil, pk.err
	}
	if err := res.validate(); err != nil {
		return nil, err
	}
	return res, nil
}

func typeStatus(code int) typev3.HttpStatus {
	return typev3.HttpStatus{Code: typev3.StatusCode(code)}
}

// systemCAs is Debian's (and most distributions') CA bundle, which the
// official Envoy images carry too.
const systemCAs = "/etc/ssl/certs/ca-certificates.crt"

// upstreamTLS verifies an https upstream against the system CAs and its
// host name.
func upstreamTLS(host string, pk *packer) *core.TransportSocket {
	ctx := &tlsv3.UpstreamTlsContext{
		Sni: host,
		CommonTlsContext: &tlsv3.CommonTlsContext{
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa: &core.DataSource{Specifier: &core.DataSource_Filename{Filename: systemCAs}},
				MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
					SanType: tlsv3.SubjectAltNameMatcher_DNS,
					Matcher: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: host}},
				}},
			}},
		},
	}
	return &core.TransportSocket{
		Name:       "envoy.transport_sockets.tls",
		ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: pk.any(ctx)},
	}
}
