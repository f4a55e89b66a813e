package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/contentguard/contentguard/backend/webhook"
)

// Memory is the in-process Queue: a bounded channel of queued jobs, a fixed
// set of workers, and a bounded map of jobs that forgets finished ones after
// Options.Retention.
type Memory struct {
	runner Runner
	opts   MemoryOptions

	ctx    context.Context // cancelled by Close: stops running jobs
	cancel context.CancelFunc
	wg     sync.WaitGroup
	queue  chan *memJob

	mu       sync.Mutex
	closed   bool
	jobs     map[string]*memJob
	finished []finishedRef // in finishing order, for TTL eviction
}

// memJob is a job with what the API must not show.
type memJob struct {
	job    Job
	input  json.RawMessage
	secret string
	cancel context.CancelFunc // set while running
}

type finishedRef struct {
	id string
	at time.Time
}

// NewMemory starts opts.Workers workers running jobs with runner.
func NewMemory(runner Runner, opts MemoryOptions) (*Memory, error) {
	if runner == nil {
		return nil, errors.New("jobs: NewMemory: nil runner")
	}
	opts.Options = opts.Options.withDefaults()
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 100
	}
	if opts.MaxJobs <= 0 {
		opts.MaxJobs = 10000
	}
	if opts.MaxJobs < opts.QueueSize+opts.Workers {
		return nil, fmt.Errorf("jobs: NewMemory: MaxJobs %d is below QueueSize+Workers %d", opts.MaxJobs, opts.QueueSize+opts.Workers)
	}
	m := &Memory{
		runner: runner,
		opts:   opts,
		queue:  make(chan *memJob, opts.QueueSize),
		jobs:   make(map[string]*memJob),
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	for i := 0; i < opts.Workers; i++ {
		m.wg.Add(1)
		go m.work()
	}
	return m, nil
}

// Submit validates spec and queues it. A full queue, or a store full of
// unexpired jobs, gives ErrQueueFull.
func (m *Memory) Submit(ctx context.Context, spec Spec) (Job, error) {
	spec, err := m.opts.validate(ctx, spec)
	if err != nil {
		return Job{}, err
	}
	if err := m.opts.saturated(ctx); err != nil {
		return Job{}, err
	}
	now := m.opts.Now()
	mj := &memJob{
		job: Job{
			ID: newID(), Kind: spec.Kind, Status: StatusQueued,
			CreatedAt: now.UTC(), WebhookURL: spec.WebhookURL,
		},
		input:  spec.Input,
		secret: spec.WebhookSecret,
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Job{}, ErrClosed
	}
	m.evictLocked(now)
	if len(m.jobs) >= m.opts.MaxJobs {
		return Job{}, fmt.Errorf("%w: %d jobs retained", ErrQueueFull, len(m.jobs))
	}
	select {
	case m.queue <- mj:
	default:
		return Job{}, fmt.Errorf("%w: %d jobs waiting", ErrQueueFull, cap(m.queue))
	}
	m.jobs[mj.job.ID] = mj
	if o := m.opts.Observer; o != nil {
		o.JobSubmitted(spec.Kind)
		o.QueueDepth(len(m.queue))
	}
	return mj.job, nil
}

// Get returns a job; finished jobs are kept for Options.Retention.
func (m *Memory) Get(_ context.Context, id string) (Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.evictLocked(m.opts.Now())
	mj, ok := m.jobs[id]
	if !ok {
		return Job{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return mj.job, nil
}

// Cancel stops a queued or running job. The job is final at once: a running
// Runner sees its context cancelled and whatever it returns is discarded.
// Cancelling a cancelled job returns it again; a completed or failed one
// gives ErrFinished.
func (m *Memory) Cancel(_ context.Context, id string) (Job, error) {
	m.mu.Lock()
	mj, ok := m.jobs[id]
	if !ok {
		m.mu.Unlock()
		return Job{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	switch mj.job.Status {
	case StatusCancelled:
		m.mu.Unlock()
		return mj.job, nil
	case StatusCompleted, StatusFailed:
		m.mu.Unlock()
		return mj.job, fmt.Errorf("%w: %q is %s", ErrFinished, id, mj.job.Status)
	}
	if mj.cancel != nil {
		mj.cancel()
	}
	m.finishLocked(mj, StatusCancelled, nil, "cancelled by request")
	job := mj.job
	m.mu.Unlock()
	m.opts.finished(job)
	m.opts.notify(context.Background(), job, mj.input, mj.secret)
	return job, nil
}

// Webhooks returns the deliverer of job events (nil without webhooks).
func (m *Memory) Webhooks() *webhook.Deliverer { return m.opts.Webhooks }

// Close stops accepting jobs, cancels running ones and waits for the
// workers, or for ctx.
func (m *Memory) Close(ctx context.Context) error {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		close(m.queue)
	}
	m.mu.Unlock()
	m.cancel()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("jobs: closing memory queue: %w", ctx.Err())
	}
}

func (m *Memory) work() {
	defer m.wg.Done()
	for mj := range m.queue {
		m.run(mj)
	}
}

// run executes one job unless it was cancelled while queued.
func (m *Memory) run(mj *memJob) {
	m.mu.Lock()
	if o := m.opts.Observer; o != nil {
		o.QueueDepth(len(m.queue))
	}
	if mj.job.Status != StatusQueued {
		m.mu.Unlock()
		return
	}
	if m.ctx.Err() != nil { // closing: drain the queue without running
		m.finishLocked(mj, StatusCancelled, nil, "server shutting down")
		job := mj.job
		m.mu.Unlock()
		m.opts.finished(job)
		m.opts.notify(context.Background(), job, mj.input, mj.secret)
		return
	}
	ctx, cancel := context.WithTimeout(m.ctx, m.opts.JobTimeout)
	defer cancel()
	mj.cancel = cancel
	mj.job.Status = StatusRunning
	mj.job.StartedAt = ptr(m.opts.Now())
	m.mu.Unlock()

	progress := func(p float64) {
		m.mu.Lock()
		if mj.job.Status == StatusRunning {
			mj.job.Progress = clamp(p)
		}
		m.mu.Unlock()
	}
	result, err := safeRun(ctx, m.runner, mj.job.Kind, mj.input, progress)

	m.mu.Lock()
	if mj.job.Status != StatusRunning { // cancelled meanwhile: already final
		m.mu.Unlock()
		return
	}
	switch {
	case err == nil:
		m.finishLocked(mj, StatusCompleted, result, "")
	case m.ctx.Err() != nil:
		m.finishLocked(mj, StatusCancelled, nil, "server shutting down")
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		m.finishLocked(mj, StatusFailed, nil, fmt.Sprintf("timed out after %s", m.opts.JobTimeout))
	default:
		m.finishLocked(mj, StatusFailed, nil, err.Error())
	}
	job := mj.job
	m.mu.Unlock()
	m.opts.finished(job)
	m.opts.notify(context.Background(), job, mj.input, mj.secret)
}

// finishLocked moves a job to a final state and schedules its eviction.
func (m *Memory) finishLocked(mj *memJob, status Status, result json.RawMessage, msg string) {
	now := m.opts.Now()
	mj.job.Status = status
	mj.job.Result = result
	mj.job.Error = msg
	mj.job.FinishedAt = ptr(now)
	if status == StatusCompleted {
		mj.job.Progress = 1
	}
	mj.cancel = nil
	m.finished = append(m.finished, finishedRef{id: mj.job.ID, at: now})
}

// evictLocked forgets jobs that finished more than Retention ago. Finishing
// times are appended in order, so only the front of the list is examined.
func (m *Memory) evictLocked(now time.Time) {
	cut := 0
	for cut < len(m.finished) && now.Sub(m.finished[cut].at) > m.opts.Retention {
		delete(m.jobs, m.finished[cut].id)
		cut++
	}
	if cut > 0 {
		m.finished = append(m.finished[:0:0], m.finished[cut:]...)
	}
}

// safeRun calls the runner and turns a panic into an error, so one bad job
// cannot take the process down.
func safeRun(ctx context.Context, run Runner, kind string, input json.RawMessage, progress func(float64)) (result json.RawMessage, err error) {
	defer func() {
		if r := recover(); r != nil {
			result, err = nil, fmt.Errorf("jobs: runner panicked: %v", r)
		}
	}()
	result, err = run(ctx, kind, input, progress)
	if err == nil && len(result) > 0 && !json.Valid(result) {
		return nil, fmt.Errorf("jobs: runner returned invalid JSON")
	}
	return result, err
}
