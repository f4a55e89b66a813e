package extauthz_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	accesslogcfg "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	accesslogdata "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	als "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/grpc/v3"
	bodylimit "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/body_size_limit/v3"
	extauthzcfg "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/contentguard/contentguard/xds"
	"github.com/contentguard/contentguard/xds/policypb"
)

// envoy emulates, for the conformance suite, the one Envoy that the
// resources of xds.Envoy configure: it reads its behaviour from those
// resources (the connection manager's path handling and local reply
// mappers, the ext_authz and body-limit filters, the route's timeout and
// headers, the access log's headers) and fails the test on any part of
// them it does not model, so that what it runs is what the control plane
// serves. Envoy cannot run here; where its own code decides (the HTTP/1
// codec, the path canonicaliser) the emulation follows Envoy's
// documentation and says so.
type envoy struct {
	t        testing.TB
	hc       *hcm.HttpConnectionManager
	authz    *extauthzcfg.ExtAuthz
	bodyMax  uint64
	rc       *route.RouteConfiguration
	action   *route.RouteAction
	ctxExt   map[string]string
	logCfg   *als.HttpGrpcAccessLogConfig
	check    authv3.AuthorizationClient
	logs     accesslogv3.AccessLogService_StreamAccessLogsClient
	upstream string // host:port the cluster's endpoint names
	http     *http.Client
}

// newEnvoy builds the emulation from the Envoy resources r, talking to the
// ext_authz and access-log services over conn and forwarding to upstream.
func newEnvoy(t testing.TB, r *xds.Resources, conn *grpc.ClientConn, upstream string) *envoy {
	t.Helper()
	e := &envoy{t: t, upstream: upstream, check: authv3.NewAuthorizationClient(conn)}
	if len(r.Listeners) != 1 || len(r.Routes) != 1 {
		t.Fatalf("emulator: want one listener and one route configuration, got %d and %d", len(r.Listeners), len(r.Routes))
	}
	filters := r.Listeners[0].GetFilterChains()[0].GetFilters()
	if len(filters) != 1 {
		t.Fatalf("emulator: %d network filters", len(filters))
	}
	e.hc = &hcm.HttpConnectionManager{}
	if err := filters[0].GetTypedConfig().UnmarshalTo(e.hc); err != nil {
		t.Fatal(err)
	}
	for _, f := range e.hc.GetHttpFilters() {
		switch f.GetName() {
		case "envoy.filters.http.ext_authz":
			e.authz = &extauthzcfg.ExtAuthz{}
			if err := f.GetTypedConfig().UnmarshalTo(e.authz); err != nil {
				t.Fatal(err)
			}
		case "envoy.filters.http.body_size_limit":
			bl := &bodylimit.BodySizeLimit{}
			if err := f.GetTypedConfig().UnmarshalTo(bl); err != nil {
				t.Fatal(err)
			}
			e.bodyMax = bl.GetMaxRequestBytes().GetValue()
		case "envoy.filters.http.router":
		default:
			t.Fatalf("emulator: the HTTP filter %s is not modelled", f.GetName())
		}
	}
	if e.authz == nil || !e.authz.GetEncodeRawHeaders() || e.authz.GetFailureModeAllow() {
		t.Fatal("emulator: want ext_authz with raw headers, failing closed")
	}
	for _, al := range e.hc.GetAccessLog() {
		e.logCfg = &als.HttpGrpcAccessLogConfig{}
		if err := al.GetTypedConfig().UnmarshalTo(e.logCfg); err != nil {
			t.Fatal(err)
		}
	}
	e.rc = r.Routes[0]
	vh := e.rc.GetVirtualHosts()
	if len(vh) != 1 || len(vh[0].GetRoutes()) != 1 || vh[0].GetRoutes()[0].GetMatch().GetPrefix() != "/" {
		t.Fatal("emulator: want one virtual host with one route on /")
	}
	e.action = vh[0].GetRoutes()[0].GetRoute()
	if pf := vh[0].GetTypedPerFilterConfig()["envoy.filters.http.ext_authz"]; pf != nil {
		per := &extauthzcfg.ExtAuthzPerRoute{}
		if err := pf.UnmarshalTo(per); err != nil {
			t.Fatal(err)
		}
		e.ctxExt = per.GetCheckSettings().GetContextExtensions()
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logs, err := accesslogv3.NewAccessLogServiceClient(conn).StreamAccessLogs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.logs = logs
	if err := logs.Send(&accesslogv3.StreamAccessLogsMessage{Identifier: &accesslogv3.StreamAccessLogsMessage_Identifier{
		Node: &core.Node{Id: "emulated-envoy"}, LogName: e.logCfg.GetCommonConfig().GetLogName()}}); err != nil {
		t.Fatal(err)
	}
	e.http = &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true},
		// Envoy's router passes redirects on; it does not follow them.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return e
}

// field is one header field as Envoy holds it: the name lower-cased.
type field struct{ name, value string }

// exchange is one request through the emulated Envoy and what came of it.
type exchange struct {
	status    int
	header    http.Header
	body      []byte
	forwarded bool
	upHeader  http.Header
	upPath    string

	flags    *accesslogdata.ResponseFlags
	details  string
	metadata *structpb.Struct
	reqHdrs  []field
}

// request is what the client sends.
type request struct {
	method, target, proto string
	header                http.Header
	noHost                bool
	peer                  string
	body                  []byte
	down                  bool // the upstream refuses connections
}

// serve runs one request through the emulated Envoy.
func (e *envoy) serve(r request) *exchange {
	x := &exchange{header: http.Header{}, flags: &accesslogdata.ResponseFlags{}}
	// The HTTP/1 codec: names lower-cased, :authority from Host (or the
	// configured default for HTTP/1.0 without one), an h2c upgrade offer
	// dropped (Envoy does not do h2c upgrades and removes the offer).
	authority := "edge.test"
	if r.noHost {
		if r.proto != "HTTP/1.0" || !e.hc.GetHttpProtocolOptions().GetAcceptHttp_10() {
			return e.localReply(x, 400, "missing_host_header")
		}
		authority = e.hc.GetHttpProtocolOptions().GetDefaultHostForHttp_10()
	}
	var fields []field
	for name, values := range r.header {
		for _, v := range values {
			fields = append(fields, field{strings.ToLower(name), v})
		}
	}
	if strings.EqualFold(get(fields, "upgrade"), "h2c") {
		fields = del(del(del(fields, "upgrade"), "http2-settings"), "connection")
	}
	// An upgrade to a protocol the connection manager is not configured
	// for is refused before any filter runs (403, upgrade_failed).
	if up := get(fields, "upgrade"); up != "" && !e.upgrades(up) {
		return e.localReply(x, 403, "upgrade_failed")
	}
	// The connection manager: path normalisation as configured.
	rawPath, query, hasQuery := strings.Cut(r.target, "?")
	path, ok := e.normalise(rawPath)
	if !ok {
		return e.localReply(x, 400, "path_normalization_failed")
	}
	fullPath := path
	if hasQuery {
		fullPath += "?" + query
	}
	// use_remote_address (or the XFF detection extension, which appends
	// unless told not to): the peer is appended to X-Forwarded-For, and
	// X-Forwarded-Proto says what the downstream connection was.
	if e.hc.GetUseRemoteAddress().GetValue() || appendsXFF(e.hc) {
		xff := get(fields, "x-forwarded-for")
		fields = del(fields, "x-forwarded-for")
		if xff != "" {
			xff += ","
		}
		fields = append(fields, field{"x-forwarded-for", xff + r.peer})
	}
	fields = append(del(fields, "x-forwarded-proto"), field{"x-forwarded-proto", "http"})
	pseudo := []field{{":authority", authority}, {":path", fullPath}, {":method", r.method}, {":scheme", "http"}}

	// ext_authz.
	ctx, cancel := context.WithTimeout(context.Background(), e.authz.GetGrpcService().GetTimeout().AsDuration())
	resp, err := e.check.Check(ctx, e.checkRequest(r, pseudo, fields, fullPath))
	cancel()
	if err != nil {
		x.flags.UnauthorizedDetails = &accesslogdata.ResponseFlags_Unauthorized{}
		return e.localReply(x, int(e.authz.GetStatusOnError().GetCode()), "ext_authz_error")
	}
	x.metadata = resp.GetDynamicMetadata()
	if resp.GetStatus().GetCode() != 0 {
		d := resp.GetDeniedResponse()
		x.flags.UnauthorizedDetails = &accesslogdata.ResponseFlags_Unauthorized{Reason: accesslogdata.ResponseFlags_Unauthorized_EXTERNAL_SERVICE}
		setOptions(x.header, d.GetHeaders())
		x.body = []byte(d.GetBody())
		x.reqHdrs = fields
		return e.localReply(x, int(d.GetStatus().GetCode()), "ext_authz_denied")
	}
	okResp := resp.GetOkResponse()
	for _, o := range okResp.GetHeaders() {
		if o.GetAppendAction() != core.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			e.t.Fatalf("emulator: ext_authz header %s with append action %v", o.GetHeader().GetKey(), o.GetAppendAction())
		}
		fields = append(del(fields, o.GetHeader().GetKey()), field{o.GetHeader().GetKey(), o.GetHeader().GetValue()})
	}
	for _, name := range okResp.GetHeadersToRemove() {
		fields = del(fields, name)
	}
	x.reqHdrs = fields
	// Every response from here passes ext_authz's encoder, which sets the
	// response headers of the OK.
	defer func() { setOptions(x.header, okResp.GetResponseHeadersToAdd()) }()

	// The body limit filter.
	if e.bodyMax > 0 && uint64(len(r.body)) > e.bodyMax {
		return e.localReply(x, 413, "request_payload_too_large")
	}
	// The router.
	return e.forward(x, r, authority, fullPath, fields)
}

func (e *envoy) checkRequest(r request, pseudo, fields []field, fullPath string) *authv3.CheckRequest {
	host, port, _ := net.SplitHostPort(net.JoinHostPort(r.peer, "40000"))
	p, _ := strconv.Atoi(port)
	hm := &core.HeaderMap{}
	for _, f := range append(append([]field(nil), pseudo...), fields...) {
		hm.Headers = append(hm.Headers, &core.HeaderValue{Key: f.name, RawValue: []byte(f.value)})
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &core.Address{Address: &core.Address_SocketAddress{
			SocketAddress: &core.SocketAddress{Address: host, PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(p)}}}}},
		Destination: &authv3.AttributeContext_Peer{Address: &core.Address{Address: &core.Address_SocketAddress{
			SocketAddress: &core.SocketAddress{Address: "127.0.0.1", PortSpecifier: &core.SocketAddress_PortValue{PortValue: 10000}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id:        "1",
			Method:    r.method,
			Path:      fullPath,
			Host:      get(pseudo, ":authority"),
			Scheme:    "http",
			Protocol:  r.proto,
			Size:      int64(len(r.body)),
			HeaderMap: hm,
		}},
		ContextExtensions: e.ctxExt,
	}}
}

// forward sends the request upstream with the route's timeout.
func (e *envoy) forward(x *exchange, r request, authority, fullPath string, fields []field) *exchange {
	target := e.upstream
	if r.down {
		target = deadAddr(e.t)
	}
	req, err := http.NewRequest(r.method, "http://"+target+fullPath, bytes.NewReader(r.body))
	if err != nil {
		e.t.Fatalf("emulator: upstream request: %v", err)
	}
	req.Host = authority
	for _, f := range fields {
		req.Header.Add(f.name, f.value)
	}
	timeout := e.action.GetTimeout().AsDuration()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	x.forwarded = true
	resp, err := e.http.Do(req.WithContext(ctx))
	switch {
	case err != nil && ctx.Err() != nil:
		x.flags.UpstreamRequestTimeout = true
		return e.localReply(x, 504, "upstream_response_timeout")
	case err != nil && strings.Contains(err.Error(), "malformed HTTP"):
		// A response Envoy's codec cannot parse: 502, flag UPE.
		x.flags.UpstreamProtocolError = true
		return e.localReply(x, 502, "upstream_reset_before_response_started{protocol_error}")
	case err != nil:
		x.flags.UpstreamConnectionFailure = true
		return e.localReply(x, 503, "upstream_reset_before_response_started{connection_failure}")
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	x.status, x.body, x.details = resp.StatusCode, body, "via_upstream"
	x.header = resp.Header.Clone()
	setOptions(x.header, e.rc.GetResponseHeadersToAdd())
	return x
}

// localReply is Envoy's sendLocalReply: the status and body (the denial's,
// or Envoy's own text), then the first local reply mapper whose filter
// matches rewrites status, body and headers.
func (e *envoy) localReply(x *exchange, status int, details string) *exchange {
	x.status, x.details = status, details
	if x.body == nil && !strings.HasPrefix(details, "ext_authz_denied") {
		x.body = []byte(details)
		x.header.Set("Content-Type", "text/plain")
	}
	for _, m := range e.hc.GetLocalReplyConfig().GetMappers() {
		if !e.matches(m.GetFilter(), x) {
			continue
		}
		if c := m.GetStatusCode(); c != nil {
			x.status = int(c.GetValue())
		}
		if f := m.GetBodyFormatOverride(); f != nil {
			x.body = e.format(f.GetJsonFormat(), x)
			x.header.Set("Content-Type", f.GetContentType())
		}
		for _, o := range m.GetHeadersToAdd() {
			x.header.Set(o.GetHeader().GetKey(), e.substitute(o.GetHeader().GetValue(), x))
		}
		break
	}
	return x
}

// matches evaluates the access-log filters the mappers use.
func (e *envoy) matches(f *accesslogcfg.AccessLogFilter, x *exchange) bool {
	switch {
	case f.GetAndFilter() != nil:
		for _, sub := range f.GetAndFilter().GetFilters() {
			if !e.matches(sub, x) {
				return false
			}
		}
		return true
	case f.GetStatusCodeFilter() != nil:
		c := f.GetStatusCodeFilter().GetComparison()
		if c.GetOp() != accesslogcfg.ComparisonFilter_EQ {
			e.t.Fatalf("emulator: status comparison %v", c.GetOp())
		}
		return uint32(x.status) == c.GetValue().GetDefaultValue()
	case f.GetResponseFlagFilter() != nil:
		for _, flag := range f.GetResponseFlagFilter().GetFlags() {
			if hasFlag(x.flags, flag) {
				return true
			}
		}
		return false
	case f.GetMetadataFilter() != nil:
		mf := f.GetMetadataFilter()
		m := mf.GetMatcher()
		if m.GetFilter() != policypb.MetadataNamespace || len(m.GetPath()) != 1 {
			e.t.Fatalf("emulator: metadata filter %v", m)
		}
		v, found := x.metadata.GetFields()[m.GetPath()[0].GetKey()]
		if !found {
			return mf.GetMatchIfKeyNotFound().GetValue()
		}
		return v.GetStringValue() == m.GetValue().GetStringMatch().GetExact()
	}
	e.t.Fatalf("emulator: access-log filter %v is not modelled", f)
	return false
}

func hasFlag(f *accesslogdata.ResponseFlags, flag string) bool {
	switch flag {
	case xds.FlagUpstreamTimeout:
		return f.GetUpstreamRequestTimeout()
	case xds.FlagConnectionFailure:
		return f.GetUpstreamConnectionFailure()
	case xds.FlagNoHealthyUpstream:
		return f.GetNoHealthyUpstream()
	case xds.FlagConnectionTermination:
		return f.GetUpstreamConnectionTermination()
	case xds.FlagRemoteReset:
		return f.GetUpstreamRemoteReset()
	case xds.FlagProtocolError:
		return f.GetUpstreamProtocolError()
	case xds.FlagOverflow:
		return f.GetUpstreamOverflow()
	case xds.FlagAuthzError:
		return f.GetUnauthorizedDetails() != nil
	}
	panic("emulator: response flag " + flag)
}

// format renders a json_format body: string values may hold %REQ(name)%.
func (e *envoy) format(s *structpb.Struct, x *exchange) []byte {
	out := map[string]any{}
	for k, v := range s.GetFields() {
		switch v.GetKind().(type) {
		case *structpb.Value_StringValue:
			out[k] = e.substitute(v.GetStringValue(), x)
		default:
			out[k] = v.AsInterface()
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// substitute replaces %REQ(name)% with the request header's value (Envoy
// renders a missing one as "-"; in JSON as null, which no mapper here
// meets: every mapped reply comes after ext_authz set the request id).
func (e *envoy) substitute(s string, x *exchange) string {
	for {
		i := strings.Index(s, "%REQ(")
		if i < 0 {
			return s
		}
		j := strings.Index(s[i:], ")%")
		if j < 0 {
			e.t.Fatalf("emulator: bad format %q", s)
		}
		name := strings.ToLower(s[i+5 : i+j])
		v := get(x.reqHdrs, name)
		if v == "" {
			v = "-"
		}
		s = s[:i] + v + s[i+j+2:]
	}
}

// report streams the access-log entry of x to the access-log service, as
// Envoy's gRPC access logger does at the end of the stream.
func (e *envoy) report(x *exchange) {
	headers := map[string]string{}
	for _, name := range e.logCfg.GetAdditionalRequestHeadersToLog() {
		if v := get(x.reqHdrs, name); v != "" {
			headers[name] = v
		}
	}
	common := &accesslogdata.AccessLogCommon{ResponseFlags: x.flags}
	if x.metadata != nil {
		common.Metadata = &core.Metadata{FilterMetadata: map[string]*structpb.Struct{policypb.MetadataNamespace: x.metadata}}
	}
	if x.forwarded {
		common.TimeToFirstUpstreamRxByte = durationpb.New(time.Millisecond)
	}
	entry := &accesslogdata.HTTPAccessLogEntry{
		CommonProperties: common,
		Request:          &accesslogdata.HTTPRequestProperties{RequestHeaders: headers, RequestId: get(x.reqHdrs, "x-request-id")},
		Response:         &accesslogdata.HTTPResponseProperties{ResponseCode: wrapperspb.UInt32(uint32(x.status)), ResponseCodeDetails: x.details},
	}
	if err := e.logs.Send(&accesslogv3.StreamAccessLogsMessage{LogEntries: &accesslogv3.StreamAccessLogsMessage_HttpLogs{
		HttpLogs: &accesslogv3.StreamAccessLogsMessage_HTTPAccessLogEntries{LogEntry: []*accesslogdata.HTTPAccessLogEntry{entry}}}}); err != nil {
		e.t.Fatalf("emulator: access log: %v", err)
	}
}

// normalise applies the connection manager's path options in Envoy's
// order: escaped slashes, then RFC 3986 normalisation (Envoy's
// PathUtil::canonicalPath, Chromium's URL canonicaliser: a backslash is a
// slash, escapes of unreserved characters are decoded, "." and ".." — also
// escaped, %2e — are resolved and cannot climb above the root, escape hex
// is upper-cased), then merged slashes.
func (e *envoy) normalise(p string) (string, bool) {
	if !strings.HasPrefix(p, "/") {
		return "", false
	}
	if e.hc.GetPathWithEscapedSlashesAction() == hcm.HttpConnectionManager_UNESCAPE_AND_FORWARD {
		for _, esc := range []string{"%2F", "%2f"} {
			p = strings.ReplaceAll(p, esc, "/")
		}
		for _, esc := range []string{"%5C", "%5c"} {
			p = strings.ReplaceAll(p, esc, "\\")
		}
	} else if a := e.hc.GetPathWithEscapedSlashesAction(); a != hcm.HttpConnectionManager_KEEP_UNCHANGED && a != hcm.HttpConnectionManager_IMPLEMENTATION_SPECIFIC_DEFAULT {
		e.t.Fatalf("emulator: path_with_escaped_slashes_action %v", a)
	}
	if e.hc.GetNormalizePath().GetValue() {
		p = canonicalPath(p)
	}
	if e.hc.GetMergeSlashes() {
		for strings.Contains(p, "//") {
			p = strings.ReplaceAll(p, "//", "/")
		}
	}
	return p, true
}

func canonicalPath(p string) string {
	p = strings.ReplaceAll(p, "\\", "/")
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]) {
			v, _ := strconv.ParseUint(p[i+1:i+3], 16, 8)
			if unreserved(byte(v)) {
				b.WriteByte(byte(v))
			} else {
				b.WriteString("%" + strings.ToUpper(p[i+1:i+3]))
			}
			i += 2
			continue
		}
		b.WriteByte(c)
	}
	segs := strings.Split(b.String()[1:], "/")
	var out []string
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0
}

// upgrades reports whether the connection manager takes an upgrade to
// protocol (its upgrade_configs, compared without regard to case).
func (e *envoy) upgrades(protocol string) bool {
	for _, uc := range e.hc.GetUpgradeConfigs() {
		if strings.EqualFold(uc.GetUpgradeType(), protocol) && (uc.GetEnabled() == nil || uc.GetEnabled().GetValue()) {
			return true
		}
	}
	return false
}

func appendsXFF(hc *hcm.HttpConnectionManager) bool {
	for _, ext := range hc.GetOriginalIpDetectionExtensions() {
		if ext.GetName() == "envoy.http.original_ip_detection.xff" {
			return true
		}
	}
	return false
}

func get(fields []field, name string) string {
	var vs []string
	for _, f := range fields {
		if f.name == name {
			vs = append(vs, f.value)
		}
	}
	return strings.Join(vs, ",")
}

func del(fields []field, name string) []field {
	out := fields[:0:0]
	for _, f := range fields {
		if f.name != name {
			out = append(out, f)
		}
	}
	return out
}

// setOptions applies header options to h; every one this configuration
// makes overwrites.
func setOptions(h http.Header, opts []*core.HeaderValueOption) {
	for _, o := range opts {
		if o.GetAppendAction() != core.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			panic(fmt.Sprintf("emulator: header %s with append action %v", o.GetHeader().GetKey(), o.GetAppendAction()))
		}
		h.Set(o.GetHeader().GetKey(), o.GetHeader().GetValue())
	}
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
