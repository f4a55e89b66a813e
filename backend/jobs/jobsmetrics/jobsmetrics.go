// Package jobsmetrics exports the jobs package's Observer events as
// Prometheus metrics:
//
//	jobs_submitted_total{kind}             counter
//	jobs_completed_total{kind,status}      counter; status completed|failed|cancelled
//	job_duration_seconds{kind}             histogram, start to finish
//	jobs_queue_depth                       gauge, jobs waiting (memory queue; in Redis mode
//	                                       every worker reports all queues: use max())
package jobsmetrics

import (
	"fmt"
	"time"

	"github.com/contentguard/contentguard/backend/jobs"
	"github.com/prometheus/client_golang/prometheus"
)

// Observer implements jobs.Observer with Prometheus collectors.
type Observer struct {
	submitted *prometheus.CounterVec
	completed *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	depth     prometheus.Gauge
}

var _ jobs.Observer = (*Observer)(nil)

// New registers the metrics with reg.
func New(reg prometheus.Registerer) (*Observer, error) {
	o := &Observer{
		submitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobs_submitted_total", Help: "Asynchronous jobs accepted, by kind.",
		}, []string{"kind"}),
		completed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobs_completed_total", Help: "Asynchronous jobs finished, by kind and final status.",
		}, []string{"kind", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "job_duration_seconds", Help: "Run time of finished jobs, from start to finish, by kind.",
			// Jobs run from milliseconds (one analysis) to minutes (a large
			// near-duplicate batch).
			Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600},
		}, []string{"kind"}),
		depth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "jobs_queue_depth", Help: "Jobs waiting for a worker (in Redis mode: in all queues, as one worker reads it).",
		}),
	}
	for _, c := range []prometheus.Collector{o.submitted, o.completed, o.duration, o.depth} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("jobsmetrics: registering: %w", err)
		}
	}
	// Export zeros for the standard kinds, so a process that has not
	// finished a job yet (a fresh worker) still shows the series.
	for _, k := range jobs.DefaultKinds() {
		o.submitted.WithLabelValues(k)
		for _, st := range []jobs.Status{jobs.StatusCompleted, jobs.StatusFailed, jobs.StatusCancelled} {
			o.completed.WithLabelValues(k, string(st))
		}
	}
	return o, nil
}

// JobSubmitted counts an accepted job.
func (o *Observer) JobSubmitted(kind string) { o.submitted.WithLabelValues(kind).Inc() }

// JobFinished counts a finished job and, if it ran, its duration.
func (o *Observer) JobFinished(kind string, status jobs.Status, d time.Duration) {
	o.completed.WithLabelValues(kind, string(status)).Inc()
	if d > 0 {
		o.duration.WithLabelValues(kind).Observe(d.Seconds())
	}
}

// QueueDepth sets the number of waiting jobs.
func (o *Observer) QueueDepth(n int) { o.depth.Set(float64(n)) }
