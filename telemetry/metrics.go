package telemetry

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metric names shared by every binary; dashboards and alerts depend on them.
const (
	MetricHTTPRequests        = "http_requests_total"
	MetricHTTPRequestDuration = "http_request_duration_seconds"
	MetricAnalysisRequests    = "analysis_requests_total"
	MetricCacheHits           = "cache_hits_total"
	MetricCacheMisses         = "cache_misses_total"
)

// Metrics holds the HTTP server metrics of one process on a registry the
// caller owns.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	gatherer prometheus.Gatherer

	series Children[seriesKey, series] // what Record counts into
}

type seriesKey struct {
	method, route string
	status        int
}

type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// NewRegistry returns a fresh registry with the Go runtime and process
// collectors, for a binary that serves /metrics.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// NewMetrics registers the HTTP metrics on reg. Registering twice on the same
// registry is an error, not a panic.
func NewMetrics(reg *prometheus.Registry) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricHTTPRequests,
			Help: "HTTP requests served, by method, route pattern and status code.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricHTTPRequestDuration,
			Help:    "HTTP request latency in seconds, by method and route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route"}),
		gatherer: reg,
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("telemetry: register HTTP metrics: %w", err)
		}
	}
	return m, nil
}

// RequestsCounter exposes http_requests_total (tests, custom dashboards).
func (m *Metrics) RequestsCounter() *prometheus.CounterVec { return m.requests }

// Handler serves the registry in the Prometheus text (or OpenMetrics) format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Middleware counts and times every request under the route recorded by
// Route (or "unmatched"). The method label is bounded to the standard
// methods so a client cannot mint label values.
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, slot := withRouteSlot(r.Context())
		rec := NewStatusRecorder(w)
		defer func() {
			// Deferred so a panic that an outer layer recovers is still counted.
			method := BoundedMethod(r.Method)
			route := slot.label()
			m.requests.WithLabelValues(method, route, StatusLabel(rec.Status())).Inc()
			m.duration.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(rec, r.WithContext(ctx))
	})
}

// Record counts and times one request under route, for servers that know the
// route themselves instead of through Route (the sidecar labels by policy
// route name). The method is bounded like Middleware's.
func (m *Metrics) Record(method, route string, status int, elapsed time.Duration) {
	method = BoundedMethod(method)
	c := m.series.Get(seriesKey{method, route, status}, func() series {
		return series{
			requests: m.requests.WithLabelValues(method, route, StatusLabel(status)),
			duration: m.duration.WithLabelValues(method, route),
		}
	})
	c.requests.Inc()
	c.duration.Observe(elapsed.Seconds())
}

// statusLabels holds the label of every status code 100..599, so counting a
// request does not format (and allocate) its status.
var statusLabels = func() (l [500]string) {
	for i := range l {
		l[i] = strconv.Itoa(i + 100)
	}
	return l
}()

// StatusLabel returns code as a metric label value without allocating for
// 100..599.
func StatusLabel(code int) string {
	if code >= 100 && code < 600 {
		return statusLabels[code-100]
	}
	return strconv.Itoa(code)
}

// OtherMethod is BoundedMethod's answer for a method outside the standard
// nine.
const OtherMethod = "OTHER"

// BoundedMethod returns a standard method as its constant and any other as
// OtherMethod: clients choose the method, and it goes into metric labels and
// span names, which must stay few. The constant (never m itself) also keeps
// a label or name from holding on to the request it was cut from.
func BoundedMethod(m string) string {
	switch m {
	case http.MethodGet:
		return http.MethodGet
	case http.MethodHead:
		return http.MethodHead
	case http.MethodPost:
		return http.MethodPost
	case http.MethodPut:
		return http.MethodPut
	case http.MethodPatch:
		return http.MethodPatch
	case http.MethodDelete:
		return http.MethodDelete
	case http.MethodOptions:
		return http.MethodOptions
	case http.MethodConnect:
		return http.MethodConnect
	case http.MethodTrace:
		return http.MethodTrace
	}
	return OtherMethod
}

// StatusRecorder remembers the status code and body size written through it.
// Unwrap lets http.ResponseController reach the underlying writer (Flush,
// deadlines) through the wrapper.
type StatusRecorder struct {
	http.ResponseWriter
	status  int
	written int64
}

// NewStatusRecorder wraps w; an unwritten response counts as 200.
func NewStatusRecorder(w http.ResponseWriter) *StatusRecorder {
	if r, ok := w.(*StatusRecorder); ok {
		return r
	}
	return &StatusRecorder{ResponseWriter: w}
}

// WriteHeader records code.
func (r *StatusRecorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200 and the byte count.
func (r *StatusRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.written += int64(n)
	return n, err
}

// Status is the final status code (200 when nothing was written).
func (r *StatusRecorder) Status() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

// Written is the number of body bytes written.
func (r *StatusRecorder) Written() int64 { return r.written }

// Unwrap returns the wrapped writer.
func (r *StatusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush forwards to the wrapped writer when it can flush.
func (r *StatusRecorder) Flush() {
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}
