// Package apigateway is contentguard as an AWS API Gateway Lambda
// authorizer of the REQUEST type: API Gateway sends the request's method,
// path, query, headers and source address (never the body) to a Lambda
// function before it calls the integration, and the function answers with
// an IAM policy document that allows or denies the call. The package
// translates that event into an edge.Request and the engine's decision
// into the document, nothing more: the policy's rules stay in package edge.
//
// Both event shapes are read: payload format 1.0 (REST APIs, and HTTP APIs
// configured for 1.0: methodArn, path, multiValueHeaders) and 2.0 (HTTP
// APIs: routeArn, rawPath, lower-case headers joined by commas).
//
// What API Gateway lets an authorizer say is narrower than what the other
// data planes answer:
//
//   - allowed: an Allow statement on the event's method or route ARN,
//     principalId the authenticated subject, and Context (below) for the
//     integration;
//   - a 401 decision (no, bad or expired credentials): the error
//     "Unauthorized", the one answer API Gateway turns into 401;
//   - any other rejection (403, 404, 413, 429, 431, 503, a CORS preflight):
//     a Deny statement, which API Gateway answers 403; the decision's
//     reason and status are in the context for a gateway response
//     template;
//   - an allowed request whose path the engine normalised (dot segments,
//     doubled slashes, escapes): a Deny with reason bad_path, because the
//     integration receives the path as sent, not the one decided on.
//
// The client's headers reach the integration as sent: the authorizer
// cannot remove a planted X-Auth-Subject. Integrations read identity from
// the context (below), never from such headers; the backend takes only the
// request ID from it.
//
// The engine's problem documents, rate-limit and CORS response headers do
// not reach the client: API Gateway writes the answer. Decisions are
// DecideOnly, as for NGINX auth_request: the integration's outcome is never
// reported back, so the circuit breaker is neither consulted nor fed.
// Authorizer caching must be off (a cached Allow would skip rate limits).
package apigateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/internal/apigwevent"
)

// ErrUnauthorized is what the function returns for a 401 decision: API
// Gateway answers 401 to this error message, and to no other.
var ErrUnauthorized = errors.New("Unauthorized")

// Keys of the authorizer context. API Gateway passes them to the
// integration: a Lambda proxy integration finds them in
// requestContext.authorizer (payload 1.0) or requestContext.authorizer.lambda
// (2.0), mapping templates and parameter mappings as
// $context.authorizer.<key>. Values are strings and numbers only, as API
// Gateway requires.
const (
	// ContextRequestID is the request ID the edge decided (the client's,
	// when the policy trusts it, or a new one): the backend's X-Request-ID.
	ContextRequestID = "requestId"
	// ContextRoute, ContextReason and ContextStatus are the decision's
	// policy route, reason code and the status the other planes answer.
	ContextRoute  = "route"
	ContextReason = "reason"
	ContextStatus = "status"
	// ContextSubject and ContextAuthMethod are the verified identity: a
	// JWT's sub or apikey:<id>, and jwt or apiKey.
	ContextSubject    = "subject"
	ContextAuthMethod = "authMethod"
	// ContextUpstreamHeaders is a JSON object of the headers the edge sets
	// on the forwarded request (request IDs, forwarded claims), for
	// integrations that map them.
	ContextUpstreamHeaders = "upstreamHeaders"
)

// Checker decides requests: an *edge.Engine.
type Checker interface {
	Check(ctx context.Context, r edge.Request) edge.Decision
}

// Authorizer answers authorizer events with the decisions of a Checker.
type Authorizer struct {
	engine Checker
	log    *slog.Logger
}

// New returns an authorizer over engine; log receives one line per
// decision (nil: none).
func New(engine Checker, log *slog.Logger) *Authorizer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Authorizer{engine: engine, log: log}
}

// probe is enough of either payload to tell them apart.
type probe struct {
	Version   string `json:"version"`
	Type      string `json:"type"`
	MethodArn string `json:"methodArn"`
	RouteArn  string `json:"routeArn"`
}

// Handle is the Lambda function: it decodes an authorizer event, asks the
// engine and returns the IAM policy response, or ErrUnauthorized. An event
// that is not a REQUEST authorizer event is an error (a TOKEN authorizer
// sees one header only: the policy cannot be applied to it).
func (a *Authorizer) Handle(ctx context.Context, event json.RawMessage) (any, error) {
	var p probe
	if err := json.Unmarshal(event, &p); err != nil {
		return nil, fmt.Errorf("apigateway: event is not a JSON object: %w", err)
	}
	if p.Type != "REQUEST" {
		return nil, fmt.Errorf("apigateway: authorizer type %q: only REQUEST authorizers carry the whole request", p.Type)
	}
	switch {
	case p.Version == "2.0" && p.RouteArn != "":
		var ev events.APIGatewayV2CustomAuthorizerV2Request
		if err := json.Unmarshal(event, &ev); err != nil {
			return nil, fmt.Errorf("apigateway: payload 2.0 event: %w", err)
		}
		d := a.decide(ctx, requestV2(&ev))
		if err := refusal(d); err != nil {
			return nil, err
		}
		return events.APIGatewayV2CustomAuthorizerIAMPolicyResponse{
			PrincipalID: principal(d), PolicyDocument: policyDocument(d, ev.RouteArn), Context: decisionContext(d),
		}, nil
	case p.MethodArn != "":
		var ev events.APIGatewayCustomAuthorizerRequestTypeRequest
		if err := json.Unmarshal(event, &ev); err != nil {
			return nil, fmt.Errorf("apigateway: payload 1.0 event: %w", err)
		}
		d := a.decide(ctx, requestV1(&ev))
		if err := refusal(d); err != nil {
			return nil, err
		}
		return events.APIGatewayCustomAuthorizerResponse{
			PrincipalID: principal(d), PolicyDocument: policyDocument(d, ev.MethodArn), Context: decisionContext(d),
		}, nil
	}
	return nil, errors.New("apigateway: neither a payload 1.0 (methodArn) nor a 2.0 (version 2.0, routeArn) authorizer event")
}

func (a *Authorizer) decide(ctx context.Context, r edge.Request) edge.Decision {
	d := a.engine.Check(ctx, r)
	if d.Allow && d.Path != r.Path {
		// The integration receives the path API Gateway received: this
		// plane cannot hand it the engine's normalised one, and the two
		// could be read differently (the decision was taken for one).
		d.Allow, d.Status, d.Reason = false, http.StatusBadRequest, edge.ReasonBadPath
	}
	a.log.InfoContext(ctx, "decision", "request_id", d.RequestID, "method", r.Method, "path", d.Path,
		"route", d.Route, "allow", d.Allow, "reason", d.Reason, "status", d.Status,
		"client_ip", addrString(d.ClientIP), "subject", d.Subject)
	return d
}

// refusal is ErrUnauthorized for a 401 decision.
func refusal(d edge.Decision) error {
	if !d.Allow && d.Status == http.StatusUnauthorized {
		return ErrUnauthorized
	}
	return nil
}

func principal(d edge.Decision) string {
	if d.Subject != "" {
		return d.Subject
	}
	return "anonymous"
}

// policyDocument allows or denies invoking exactly resource.
func policyDocument(d edge.Decision, resource string) events.APIGatewayCustomAuthorizerPolicy {
	effect := "Deny"
	if d.Allow {
		effect = "Allow"
	}
	return events.APIGatewayCustomAuthorizerPolicy{
		Version: "2012-10-17",
		Statement: []events.IAMPolicyStatement{{
			Action: []string{"execute-api:Invoke"}, Effect: effect, Resource: []string{resource},
		}},
	}
}

func decisionContext(d edge.Decision) map[string]any {
	c := map[string]any{
		ContextRequestID: d.RequestID,
		ContextReason:    d.Reason,
		ContextStatus:    d.Status,
	}
	if d.Allow && d.Status == 0 {
		c[ContextStatus] = http.StatusOK
	}
	if d.Route != "" {
		c[ContextRoute] = d.Route
	}
	if d.Subject != "" {
		c[ContextSubject] = d.Subject
		c[ContextAuthMethod] = d.AuthMethod
	}
	if d.Allow && len(d.UpstreamHeaders) > 0 {
		h := make(map[string]string, len(d.UpstreamHeaders))
		for _, kv := range d.UpstreamHeaders {
			h[kv[0]] = kv[1]
		}
		b, _ := json.Marshal(h) // strings only: cannot fail
		c[ContextUpstreamHeaders] = string(b)
	}
	return c
}

// requestV1 is a payload 1.0 event as the engine's request. path is the
// resource path the client asked for, without the stage.
func requestV1(ev *events.APIGatewayCustomAuthorizerRequestTypeRequest) edge.Request {
	return request(ev.HTTPMethod, ev.Path, apigwevent.Query(ev.MultiValueQueryStringParameters, ev.QueryStringParameters),
		apigwevent.Header(ev.MultiValueHeaders, ev.Headers), ev.RequestContext.Identity.SourceIP)
}

// requestV2 is a payload 2.0 event as the engine's request. rawPath carries
// a named stage as its first segment ("/prod/analyze"); the policy's routes
// and the integration do not.
func requestV2(ev *events.APIGatewayV2CustomAuthorizerV2Request) edge.Request {
	h := make(http.Header, len(ev.Headers)+1)
	for k, v := range ev.Headers {
		h[http.CanonicalHeaderKey(k)] = []string{v} // repeated fields arrive joined by commas
	}
	if len(ev.Cookies) > 0 {
		h.Set("Cookie", strings.Join(ev.Cookies, "; "))
	}
	path := apigwevent.StagePath(ev.RawPath, ev.RequestContext.Stage)
	return request(ev.RequestContext.HTTP.Method, path, ev.RawQueryString, h, ev.RequestContext.HTTP.SourceIP)
}

// request completes an edge.Request. API Gateway is reached over HTTPS
// only; it resolved the client address itself (sourceIp), so the peer is
// the client and forwarding headers count only as the policy's
// clientIP.trustedProxies say. Without Content-Length the body is empty,
// unless Transfer-Encoding announces one of unknown size.
func request(method, path, rawQuery string, h http.Header, sourceIP string) edge.Request {
	r := edge.Request{
		Method: method, Host: h.Get("Host"), Path: path, RawQuery: rawQuery, Header: h,
		TLS: true, DecideOnly: true,
	}
	if peer, err := netip.ParseAddr(sourceIP); err == nil {
		r.Peer = peer
	}
	switch cl := h.Get("Content-Length"); {
	case cl != "":
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 {
			n = -1
		}
		r.ContentLength = n
	case h.Get("Transfer-Encoding") != "":
		r.ContentLength = -1
	}
	return r
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
