// Package jobs runs analysis work asynchronously: a job is submitted, runs
// on a worker with progress updates, can be cancelled, and its result is
// retained for a while after it finishes. When a job with a webhook URL
// finishes, an event is delivered through package webhook.
//
// Two Queue implementations exist. Memory is an in-process bounded queue
// with a fixed number of workers, for a single API process. Asynq keeps jobs
// in Redis (github.com/hibiken/asynq), so any API replica can submit, read
// and cancel them while separate worker processes (RunWorker) run them;
// tasks are retried with backoff and survive worker crashes.
//
// The work itself is a Runner injected by the caller, and HTTP answers go
// through a Responder the server implements, so this package depends on
// neither the analysis code nor the server.
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/contentguard/contentguard/backend/webhook"
)

// Responder writes HTTP answers in the server's envelope. The backend server
// implements it; this package only decides status codes and payloads.
type Responder interface {
	// Data writes the success envelope {"success":true,"data":...}.
	Data(w http.ResponseWriter, r *http.Request, status int, data any)
	// Problem writes an RFC 9457 application/problem+json answer.
	Problem(w http.ResponseWriter, r *http.Request, status int, title, detail string)
}

// Runner does the work of one job. It must return promptly once ctx is
// done, may call progress with a fraction in [0,1] as often as it likes, and
// returns the job's result as JSON. An error wrapping ErrPermanent is not
// retried (Redis mode); other errors are, up to the configured limit.
type Runner func(ctx context.Context, kind string, input json.RawMessage, progress func(float64)) (json.RawMessage, error)

// Status is a job's lifecycle state.
type Status string

// Job states. queued → running → completed | failed | cancelled; a job can
// also be cancelled while queued.
const (
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusCompleted Status = "completed"
	StatusFailed    Status = "failed"
	StatusCancelled Status = "cancelled"
)

// Finished reports whether s is a final state.
func (s Status) Finished() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCancelled
}

// Job is a job as the API shows it. The webhook secret is never part of it.
type Job struct {
	ID         string          `json:"id"`
	Kind       string          `json:"kind"`
	Status     Status          `json:"status"`
	Progress   float64         `json:"progress"`
	Result     json.RawMessage `json:"result"`
	Error      string          `json:"error,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
	StartedAt  *time.Time      `json:"started_at"`
	FinishedAt *time.Time      `json:"finished_at"`
	WebhookURL string          `json:"webhook_url,omitempty"`
}

// Spec is what a client submits.
type Spec struct {
	Kind          string
	Input         json.RawMessage
	WebhookURL    string
	WebhookSecret string
}

// Queue accepts, reports on and cancels jobs. Implementations are safe for
// concurrent use.
type Queue interface {
	Submit(ctx context.Context, spec Spec) (Job, error)
	Get(ctx context.Context, id string) (Job, error)
	Cancel(ctx context.Context, id string) (Job, error)
	Close(ctx context.Context) error
}

// Errors a Queue returns; the HTTP handler maps them to status codes.
var (
	ErrQueueFull   = errors.New("jobs: queue full")              // 503 + Retry-After
	ErrNotFound    = errors.New("jobs: job not found")           // 404
	ErrUnknownKind = errors.New("jobs: unknown job kind")        // 422
	ErrInvalidSpec = errors.New("jobs: invalid job")             // 422
	ErrFinished    = errors.New("jobs: job already finished")    // 409 on cancel
	ErrClosed      = errors.New("jobs: queue closed")            // 503
	ErrPermanent   = errors.New("jobs: permanent failure")       // Runner: do not retry
	ErrWebhooksOff = errors.New("jobs: webhooks not configured") // 422
)

// The job kinds of the analysis API.
const (
	KindBatch   = "batch"
	KindDedup   = "dedup"
	KindAnalyze = "analyze"
)

// DefaultKinds is the allow-list used when Options.Kinds is empty.
func DefaultKinds() []string { return []string{KindBatch, KindDedup, KindAnalyze} }

// Observer receives metrics events. Suggested Prometheus names:
// jobs_submitted_total{kind}, jobs_completed_total{kind,status},
// job_duration_seconds{kind} (histogram, from start to finish) and
// jobs_queue_depth (gauge). Methods must be cheap and safe for concurrent
// use. In Redis mode JobFinished is called in the process that finished
// the job (usually a worker), and QueueDepth by every worker, with the jobs
// waiting in all queues (read through asynq's Inspector every WorkerTTL/2).
type Observer interface {
	JobSubmitted(kind string)
	JobFinished(kind string, status Status, d time.Duration)
	QueueDepth(n int)
}

// EventFunc names the webhook event for a finished job; "" sends none.
type EventFunc func(kind string, status Status, input json.RawMessage) string

// Options are common to both queues. Zero values take the defaults in
// brackets.
type Options struct {
	Kinds         []string      // allowed job kinds [DefaultKinds()]
	MaxInputBytes int           // size limit of Spec.Input [8 MiB]
	Retention     time.Duration // how long finished jobs stay readable [1h]
	JobTimeout    time.Duration // limit on one run of a job [10m]
	Observer      Observer      // metrics; nil means none
	// Webhooks delivers job events; nil refuses specs with a webhook URL.
	Webhooks *webhook.Deliverer
	// EventFor maps a finished job to its event [DefaultEventFor].
	EventFor EventFunc
	// Now returns the current time [time.Now].
	Now func() time.Time
}

// MemoryOptions configure NewMemory.
type MemoryOptions struct {
	Options
	Workers   int // concurrent jobs [2]
	QueueSize int // queued (not yet running) jobs [100]
	MaxJobs   int // jobs kept in memory, queued, running and retained [10000]
}

// AsynqOptions configure NewAsynq and RunWorker.
type AsynqOptions struct {
	Options
	// Concurrency is the number of jobs one worker process runs at once [2].
	Concurrency int
	// MaxRetry is how many times a failed run is retried [3].
	MaxRetry int
	// RetryDelay returns the wait before retry n, counted from 1
	// [exponential with full jitter: uniform in [0, min(5m, 1s·2^(n−1))],
	// so the first retry comes within DefaultRetryBase].
	RetryDelay func(n int) time.Duration
	// QueuePrefix prefixes the asynq queue names, one per kind
	// ["contentguard:"].
	QueuePrefix string
	// WorkerTTL is how long a worker's liveness key survives without a
	// refresh; a running job whose worker key has expired is taken over by
	// another worker, far sooner than asynq's own 60–90 s lease recovery
	// [15s].
	WorkerTTL time.Duration
	// MaxPending bounds queued jobs per kind; beyond it Submit returns
	// ErrQueueFull [10000].
	MaxPending int
	// PollInterval is how often an idle worker looks for new tasks (asynq
	// sleeps 0.5–1.5 times it when its queues are empty) and moves due
	// retries to their queue [200ms].
	PollInterval time.Duration
	// Logger receives worker warnings (and asynq's) [discarded].
	Logger *slog.Logger
}
