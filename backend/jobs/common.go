package jobs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/contentguard/contentguard/backend/webhook"
)

// withDefaults fills zero fields of Options.
func (o Options) withDefaults() Options {
	if len(o.Kinds) == 0 {
		o.Kinds = DefaultKinds()
	}
	if o.MaxInputBytes <= 0 {
		o.MaxInputBytes = 8 << 20
	}
	if o.Retention <= 0 {
		o.Retention = time.Hour
	}
	if o.JobTimeout <= 0 {
		o.JobTimeout = 10 * time.Minute
	}
	if o.EventFor == nil {
		o.EventFor = DefaultEventFor
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// DefaultEventFor maps a finished job to its webhook event:
//
//	kind     completed                              failed or cancelled
//	batch    batch_completed                        batch_failed
//	dedup    similarity_completed                   batch_failed
//	analyze  analysis_completed, or                 batch_failed
//	         similarity_completed / quality_completed
//	         when input.operation is "similarity" / "quality"
//
// The event set is fixed by the API, which has no per-kind failure event:
// every failed or cancelled job reports batch_failed, and the payload's
// kind and status say which job it was.
func DefaultEventFor(kind string, status Status, input json.RawMessage) string {
	switch status {
	case StatusFailed, StatusCancelled:
		return webhook.EventBatchFailed
	case StatusCompleted:
	default:
		return ""
	}
	switch kind {
	case KindBatch:
		return webhook.EventBatchCompleted
	case KindDedup:
		return webhook.EventSimilarityCompleted
	case KindAnalyze:
		var in struct {
			Operation string `json:"operation"`
		}
		_ = json.Unmarshal(input, &in) // a non-object input is a plain analysis
		switch in.Operation {
		case "similarity":
			return webhook.EventSimilarityCompleted
		case "quality":
			return webhook.EventQualityCompleted
		}
		return webhook.EventAnalysisCompleted
	}
	return ""
}

// validate checks a spec against the options and returns it normalised
// (an empty input becomes {}).
func (o Options) validate(ctx context.Context, spec Spec) (Spec, error) {
	known := false
	for _, k := range o.Kinds {
		if k == spec.Kind {
			known = true
			break
		}
	}
	if !known {
		return Spec{}, fmt.Errorf("%w: %q (allowed: %v)", ErrUnknownKind, spec.Kind, o.Kinds)
	}
	if len(spec.Input) > o.MaxInputBytes {
		return Spec{}, fmt.Errorf("%w: input is %d bytes, limit %d", ErrInvalidSpec, len(spec.Input), o.MaxInputBytes)
	}
	if len(bytes.TrimSpace(spec.Input)) == 0 {
		spec.Input = json.RawMessage("{}")
	} else if !json.Valid(spec.Input) {
		return Spec{}, fmt.Errorf("%w: input is not valid JSON", ErrInvalidSpec)
	}
	if spec.WebhookURL == "" {
		if spec.WebhookSecret != "" {
			return Spec{}, fmt.Errorf("%w: webhook_secret without webhook_url", ErrInvalidSpec)
		}
		return spec, nil
	}
	if o.Webhooks == nil {
		return Spec{}, ErrWebhooksOff
	}
	if n := len(spec.WebhookSecret); n < webhook.MinSecretLength || n > webhook.MaxSecretLength {
		return Spec{}, fmt.Errorf("%w: webhook_secret must be %d..%d bytes", ErrInvalidSpec, webhook.MinSecretLength, webhook.MaxSecretLength)
	}
	if err := o.Webhooks.CheckURL(ctx, spec.WebhookURL); err != nil {
		return Spec{}, fmt.Errorf("%w: webhook_url: %w", ErrInvalidSpec, err)
	}
	return spec, nil
}

// saturated refuses new jobs while the webhook delivery queue is nearly
// full: their events would be dropped.
func (o Options) saturated(ctx context.Context) error {
	if o.Webhooks == nil {
		return nil
	}
	if err := o.Webhooks.Saturated(ctx); err != nil {
		if errors.Is(err, webhook.ErrQueueFull) {
			return fmt.Errorf("%w: %w", ErrQueueFull, err)
		}
		return err
	}
	return nil
}

// jobEvent is the webhook event of a finished job, and the job's own
// webhook target; ok is false when the job announces nothing. The event's
// ID comes from the job's, so its deliveries' IDs are stable.
func (o Options) jobEvent(job Job, input json.RawMessage, secret string) (ev webhook.Event, own []webhook.Target, ok bool) {
	name := o.EventFor(job.Kind, job.Status, input)
	if name == "" || o.Webhooks == nil {
		return webhook.Event{}, nil, false
	}
	ev = webhook.Event{ID: "evt_" + strings.TrimPrefix(job.ID, "job_"), Name: name, Data: job}
	if job.FinishedAt != nil {
		ev.At = *job.FinishedAt
	}
	if job.WebhookURL != "" && secret != "" { // without its secret it cannot be signed
		own = []webhook.Target{{URL: job.WebhookURL, Secret: secret, JobID: job.ID}}
	}
	return ev, own, true
}

// notify records the finished job's deliveries: to its own webhook and to
// the registered endpoints subscribed to its event. A full delivery queue
// is logged and counted by the deliverer.
func (o Options) notify(ctx context.Context, job Job, input json.RawMessage, secret string) {
	ev, own, ok := o.jobEvent(job, input, secret)
	if !ok {
		return
	}
	ds, err := o.Webhooks.Prepare(ctx, ev, own...)
	if err == nil {
		err = o.Webhooks.Enqueue(ctx, ds)
	}
	_ = err // the deliverer logged and counted what it could not record
}

// finished reports a finished job to the observer.
func (o Options) finished(job Job) {
	if o.Observer == nil {
		return
	}
	var d time.Duration
	if job.StartedAt != nil && job.FinishedAt != nil {
		d = job.FinishedAt.Sub(*job.StartedAt)
	}
	o.Observer.JobFinished(job.Kind, job.Status, d)
}

// newID returns a fresh job id.
func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "job_" + hex.EncodeToString(b)
}

// validID reports whether id could have come from newID; anything else is
// answered as not found without touching storage.
func validID(id string) bool {
	if len(id) != len("job_")+24 || id[:4] != "job_" {
		return false
	}
	_, err := hex.DecodeString(id[4:])
	return err == nil
}

// clamp keeps a progress report in [0,1]; NaN becomes 0.
func clamp(p float64) float64 {
	if !(p > 0) {
		return 0
	}
	if p > 1 {
		return 1
	}
	return p
}

// ptr returns a pointer to a copy of t in UTC.
func ptr(t time.Time) *time.Time {
	u := t.UTC()
	return &u
}
