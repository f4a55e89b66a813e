package api

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/contentguard/contentguard/backend/jobs"
	"github.com/contentguard/contentguard/backend/jobs/jobsmetrics"
	"github.com/contentguard/contentguard/backend/webhook"
	"github.com/contentguard/contentguard/backend/webhook/webhookmetrics"
)

// DefaultJobBodyBytes bounds POST /jobs bodies: asynchronous jobs exist for
// inputs larger than the synchronous routes accept.
const DefaultJobBodyBytes = 8<<20 + 64<<10

// Runner is the jobs.Runner of this server: it runs the same operations as
// the synchronous routes (same validation, cache, spans and metrics) for the
// job kinds "batch", "dedup" and "analyze" (whose input may carry
// "operation": "analyze" | "similarity" | "quality"). Invalid input fails
// the job permanently (no retry).
func (s *Server) Runner(ctx context.Context, kind string, input json.RawMessage, progress func(float64)) (json.RawMessage, error) {
	var data any
	var err error
	switch kind {
	case jobs.KindBatch:
		data, err = s.batch(ctx, input, progress)
	case jobs.KindDedup:
		data, err = s.dedup(ctx, input, progress)
	case jobs.KindAnalyze:
		var op struct {
			Operation string `json:"operation"`
		}
		_ = json.Unmarshal(input, &op) // a malformed input fails below with a precise message
		if op.Operation == "" {
			op.Operation = KindAnalyze
		}
		if run := s.operation(op.Operation); run != nil {
			data, err = run(ctx, input)
		} else {
			err = invalidField("operation", fmt.Sprintf("operation: %q is not one of analyze, similarity, quality", op.Operation))
		}
	default:
		return nil, fmt.Errorf("%w: job kind %q", jobs.ErrPermanent, kind)
	}
	if err != nil {
		if p := problemOf(err); p.Status < 500 {
			return nil, fmt.Errorf("%w: %s", jobs.ErrPermanent, p.Detail)
		}
		return nil, fmt.Errorf("%s job: %w", kind, err)
	}
	if progress != nil {
		progress(1)
	}
	out, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("%w: encode %s result: %v", jobs.ErrPermanent, kind, err)
	}
	return out, nil
}

// MountJobs serves the jobs API of q (POST /jobs, GET and DELETE
// /jobs/{id}, and with webhooks the dead letters of a job's own webhook at
// /jobs/{id}/deliveries, at the root and under /api/v1) with this server's
// envelope.
func (s *Server) MountJobs(q jobs.Queue) {
	h := jobs.NewHandler(q, s.resp, jobs.HandlerOptions{MaxBodyBytes: DefaultJobBodyBytes, Logger: s.log})
	for _, pattern := range jobs.Routes(q) {
		if strings.HasPrefix(pattern, "POST ") && strings.HasSuffix(pattern, "/jobs") {
			s.handleLimit(pattern, h, DefaultJobBodyBytes)
			continue
		}
		s.Handle(pattern, h)
	}
}

// MountWebhooks serves the webhook API (register, list, stats, delete,
// dead letters and redelivery, at the root and under /api/v1), exports the
// delivery queue's gauges (package webhookmetrics; the counters come from
// the deliverer's Observer, see WebhooksObserver), and publishes
// analysis_completed, similarity_completed, quality_completed and
// batch_completed after successful synchronous requests.
func (s *Server) MountWebhooks(reg *webhook.Registry, d *webhook.Deliverer) error {
	h := webhook.NewHandler(reg, d, s.resp)
	for _, pattern := range webhook.Routes(d != nil) {
		s.Handle(pattern, h)
	}
	s.deliverer = d
	if d != nil {
		obs, err := s.WebhooksObserver()
		if err != nil {
			return err
		}
		d.Observe(obs) // unless it was built with one
		if err := webhookmetrics.RegisterQueue(s.cfg.Registry, d, reg); err != nil {
			return fmt.Errorf("api: %w", err)
		}
	}
	return nil
}

// WebhooksObserver returns the Observer of the webhook delivery counters
// (package webhookmetrics) on the server's registry, for
// webhook.DelivererOptions; they are registered on the first call.
// MountWebhooks gives it to a deliverer built without an observer.
func (s *Server) WebhooksObserver() (webhook.Observer, error) {
	s.hookObsMu.Lock()
	defer s.hookObsMu.Unlock()
	if s.hookObs == nil {
		o, err := webhookmetrics.New(s.cfg.Registry)
		if err != nil {
			return nil, fmt.Errorf("api: %w", err)
		}
		s.hookObs = o
	}
	return s.hookObs, nil
}

// syncEvents names the webhook event of each synchronous route.
var syncEvents = map[string]string{
	KindAnalyze:    webhook.EventAnalysisCompleted,
	KindSimilarity: webhook.EventSimilarityCompleted,
	KindQuality:    webhook.EventQualityCompleted,
	KindBatch:      webhook.EventBatchCompleted,
}

// publish records the event's deliveries to registered endpoints; a full
// delivery queue drops them (logged and counted by the deliverer) rather
// than failing the request.
func (s *Server) publish(ctx context.Context, kind string, data any) {
	if s.deliverer == nil {
		return
	}
	if ev, ok := syncEvents[kind]; ok {
		if _, err := s.deliverer.Publish(ctx, ev, data); err != nil {
			s.log.WarnContext(ctx, "webhook publish", "event", ev, "err", err)
		}
	}
}

// JobsObserver registers the job metrics (package jobsmetrics:
// jobs_submitted_total, jobs_completed_total, job_duration_seconds,
// jobs_queue_depth) on the server's registry and returns their Observer.
func (s *Server) JobsObserver() (jobs.Observer, error) {
	o, err := jobsmetrics.New(s.cfg.Registry)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	return o, nil
}

// The server's responder serves both mounted packages.
var (
	_ jobs.Responder    = responder{}
	_ webhook.Responder = responder{}
)
