// Package extauthz serves Envoy's external authorization API
// (envoy.service.auth.v3.Authorization/Check) over the engine, and on the
// same gRPC server Envoy's access-log service (envoy.service.accesslog.v3),
// through which the circuit breaker hears what became of the requests it
// allowed. `contentguard sidecar --ext-authz ADDR` runs it beside the sidecar,
// with the engine in force.
//
// Check builds the engine's request from the CheckRequest (see Request) and
// answers with its decision (see Response). An allowed decision holds a
// breaker ticket until its outcome comes back in Envoy's access log, found
// by the policy's request id header (and the ticket Envoy carries in the
// ext_authz dynamic metadata, which tells apart requests whose client chose
// the same id). A ticket whose report does not come within the request's
// body and upstream timeouts plus Options.Grace is expired: as a failure if
// its breaker is half-open (a probe that never reported must not keep the
// breaker from deciding), released without counting otherwise.
package extauthz

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	accesslogdata "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/edge/breaker"
	"github.com/contentguard/contentguard/xds/policypb"
)

// Defaults of Options.
const (
	DefaultMaxPending = 100000
	DefaultGrace      = 2 * time.Second
)

// Options configure a Server.
type Options struct {
	// Engine returns the engine in force (sidecar.Server.Engine). Required.
	Engine func() *edge.Engine
	// MaxPending bounds the allowed requests awaiting their access-log
	// entry; past it the oldest is expired early. Default DefaultMaxPending.
	MaxPending int
	// Grace is added to a decision's timeouts before its ticket expires:
	// Envoy's access-log flush interval and the log stream's latency.
	// Default DefaultGrace.
	Grace time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger; default discards.
	Logger *slog.Logger
	// Registry receives the extauthz_* metrics; nil registers none.
	Registry prometheus.Registerer
	// Context ends the access-log streams when it is done: a gRPC
	// server's GracefulStop waits for its streams, and Envoy's log stream
	// never ends by itself. Nil: streams end only with Envoy.
	Context context.Context
}

// Server answers Check and takes access logs. Register it on a gRPC
// server; run Expire (or Run) to expire unreported tickets.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	accesslogv3.UnimplementedAccessLogServiceServer

	opts Options
	now  func() time.Time
	log  *slog.Logger
	m    *metrics

	mu   sync.Mutex
	next uint64
	// The pending decisions by ticket, and by request id (oldest first),
	// for an entry without a ticket. Clients choose request ids
	// (requestId.trustIncoming): every index is O(1) however many
	// decisions share one.
	byTicket map[string]*pending
	byID     map[string]*list.List // of *pending
	order    *list.List            // of *pending, by deadline (decisions share timeouts)
	skewLog  time.Time             // last policy-skew warning
}

// pending is an allowed decision awaiting its outcome.
type pending struct {
	engine   *edge.Engine
	d        edge.Decision
	id       string // request id
	ticket   string
	at       time.Time
	deadline time.Time
	elem     *list.Element // in Server.order
	idElem   *list.Element // in Server.byID[id]
}

// New returns a server; it fails without Options.Engine.
func New(opts Options) (*Server, error) {
	if opts.Engine == nil {
		return nil, errors.New("extauthz: Options.Engine is required")
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Context == nil {
		opts.Context = context.Background()
	}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, err
	}
	return &Server{opts: opts, now: opts.Now, log: opts.Logger, m: m, byTicket: map[string]*pending{}, byID: map[string]*list.List{}, order: list.New()}, nil
}

// Register serves Authorization and AccessLogService on g.
func (s *Server) Register(g *grpc.Server) {
	authv3.RegisterAuthorizationServer(g, s)
	accesslogv3.RegisterAccessLogServiceServer(g, s)
}

// Check implements envoy.service.auth.v3.Authorization.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (resp *authv3.CheckResponse, err error) {
	var d edge.Decision
	ticket := ""
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, s.recovered(r, d, ticket)
		}
	}()
	e := s.opts.Engine()
	if e == nil {
		return nil, errors.New("extauthz: no policy is loaded")
	}
	s.checkSkew(e, req)
	r := Request(req)
	d = e.Check(ctx, r)
	if d.Allow {
		ticket = s.hold(e, d)
	}
	return Response(r, &d, ticket), nil
}

// recovered turns a panic in Check (a bug) into an error for Envoy, which
// then refuses the request (failure_mode_allow is false: status_on_error).
// grpc-go does not recover a handler's panic: it would end the process,
// and with it every decision awaiting its outcome. A decision held for the
// request is handed back without counting (the request is not forwarded).
func (s *Server) recovered(r any, d edge.Decision, ticket string) error {
	stack := make([]byte, 16<<10)
	stack = stack[:runtime.Stack(stack, false)]
	s.log.Error("panic deciding a request; Envoy refuses it", "panic", fmt.Sprint(r), "request_id", d.RequestID, "stack", string(stack))
	if ticket != "" {
		if p := s.take(d.RequestID, ticket); p != nil {
			p.engine.Observe(&p.d, edge.Outcome{Unknown: true})
		}
	}
	return status.Error(codes.Internal, "extauthz: the decision failed")
}

// checkSkew warns (at most once a minute) when Envoy's resources were made
// from another policy than the engine's: a control plane and a sidecar
// that disagree.
func (s *Server) checkSkew(e *edge.Engine, req *authv3.CheckRequest) {
	hash, ok := req.GetAttributes().GetContextExtensions()[policypb.ContextPolicyKey]
	if !ok || hash == e.Policy().Hash {
		return
	}
	s.m.skew.Inc()
	s.mu.Lock()
	warn := s.now().Sub(s.skewLog) >= time.Minute
	if warn {
		s.skewLog = s.now()
	}
	s.mu.Unlock()
	if warn {
		s.log.Warn("Envoy's resources were made from another policy than the one in force here",
			"envoy_policy", hash, "engine_policy", e.Policy().Hash)
	}
}

// hold keeps an allowed decision until its outcome is reported; it returns
// the ticket Envoy will carry back in the access log.
func (s *Server) hold(e *edge.Engine, d edge.Decision) string {
	now := s.now()
	var evicted *pending
	s.mu.Lock()
	s.next++
	p := &pending{engine: e, d: d, id: d.RequestID, ticket: strconv.FormatUint(s.next, 36), at: now,
		deadline: now.Add(d.BodyTimeout + d.Timeout + s.opts.Grace)}
	if s.order.Len() >= s.opts.MaxPending {
		evicted = s.order.Front().Value.(*pending)
		s.remove(evicted)
	}
	p.elem = s.order.PushBack(p)
	ids := s.byID[p.id]
	if ids == nil {
		ids = list.New()
		s.byID[p.id] = ids
	}
	p.idElem = ids.PushBack(p)
	s.byTicket[p.ticket] = p
	s.m.pending.Set(float64(s.order.Len()))
	s.mu.Unlock()
	if evicted != nil {
		s.expire(evicted)
	}
	return p.ticket
}

// remove drops p from the indexes (s.mu held).
func (s *Server) remove(p *pending) {
	s.order.Remove(p.elem)
	delete(s.byTicket, p.ticket)
	ids := s.byID[p.id]
	ids.Remove(p.idElem)
	if ids.Len() == 0 {
		delete(s.byID, p.id)
	}
}

// take removes and returns the pending decision of request id, the one
// with ticket when it is given and known, else the oldest.
func (s *Server) take(id, ticket string) *pending {
	s.mu.Lock()
	defer s.mu.Unlock()
	var p *pending
	if ticket != "" {
		p = s.byTicket[ticket]
		if p == nil || p.id != id {
			return nil // another process's ticket, or reported already
		}
	} else if ids := s.byID[id]; ids != nil {
		p = ids.Front().Value.(*pending)
	} else {
		return nil
	}
	s.remove(p)
	s.m.pending.Set(float64(s.order.Len()))
	return p
}

// Expire expires every ticket past its deadline and returns how many.
func (s *Server) Expire() int {
	now := s.now()
	var due []*pending
	s.mu.Lock()
	for el := s.order.Front(); el != nil; {
		p := el.Value.(*pending)
		if p.deadline.After(now) {
			break
		}
		el = el.Next()
		s.remove(p)
		due = append(due, p)
	}
	s.m.pending.Set(float64(s.order.Len()))
	s.mu.Unlock()
	for _, p := range due {
		s.expire(p)
	}
	return len(due)
}

// expire reports a decision whose outcome never came: a half-open probe as
// a timeout (a failure), anything else released without counting.
func (s *Server) expire(p *pending) {
	s.m.expired.Inc()
	o := edge.Outcome{ClientFault: true, Duration: s.now().Sub(p.at)}
	if p.engine.Breakers().Get(p.d.Upstream).State() == breaker.HalfOpen {
		o = edge.Outcome{Timeout: true, Duration: o.Duration}
	}
	s.log.Warn("no access-log entry for an allowed request in time; its breaker ticket is expired",
		"request_id", p.id, "upstream", p.d.Upstream, "as", o.Reason())
	p.engine.Observe(&p.d, o)
}

// Run expires tickets every interval until ctx ends.
func (s *Server) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Expire()
		}
	}
}

// Pending is the number of allowed requests awaiting their outcome.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order.Len()
}

// StreamAccessLogs implements envoy.service.accesslog.v3.AccessLogService:
// each HTTP entry of the contentguard log reports the outcome of one
// request the engine allowed.
func (s *Server) StreamAccessLogs(stream accesslogv3.AccessLogService_StreamAccessLogsServer) error {
	// Recv blocks until Envoy sends; it runs beside the handler so that the
	// handler can return when Options.Context ends. Returning ends the
	// stream, and with it the Recv.
	msgs := make(chan *accesslogv3.StreamAccessLogsMessage)
	go func() {
		defer close(msgs)
		for {
			msg, err := stream.Recv()
			if err != nil {
				return // the stream ended (Envoy opens another as it needs)
			}
			select {
			case msgs <- msg:
			case <-stream.Context().Done():
				return
			}
		}
	}()
	// The service answers once, when the stream ends: the one response a
	// client-streaming call has (Envoy reads none; it opens a new stream).
	done := func() error { return stream.SendAndClose(&accesslogv3.StreamAccessLogsResponse{}) }
	logName := ""
	for {
		var msg *accesslogv3.StreamAccessLogsMessage
		select {
		case <-s.opts.Context.Done():
			return done()
		case m, ok := <-msgs:
			if !ok {
				return done()
			}
			msg = m
		}
		if id := msg.GetIdentifier(); id != nil {
			logName = id.GetLogName()
		}
		if logName != policypb.AccessLogName {
			continue
		}
		for _, entry := range msg.GetHttpLogs().GetLogEntry() {
			s.Report(entry)
		}
	}
}

// Report applies one access-log entry: the outcome of the request it
// names goes to the engine that allowed it. Entries of requests the edge
// refused, or that hold no pending decision, change nothing.
func (s *Server) Report(entry *accesslogdata.HTTPAccessLogEntry) {
	common := entry.GetCommonProperties()
	if common.GetIntermediateLogEntry() {
		return
	}
	e := s.opts.Engine()
	if e == nil {
		return
	}
	header := strings.ToLower(e.Policy().Spec.RequestID.Header)
	id := entry.GetRequest().GetRequestHeaders()[header]
	if id == "" {
		id = entry.GetRequest().GetRequestId()
	}
	ticket := ""
	if md := common.GetMetadata().GetFilterMetadata()[policypb.MetadataNamespace]; md != nil {
		ticket = md.GetFields()[policypb.MetadataTicket].GetStringValue()
	}
	o, ok := Outcome(entry)
	if !ok || id == "" {
		return
	}
	p := s.take(id, ticket)
	if p == nil {
		s.m.unmatched.Inc()
		return
	}
	if o.Duration == 0 {
		o.Duration = s.now().Sub(p.at)
	}
	s.m.reported.WithLabelValues(o.Fault()).Inc()
	p.engine.Observe(&p.d, o)
}

// Outcome reads what became of a request from its access-log entry
// (https://www.envoyproxy.io/docs/envoy/latest/api-v3/data/accesslog/v3/accesslog.proto).
// ok is false for a request the edge refused (Envoy's UAEX flag): it was
// never forwarded and holds no ticket.
//
//   - the upstream answered (response_code_details "via_upstream"): its
//     status;
//   - UT, upstream request timeout: a timeout;
//   - UF, UH, UC, UR, UPE (connection failure, no healthy upstream,
//     connection termination, remote reset, an answer that is not HTTP):
//     the upstream could not be reached — UPE is the upstream's fault,
//     never its clients';
//   - DC, the client went away: the client's fault (499);
//   - UO, Envoy's own circuit breaker refused: nothing is known of the
//     upstream, the slot is released;
//   - any other answer Envoy made itself after the edge allowed the
//     request (413 for a streamed body past the limit, 408 for one too
//     slow; OM: Envoy overloaded; LR: a stream Envoy reset; SI: a stream
//     idle past Envoy's timeout, which a silent upstream reaches first only
//     when spec.upstream.timeout is past Envoy's 5-minute default — below
//     it the route's timeout ends the request as UT): the client's fault,
//     with that status; nothing is counted against the upstream.
func Outcome(entry *accesslogdata.HTTPAccessLogEntry) (edge.Outcome, bool) {
	f := entry.GetCommonProperties().GetResponseFlags()
	status := int(entry.GetResponse().GetResponseCode().GetValue())
	var o edge.Outcome
	switch {
	case f.GetUnauthorizedDetails() != nil:
		return o, false
	case f.GetUpstreamRequestTimeout():
		o = edge.Outcome{Timeout: true, Status: status}
	case f.GetUpstreamConnectionFailure() || f.GetNoHealthyUpstream() || f.GetUpstreamConnectionTermination() || f.GetUpstreamRemoteReset() ||
		f.GetUpstreamProtocolError():
		o = edge.Outcome{Connection: true, Status: status}
	case f.GetDownstreamConnectionTermination() || f.GetDownstreamRemoteReset():
		o = edge.Outcome{ClientFault: true, Status: edge.StatusClientClosed}
	case f.GetUpstreamOverflow():
		o = edge.Outcome{ClientFault: true, Status: status}
	case entry.GetResponse().GetResponseCodeDetails() == "via_upstream":
		o = edge.Outcome{Status: status}
	default:
		o = edge.Outcome{ClientFault: true, Status: status}
	}
	if d := entry.GetCommonProperties().GetTimeToFirstUpstreamRxByte(); d != nil {
		o.Duration = d.AsDuration()
	}
	return o, true
}

func sortedNames(h http.Header) []string {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

type metrics struct {
	pending   prometheus.Gauge
	expired   prometheus.Counter
	unmatched prometheus.Counter
	skew      prometheus.Counter
	reported  *prometheus.CounterVec
}

// Metric names of the ext_authz server.
const (
	MetricPending   = "extauthz_pending_outcomes"
	MetricExpired   = "extauthz_expired_tickets_total"
	MetricUnmatched = "extauthz_unmatched_log_entries_total"
	MetricReported  = "extauthz_reported_outcomes_total"
	MetricSkew      = "extauthz_policy_skew_total"
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricPending,
			Help: "Allowed requests awaiting their outcome from Envoy's access log."}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricExpired,
			Help: "Allowed requests whose outcome did not arrive in time: a half-open probe counted as a failure, others released."}),
		unmatched: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricUnmatched,
			Help: "Access-log entries of forwarded requests with no pending decision (expired before, or decided by another process)."}),
		skew: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricSkew,
			Help: "Checks whose Envoy resources were made from another policy than the engine's."}),
		reported: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricReported,
			Help: "Outcomes reported through the access log, by fault (none, client, upstream)."}, []string{"fault"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.pending, m.expired, m.unmatched, m.skew, m.reported} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("extauthz: register metrics: %w", err)
			}
		}
	}
	return m, nil
}
