// Package webhookmetrics exports webhook delivery as Prometheus metrics.
// Counters count what this process did:
//
//	webhook_delivery_attempts_total{code}    HTTP attempts; code 2xx|3xx|4xx|5xx|error
//	webhook_deliveries_succeeded_total       deliveries acknowledged with 2xx
//	webhook_deliveries_retried_total         failed attempts rescheduled
//	webhook_deliveries_failed_total          deliveries failed for good (dead letters)
//	webhook_deliveries_dropped_total{reason} never sent: queue_full, endpoint_deleted, shutdown
//	webhook_delivery_latency_seconds         histogram, event recorded → delivered
//
// Gauges describe the store, shared by every process using it (take max()
// over instances, not sum()):
//
//	webhook_delivery_queue_depth             pending deliveries
//	webhook_delivery_queue_lag_seconds       how overdue the most overdue pending delivery is
//	webhook_dead_letters                     dead letters kept
//	webhook_endpoints                        registered endpoints
package webhookmetrics

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/contentguard/contentguard/backend/webhook"
)

// Observer implements webhook.Observer with Prometheus collectors.
type Observer struct {
	attempts  *prometheus.CounterVec
	succeeded prometheus.Counter
	retried   prometheus.Counter
	failed    prometheus.Counter
	dropped   *prometheus.CounterVec
	latency   prometheus.Histogram
}

var _ webhook.Observer = (*Observer)(nil)

// New registers the counters and the latency histogram with reg.
func New(reg prometheus.Registerer) (*Observer, error) {
	o := &Observer{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webhook_delivery_attempts_total", Help: "Webhook delivery attempts (retries included), by answer class (2xx..5xx, or error without an answer).",
		}, []string{"code"}),
		succeeded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webhook_deliveries_succeeded_total", Help: "Webhook deliveries acknowledged with 2xx.",
		}),
		retried: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webhook_deliveries_retried_total", Help: "Failed webhook delivery attempts scheduled again.",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webhook_deliveries_failed_total", Help: "Webhook deliveries failed for good (kept as dead letters).",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webhook_deliveries_dropped_total", Help: "Webhook deliveries never sent, by reason (queue_full, endpoint_deleted, shutdown).",
		}, []string{"reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "webhook_delivery_latency_seconds", Help: "Time from a webhook event being recorded to its delivery being acknowledged.",
			// From one poll interval to the far end of the retry schedule.
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}),
	}
	for _, c := range []prometheus.Collector{o.attempts, o.succeeded, o.retried, o.failed, o.dropped, o.latency} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("webhookmetrics: registering: %w", err)
		}
	}
	for _, code := range []string{"2xx", "3xx", "4xx", "5xx", "error"} {
		o.attempts.WithLabelValues(code)
	}
	for _, r := range []string{webhook.DropQueueFull, webhook.DropEndpointDeleted, webhook.DropShutdown} {
		o.dropped.WithLabelValues(r) // export zeros, so rate() sees the first drop
	}
	return o, nil
}

// Attempted counts an attempt by its answer's class.
func (o *Observer) Attempted(status int) {
	code := "error"
	if status >= 200 && status < 600 {
		code = fmt.Sprintf("%dxx", status/100)
	}
	o.attempts.WithLabelValues(code).Inc()
}

// Delivered counts a delivery and observes its latency.
func (o *Observer) Delivered(latency time.Duration) {
	o.succeeded.Inc()
	o.latency.Observe(max(latency, 0).Seconds())
}

// Retried counts a rescheduled attempt.
func (o *Observer) Retried() { o.retried.Inc() }

// Failed counts a new dead letter.
func (o *Observer) Failed() { o.failed.Inc() }

// Dropped counts n deliveries dropped for reason.
func (o *Observer) Dropped(reason string, n int) { o.dropped.WithLabelValues(reason).Add(float64(n)) }

// queueCollector reads the store's gauges at scrape time.
type queueCollector struct {
	d   *webhook.Deliverer
	reg *webhook.Registry
	now func() time.Time
}

var (
	depthDesc     = prometheus.NewDesc("webhook_delivery_queue_depth", "Pending webhook deliveries in the store (waiting or in flight).", nil, nil)
	lagDesc       = prometheus.NewDesc("webhook_delivery_queue_lag_seconds", "How long the most overdue pending webhook delivery has been due (0 when none is overdue).", nil, nil)
	deadDesc      = prometheus.NewDesc("webhook_dead_letters", "Webhook deliveries failed for good and kept for redelivery.", nil, nil)
	endpointsDesc = prometheus.NewDesc("webhook_endpoints", "Registered webhook endpoints.", nil, nil)
)

// RegisterQueue registers the gauges read from d's store and reg at each
// scrape (with a 2 s timeout; a failed read leaves them out of that
// scrape).
func RegisterQueue(r prometheus.Registerer, d *webhook.Deliverer, reg *webhook.Registry) error {
	if err := r.Register(queueCollector{d: d, reg: reg, now: time.Now}); err != nil {
		return fmt.Errorf("webhookmetrics: registering queue gauges: %w", err)
	}
	return nil
}

func (c queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{depthDesc, lagDesc, deadDesc, endpointsDesc} {
		ch <- d
	}
}

func (c queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if st, err := c.d.QueueStats(ctx); err == nil {
		lag := 0.0
		if !st.OldestDue.IsZero() {
			lag = max(c.now().Sub(st.OldestDue).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(st.Pending))
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, lag)
		ch <- prometheus.MustNewConstMetric(deadDesc, prometheus.GaugeValue, float64(st.DeadLetters))
	}
	if eps, err := c.reg.List(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(endpointsDesc, prometheus.GaugeValue, float64(len(eps)))
	}
}
