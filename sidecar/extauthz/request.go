package extauthz

import (
	"net/http"
	"net/netip"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/xds/policypb"
)

// maxHeaderFields bounds the header fields taken from one CheckRequest:
// Envoy's own limit is 100 by default. Past it the request is refused
// (edge.Request.HeadersTruncated), never judged on part of its headers.
const maxHeaderFields = 500

// Request is the engine's view of the request a CheckRequest describes,
// read the way Envoy fills it in
// (https://www.envoyproxy.io/docs/envoy/latest/api-v3/service/auth/v3/attribute_context.proto):
//
//   - attributes.request.http.method, .host (Envoy's :authority), and
//     .path — the path and query after the connection manager's
//     normalisation, which is what Envoy forwards: the engine must not
//     normalise it further (PathAsIs);
//   - the header fields: header_map when Envoy sends them raw (the filter's
//     encode_raw_headers, which xds sets: repeated names stay apart and
//     values are bytes), else headers, a map of lower-case names whose
//     repeated values Envoy has joined with ","; pseudo-headers (":path",
//     ":authority", ...) are not header fields and are left out;
//   - attributes.source.address: the peer of Envoy's downstream connection
//     (the client, or the last proxy before Envoy); the engine finds the
//     client behind trusted proxies itself, from the forwarding headers;
//   - the body size from Content-Length (-1 when chunked): Envoy does not
//     send the body, and its body_size_limit filter bounds a streamed one;
//   - TLS when .scheme is https.
func Request(req *authv3.CheckRequest) edge.Request {
	a := req.GetAttributes()
	h := a.GetRequest().GetHttp()
	path, query, _ := strings.Cut(h.GetPath(), "?")
	r := edge.Request{
		Method:   h.GetMethod(),
		Host:     h.GetHost(),
		Path:     path,
		RawQuery: query,
		Header:   http.Header{},
		TLS:      strings.EqualFold(h.GetScheme(), "https"),
		PathAsIs: true,
	}
	if addr, err := netip.ParseAddr(a.GetSource().GetAddress().GetSocketAddress().GetAddress()); err == nil {
		r.Peer = addr.Unmap()
	}
	n := 0
	add := func(name, value string) {
		if strings.HasPrefix(name, ":") {
			return
		}
		if n++; n > maxHeaderFields {
			r.HeadersTruncated = true
			return
		}
		key := http.CanonicalHeaderKey(name)
		r.Header[key] = append(r.Header[key], value)
	}
	if hm := h.GetHeaderMap(); hm != nil {
		for _, hv := range hm.GetHeaders() {
			v := hv.GetValue()
			if raw := hv.GetRawValue(); len(raw) > 0 {
				v = string(raw)
			}
			add(hv.GetKey(), v)
		}
	} else {
		for name, v := range h.GetHeaders() {
			add(name, v)
		}
	}
	r.ContentLength = edge.DeclaredLength(r.Header.Get("Content-Length"), r.Header.Get("Transfer-Encoding"))
	return r
}

// Response is the CheckResponse that makes Envoy apply decision d to the
// request r (https://www.envoyproxy.io/docs/envoy/latest/api-v3/service/auth/v3/external_auth.proto):
//
//   - allowed: status OK and an ok_response whose headers set the upstream
//     headers of the decision (request ids, verified claims), each with
//     OVERWRITE_IF_EXISTS_OR_ADD (append semantics changed across Envoy
//     versions; this one reads the same on all); headers_to_remove drops
//     the client's fields the decision strips, never one it also sets;
//     response_headers_to_add carries the response headers (request id,
//     rate limit, CORS, security headers) for Envoy to set on the
//     upstream's answer. An OK carries no body. The ticket (see Server)
//     rides in dynamic_metadata, which Envoy puts in the access log.
//   - refused (and CORS preflights, answered at the edge): status
//     PERMISSION_DENIED (UNAUTHENTICATED for 401) and a denied_response
//     with the engine's status, headers and body; content-type is set to
//     the problem's, or Envoy would say text/plain.
func Response(r edge.Request, d *edge.Decision, ticket string) *authv3.CheckResponse {
	if !d.Allow {
		headers := http.Header{}
		d.SetResponseHeaders(headers)
		if len(d.Body) > 0 && d.ContentType != "" {
			headers.Set("Content-Type", d.ContentType)
		}
		rpc := code.Code_PERMISSION_DENIED
		if d.Status == http.StatusUnauthorized {
			rpc = code.Code_UNAUTHENTICATED
		}
		return &authv3.CheckResponse{
			Status: &rpcstatus.Status{Code: int32(rpc)},
			// Envoy's local reply mappers leave the engine's answers alone.
			DynamicMetadata: &structpb.Struct{Fields: map[string]*structpb.Value{
				policypb.MetadataDecided: structpb.NewStringValue("yes"),
			}},
			HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
				Status:  &typev3.HttpStatus{Code: typev3.StatusCode(d.Status)},
				Headers: options(headers),
				Body:    string(d.Body),
			}},
		}
	}
	ok := &authv3.OkHttpResponse{}
	for _, kv := range d.UpstreamHeaders {
		ok.Headers = append(ok.Headers, option(kv[0], kv[1]))
	}
	for name := range r.Header {
		if d.Strips(name) && !sets(d, name) && removable(name) {
			ok.HeadersToRemove = append(ok.HeadersToRemove, strings.ToLower(name))
		}
	}
	resp := http.Header{}
	d.SetResponseHeaders(resp)
	ok.ResponseHeadersToAdd = options(resp)
	out := &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(code.Code_OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
	}
	if ticket != "" {
		out.DynamicMetadata = &structpb.Struct{Fields: map[string]*structpb.Value{
			policypb.MetadataTicket: structpb.NewStringValue(ticket),
		}}
	}
	return out
}

// sets reports whether d sets a header called name (exactly, ignoring
// case): such a header is overwritten, never removed.
func sets(d *edge.Decision, name string) bool {
	for _, kv := range d.UpstreamHeaders {
		if strings.EqualFold(kv[0], name) {
			return true
		}
	}
	return false
}

// removable reports whether Envoy lets ext_authz remove a header: not the
// pseudo-headers and Host, and Connection is hop-by-hop (Envoy drops it
// itself).
func removable(name string) bool {
	switch strings.ToLower(name) {
	case "host", "connection":
		return false
	}
	return !strings.HasPrefix(name, ":")
}

func option(name, value string) *core.HeaderValueOption {
	return &core.HeaderValueOption{
		Header:       &core.HeaderValue{Key: strings.ToLower(name), Value: value},
		AppendAction: core.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// options are the headers of h, in name order, each set (not appended);
// several values of one name are joined with ", " into one.
func options(h http.Header) []*core.HeaderValueOption {
	out := make([]*core.HeaderValueOption, 0, len(h))
	for _, name := range sortedNames(h) {
		out = append(out, option(name, strings.Join(h[name], ", ")))
	}
	return out
}
