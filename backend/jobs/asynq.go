package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/contentguard/contentguard/backend/internal/backoff"
	"github.com/contentguard/contentguard/backend/webhook"
)

// taskType is the one asynq task type; the kind travels in the payload.
const taskType = "contentguard:job"

// taskPayload is what a worker needs to run a job. It holds the webhook
// secret, so Redis must be trusted storage (as it is for the results).
type taskPayload struct {
	JobID         string          `json:"job_id"`
	Kind          string          `json:"kind"`
	Input         json.RawMessage `json:"input"`
	WebhookURL    string          `json:"webhook_url,omitempty"`
	WebhookSecret string          `json:"webhook_secret,omitempty"`
}

// Asynq is the Redis-backed Queue. Each kind has its own asynq queue
// (QueuePrefix+kind). A job's state lives in a Redis hash next to asynq's
// task (see store), so progress and cancellation are visible to every API
// replica; the result is the asynq task's result (ResultWriter), kept for
// Retention. With a non-nil runner, NewAsynq also runs a worker in-process.
type Asynq struct {
	opts      AsynqOptions
	rdb       redis.UniversalClient
	client    *asynq.Client
	inspector *asynq.Inspector
	store     store
	backlog   backlogReader
	worker    *worker // nil without a runner
}

// withDefaults fills zero fields of AsynqOptions.
func (o AsynqOptions) withDefaults() AsynqOptions {
	o.Options = o.Options.withDefaults()
	if o.Concurrency <= 0 {
		o.Concurrency = 2
	}
	if o.MaxRetry <= 0 {
		o.MaxRetry = 3
	}
	if o.RetryDelay == nil {
		o.RetryDelay = defaultRetryDelay
	}
	if o.QueuePrefix == "" {
		o.QueuePrefix = "contentguard:"
	}
	if o.WorkerTTL <= 0 {
		o.WorkerTTL = 15 * time.Second
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 10000
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 200 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Default job retry backoff: full jitter, the first retry within
// DefaultRetryBase, the ceiling doubling up to DefaultRetryCap.
const (
	DefaultRetryBase = time.Second
	DefaultRetryCap  = 5 * time.Minute
)

// defaultRetryDelay waits uniformly in [0, min(5m, 1s·2^(n−1))] before
// retry n (1-based), so retries of many failed jobs spread out.
func defaultRetryDelay(n int) time.Duration {
	return backoff.FullJitter{Base: DefaultRetryBase, Cap: DefaultRetryCap}.Delay(n)
}

// asynqRetryDelay adapts a 1-based RetryDelay to asynq's RetryDelayFunc,
// whose n is the number of retries done so far: 0 before the first retry
// (asynq v0.26 passes TaskMessage.Retried, see processor.go and
// recoverer.go).
func asynqRetryDelay(delay func(n int) time.Duration) asynq.RetryDelayFunc {
	return func(retried int, _ error, _ *asynq.Task) time.Duration { return delay(retried + 1) }
}

// queueName is the asynq queue of a kind.
func (o AsynqOptions) queueName(kind string) string { return o.QueuePrefix + kind }

// NewAsynq connects to Redis through redisOpt. runner may be nil for an API
// process that only submits, reads and cancels jobs while RunWorker
// processes run them; with a runner it also starts a worker, stopped by
// Close.
func NewAsynq(redisOpt asynq.RedisConnOpt, runner Runner, opts AsynqOptions) (*Asynq, error) {
	opts = opts.withDefaults()
	rdb, ok := redisOpt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, errors.New("jobs: NewAsynq: redis option does not make a go-redis v9 client")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("jobs: NewAsynq: connecting to Redis: %w", err)
	}
	a := &Asynq{
		opts:      opts,
		rdb:       rdb,
		client:    asynq.NewClientFromRedisClient(rdb),
		inspector: asynq.NewInspectorFromRedisClient(rdb),
		store:     store{rdb: rdb, prefix: opts.QueuePrefix},
	}
	a.backlog = backlogReader{inspector: a.inspector, now: opts.Now}
	if err := checkWebhookStore(ctx, rdb, opts); err != nil {
		_ = rdb.Close()
		return nil, err
	}
	if runner != nil {
		w, err := startWorker(redisOpt, runner, opts)
		if err != nil {
			_ = a.Close(context.Background())
			return nil, err
		}
		a.worker = w
	}
	return a, nil
}

// txStore is a webhook store that can record deliveries inside a Redis
// transaction of ours (redisstore.Store).
type txStore interface {
	EnqueueTx(ctx context.Context, tx redis.Pipeliner, ds []webhook.Delivery, limit int) func() (webhook.EnqueueResult, error)
	SameRedis(ctx context.Context, c redis.Cmdable) (bool, error)
}

// checkWebhookStore makes sure job events can be recorded atomically: a
// Redis webhook store must be the jobs' Redis; any other store is recorded
// right after the job becomes final, and a kill in between loses the
// event, which is logged once here.
func checkWebhookStore(ctx context.Context, rdb redis.UniversalClient, o AsynqOptions) error {
	if o.Webhooks == nil {
		return nil
	}
	txs, ok := o.Webhooks.Store().(txStore)
	if !ok {
		o.Logger.Warn("jobs: the webhook store is not in Redis: job events are recorded after the job is final, not with it, and a process killed in between loses them")
		return nil
	}
	same, err := txs.SameRedis(ctx, rdb)
	if err != nil {
		return fmt.Errorf("jobs: checking the webhook store: %w", err)
	}
	if !same {
		return errors.New("jobs: the webhook store must be in the jobs' Redis (same server and database)")
	}
	return nil
}

// recorder returns how a job's final state records its webhook deliveries
// (nil without webhooks): with a Redis webhook store, in the same
// transaction.
func (o AsynqOptions) recorder(input json.RawMessage, secret string) recorder {
	if o.Webhooks == nil {
		return nil
	}
	return func(ctx context.Context, tx redis.Pipeliner, job Job) (func(), error) {
		ev, own, ok := o.jobEvent(job, input, secret)
		if !ok {
			return nil, nil
		}
		ds, err := o.Webhooks.Prepare(ctx, ev, own...)
		if err != nil {
			return nil, err
		}
		txs, ok := o.Webhooks.Store().(txStore)
		if !ok {
			return func() { _ = o.Webhooks.Enqueue(ctx, ds) }, nil
		}
		read := txs.EnqueueTx(ctx, tx, ds, o.Webhooks.QueueSize())
		return func() {
			res, err := read()
			if err != nil {
				o.Logger.Error("jobs: recording webhook deliveries", "job", job.ID, "err", err)
				return
			}
			_ = o.Webhooks.Recorded(ctx, res, ds) // logs and counts drops
		}, nil
	}
}

// Submit validates spec, records the job and enqueues its task.
func (a *Asynq) Submit(ctx context.Context, spec Spec) (Job, error) {
	spec, err := a.opts.validate(ctx, spec)
	if err != nil {
		return Job{}, err
	}
	if err := a.opts.saturated(ctx); err != nil {
		return Job{}, err
	}
	queue := a.opts.queueName(spec.Kind)
	waiting, err := a.backlog.waiting(queue)
	if err != nil {
		return Job{}, err
	}
	if waiting >= a.opts.MaxPending {
		return Job{}, fmt.Errorf("%w: %d %s jobs waiting", ErrQueueFull, waiting, spec.Kind)
	}
	job := Job{
		ID: newID(), Kind: spec.Kind, Status: StatusQueued,
		CreatedAt: a.opts.Now().UTC(), WebhookURL: spec.WebhookURL,
	}
	payload, err := json.Marshal(taskPayload{JobID: job.ID, Kind: spec.Kind, Input: spec.Input, WebhookURL: spec.WebhookURL, WebhookSecret: spec.WebhookSecret})
	if err != nil {
		return Job{}, fmt.Errorf("jobs: encoding task: %w", err)
	}
	if err := a.store.create(ctx, job, queue, a.metaTTL()); err != nil {
		return Job{}, err
	}
	if _, err := a.client.EnqueueContext(ctx, asynq.NewTask(taskType, payload), a.taskOptions(queue, job.ID)...); err != nil {
		a.store.forget(context.WithoutCancel(ctx), job.ID)
		return Job{}, fmt.Errorf("jobs: enqueueing %s: %w", job.ID, err)
	}
	a.backlog.added(queue)
	if o := a.opts.Observer; o != nil {
		o.JobSubmitted(spec.Kind)
	}
	return job, nil
}

// backlogTTL is how long one reading of a queue's backlog serves Submit.
// Reading it is several Redis commands (asynq's Inspector.GetQueueInfo), so
// the bound is enforced on a reading at most this old plus the jobs this
// process submitted since: another replica can overshoot it by what it
// submits in backlogTTL.
const backlogTTL = 200 * time.Millisecond

// backlogReader caches each queue's waiting jobs (pending, scheduled and
// awaiting retry), read through asynq's public Inspector.
type backlogReader struct {
	inspector *asynq.Inspector
	now       func() time.Time

	mu       sync.Mutex
	readings map[string]backlogReading
}

type backlogReading struct {
	n  int
	at time.Time
}

func (b *backlogReader) waiting(queue string) (int, error) {
	now := b.now()
	b.mu.Lock()
	r, ok := b.readings[queue]
	b.mu.Unlock()
	if ok && now.Sub(r.at) < backlogTTL && now.Sub(r.at) >= 0 {
		return r.n, nil
	}
	n := 0
	info, err := b.inspector.GetQueueInfo(queue)
	if err != nil && b.known(queue) {
		// The queue exists now: it may not have a moment ago, when the
		// first task of its kind was being enqueued. Read again.
		info, err = b.inspector.GetQueueInfo(queue)
		if err != nil {
			return 0, fmt.Errorf("jobs: reading backlog of %s: %w", queue, err)
		}
	}
	if err == nil { // else no task was ever enqueued there: no such queue yet
		n = info.Pending + info.Scheduled + info.Retry
	}
	b.mu.Lock()
	if b.readings == nil {
		b.readings = map[string]backlogReading{}
	}
	b.readings[queue] = backlogReading{n: n, at: now}
	b.mu.Unlock()
	return n, nil
}

// known reports whether asynq lists queue (GetQueueInfo's not-found error
// is not exported in v0.26, Queues is).
func (b *backlogReader) known(queue string) bool {
	qs, err := b.inspector.Queues()
	if err != nil {
		return true // let the caller report the original error
	}
	for _, q := range qs {
		if q == queue {
			return true
		}
	}
	return false
}

// added counts a job this process just enqueued into the cached reading.
func (b *backlogReader) added(queue string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if r, ok := b.readings[queue]; ok {
		r.n++
		b.readings[queue] = r
	}
}

// metaTTL bounds how long an unfinished job's record can live: a job that
// never finishes (all workers gone for good) is forgotten eventually.
func (a *Asynq) metaTTL() time.Duration {
	return a.opts.Retention + time.Duration(a.opts.MaxRetry+2)*(a.opts.JobTimeout+time.Hour)
}

func (a *Asynq) taskOptions(queue, taskID string) []asynq.Option {
	return taskOptions(a.opts, queue, taskID)
}

func taskOptions(o AsynqOptions, queue, taskID string) []asynq.Option {
	return []asynq.Option{
		asynq.Queue(queue),
		asynq.TaskID(taskID),
		asynq.MaxRetry(o.MaxRetry),
		asynq.Retention(o.Retention),
		// asynq's deadline backs up the runner's own JobTimeout.
		asynq.Timeout(o.JobTimeout + time.Minute),
	}
}

// Get reads the job record and, for a completed job, its result.
func (a *Asynq) Get(ctx context.Context, id string) (Job, error) {
	if !validID(id) {
		return Job{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	rec, err := a.store.load(ctx, id)
	if err != nil {
		return Job{}, err
	}
	job := rec.job
	info, err := a.inspector.GetTaskInfo(rec.queue, rec.taskID)
	switch {
	case err == nil:
		if job.Status == StatusCompleted {
			job.Result = info.Result
		}
		if !job.Status.Finished() && info.State == asynq.TaskStateArchived {
			// The handler records a job's failure before asynq archives
			// its task, so the record may have finished since it was read
			// above: read it again before speaking for asynq.
			if rec, err = a.store.load(ctx, id); err != nil {
				return Job{}, err
			}
			job = rec.job
			// Still unfinished: asynq archived the task without our
			// handler finishing it (its own lease recovery ran out of
			// retries): it failed.
			if !job.Status.Finished() {
				job.Status = StatusFailed
				job.Error = info.LastErr
				job.FinishedAt = ptr(info.LastFailedAt)
			}
		}
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		// Retention over, or the task was deleted by a cancel.
	default:
		return Job{}, fmt.Errorf("jobs: reading task of %s: %w", id, err)
	}
	return job, nil
}

// Cancel marks the job cancelled, together with its webhook deliveries,
// then deletes its task if still waiting or signals the worker running it.
// The job is final at once.
func (a *Asynq) Cancel(ctx context.Context, id string) (Job, error) {
	if !validID(id) {
		return Job{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	before, err := a.store.load(ctx, id)
	if err != nil {
		return Job{}, err
	}
	// The task's payload holds the input (for the event's name) and the
	// job's webhook secret.
	var payload taskPayload
	info, infoErr := a.inspector.GetTaskInfo(before.queue, before.taskID)
	if infoErr == nil {
		_ = json.Unmarshal(info.Payload, &payload)
	}
	rec, changed, err := a.store.cancel(ctx, id, a.opts.Now(), a.opts.Retention, a.opts.recorder(payload.Input, payload.WebhookSecret))
	if err != nil {
		return Job{}, err
	}
	if !changed {
		if rec.job.Status == StatusCancelled {
			return rec.job, nil
		}
		return rec.job, fmt.Errorf("%w: %q is %s", ErrFinished, id, rec.job.Status)
	}
	err = infoErr
	if err == nil && rec.taskID == before.taskID {
		switch info.State {
		case asynq.TaskStateActive:
			err = a.inspector.CancelProcessing(rec.taskID)
		case asynq.TaskStatePending, asynq.TaskStateScheduled, asynq.TaskStateRetry:
			err = a.inspector.DeleteTask(rec.queue, rec.taskID)
		}
	}
	if err != nil && !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
		// The record says cancelled, and a worker checks it before and
		// after running, so the job cannot complete; only the wasted work
		// remains.
		a.opts.Logger.Warn("jobs: stopping cancelled task", "job", id, "err", err)
	}
	a.opts.finished(rec.job)
	return rec.job, nil
}

// Webhooks returns the deliverer of job events (nil without webhooks).
func (a *Asynq) Webhooks() *webhook.Deliverer { return a.opts.Webhooks }

// Close stops the in-process worker, if any, and closes the connections.
func (a *Asynq) Close(ctx context.Context) error {
	var errs []error
	if a.worker != nil {
		if err := a.worker.stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	// The asynq client and inspector share rdb and are closed with it.
	errs = append(errs, a.rdb.Close())
	return errors.Join(errs...)
}

// RunWorker runs jobs from the Redis at redisURL (redis://[:password@]host:port[/db])
// until ctx is done, then shuts down gracefully: `contentguard backend --worker`.
func RunWorker(ctx context.Context, redisURL string, runner Runner, opts AsynqOptions) error {
	if runner == nil {
		return errors.New("jobs: RunWorker: nil runner")
	}
	redisOpt, err := asynq.ParseRedisURI(redisURL)
	if err != nil {
		return fmt.Errorf("jobs: RunWorker: %w", err)
	}
	w, err := startWorker(redisOpt, runner, opts.withDefaults())
	if err != nil {
		return err
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return w.stop(stopCtx)
}

// worker is one asynq server plus the liveness key and the reaper that
// takes over jobs of dead workers.
type worker struct {
	id        string
	opts      AsynqOptions
	runner    Runner
	rdb       redis.UniversalClient
	client    *asynq.Client
	inspector *asynq.Inspector
	store     store
	backlog   backlogReader
	srv       *asynq.Server

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startWorker(redisOpt asynq.RedisConnOpt, runner Runner, opts AsynqOptions) (*worker, error) {
	rdb, ok := redisOpt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, errors.New("jobs: worker: redis option does not make a go-redis v9 client")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("jobs: worker: connecting to Redis: %w", err)
	}
	w := &worker{
		id:        "w_" + newID()[4:],
		opts:      opts,
		runner:    runner,
		rdb:       rdb,
		client:    asynq.NewClientFromRedisClient(rdb),
		inspector: asynq.NewInspectorFromRedisClient(rdb),
		store:     store{rdb: rdb, prefix: opts.QueuePrefix},
	}
	w.backlog = backlogReader{inspector: w.inspector, now: opts.Now}
	queues := make(map[string]int, len(opts.Kinds))
	for _, k := range opts.Kinds {
		queues[opts.queueName(k)] = 1
	}
	w.srv = asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:              opts.Concurrency,
		Queues:                   queues,
		RetryDelayFunc:           asynqRetryDelay(opts.RetryDelay),
		TaskCheckInterval:        opts.PollInterval,
		DelayedTaskCheckInterval: opts.PollInterval,
		ShutdownTimeout:          10 * time.Second,
		LogLevel:                 asynq.WarnLevel,
		Logger:                   asynqLogger{opts.Logger},
	})
	if err := checkWebhookStore(ctx, rdb, opts); err != nil {
		_ = rdb.Close()
		return nil, err
	}
	if err := w.store.beat(ctx, w.id, opts.WorkerTTL); err != nil {
		_ = rdb.Close()
		return nil, err
	}
	mux := asynq.NewServeMux()
	mux.HandleFunc(taskType, w.handle)
	if err := w.srv.Start(mux); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("jobs: starting worker: %w", err)
	}
	var loopCtx context.Context
	loopCtx, w.cancel = context.WithCancel(context.Background())
	w.wg.Add(1)
	go w.loop(loopCtx)
	return w, nil
}

// loop refreshes the liveness key every WorkerTTL/3 and reaps orphaned
// jobs every WorkerTTL/2.
func (w *worker) loop(ctx context.Context) {
	defer w.wg.Done()
	beat := time.NewTicker(w.opts.WorkerTTL / 3)
	reap := time.NewTicker(w.opts.WorkerTTL / 2)
	defer beat.Stop()
	defer reap.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			if err := w.store.beat(ctx, w.id, w.opts.WorkerTTL); err != nil && ctx.Err() == nil {
				w.opts.Logger.Warn("jobs: worker heartbeat", "worker", w.id, "err", err)
			}
		case <-reap.C:
			w.reap(ctx)
			w.reportBacklog()
		}
	}
}

// reportBacklog gives the observer the jobs waiting in all queues (every
// worker reports the same number: read it with max()).
func (w *worker) reportBacklog() {
	if w.opts.Observer == nil {
		return
	}
	total := 0
	for _, kind := range w.opts.Kinds {
		n, err := w.backlog.waiting(w.opts.queueName(kind))
		if err != nil {
			return
		}
		total += n
	}
	w.opts.Observer.QueueDepth(total)
}

func (w *worker) stop(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		w.srv.Shutdown() // waits for running handlers (ShutdownTimeout)
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("jobs: stopping worker: %w", ctx.Err())
	}
	w.cancel()
	w.wg.Wait()
	return errors.Join(err, w.rdb.Close())
}

// handle runs one task. The job record decides: a task that is not the
// job's current one (taken over by another worker) or whose job is already
// final does nothing.
func (w *worker) handle(ctx context.Context, t *asynq.Task) error {
	var p taskPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || !validID(p.JobID) {
		return fmt.Errorf("jobs: undecodable task payload: %w", asynq.SkipRetry)
	}
	taskID, _ := asynq.GetTaskID(ctx)
	started, err := w.store.start(ctx, p.JobID, taskID, w.id, w.opts.Now())
	if err != nil {
		return err // Redis trouble: let asynq retry
	}
	if !started {
		return nil
	}
	runCtx, cancel := context.WithTimeout(ctx, w.opts.JobTimeout)
	defer cancel()
	progress := w.progressWriter(runCtx, p.JobID, taskID)
	result, runErr := safeRun(runCtx, w.runner, p.Kind, p.Input, progress)
	if runErr == nil {
		if _, err := t.ResultWriter().Write(result); err != nil {
			runErr = fmt.Errorf("jobs: storing result: %w", err)
		}
	}
	// Writes below must happen even when ctx was cancelled.
	bg, cancelBG := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancelBG()
	if runErr == nil {
		return w.finish(bg, p, taskID, StatusCompleted, "")
	}
	if ctx.Err() != nil && !errors.Is(runCtx.Err(), context.DeadlineExceeded) {
		// Cancelled by a Cancel (the record already says so) or by this
		// worker shutting down (asynq requeues the task): not a failure.
		requeued, err := w.store.requeue(bg, p.JobID, taskID, "worker stopped")
		if err != nil {
			return err
		}
		if !requeued {
			return nil // cancelled, or no longer this task's job: nothing to retry
		}
		return runErr
	}
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	if errors.Is(runErr, ErrPermanent) || retried >= maxRetry {
		if err := w.finish(bg, p, taskID, StatusFailed, runErr.Error()); err != nil {
			return err
		}
		return fmt.Errorf("%w: %w", asynq.SkipRetry, runErr)
	}
	requeued, err := w.store.requeue(bg, p.JobID, taskID, runErr.Error())
	if err != nil {
		return err
	}
	if !requeued {
		return nil
	}
	return runErr
}

// finish records the final state with the job's webhook deliveries; only
// the run that owns the job (and finds it unfinished) does.
func (w *worker) finish(ctx context.Context, p taskPayload, taskID string, status Status, msg string) error {
	job, ok, err := w.store.finish(ctx, p.JobID, taskID, status, msg, w.opts.Now(), w.opts.Retention, w.opts.recorder(p.Input, p.WebhookSecret))
	if err != nil {
		return err
	}
	if ok {
		w.opts.finished(job)
	}
	return nil
}

// progressWriter stores progress in Redis, skipping updates smaller than a
// percent point so a chatty runner does not flood Redis.
func (w *worker) progressWriter(ctx context.Context, jobID, taskID string) func(float64) {
	var mu sync.Mutex
	last := -1.0
	return func(p float64) {
		p = clamp(p)
		mu.Lock()
		if p-last < 0.01 && !(p == 1 && last != 1) {
			mu.Unlock()
			return
		}
		last = p
		mu.Unlock()
		if err := w.store.progress(ctx, jobID, taskID, p); err != nil && ctx.Err() == nil {
			w.opts.Logger.Warn("jobs: storing progress", "job", jobID, "err", err)
		}
	}
}

// reap takes over running jobs whose worker's liveness key has expired: it
// points the job at a new task id and enqueues that task, so another worker
// runs the job again within about WorkerTTL of the crash. The dead worker's
// task is left to asynq's lease recovery, and does nothing when it runs
// again because it is no longer the job's task. A job taken over more than
// MaxRetry times fails: it may be what kills its workers.
func (w *worker) reap(ctx context.Context) {
	orphans, err := w.store.orphans(ctx)
	if err != nil {
		if ctx.Err() == nil {
			w.opts.Logger.Warn("jobs: listing orphaned jobs", "err", err)
		}
		return
	}
	for _, o := range orphans {
		info, err := w.inspector.GetTaskInfo(o.queue, o.taskID)
		if err != nil {
			w.opts.Logger.Warn("jobs: reading orphaned task", "job", o.jobID, "err", err)
			continue
		}
		if o.takeovers >= w.opts.MaxRetry {
			var p taskPayload
			_ = json.Unmarshal(info.Payload, &p)
			p.JobID = o.jobID
			if err := w.finish(ctx, p, o.taskID, StatusFailed, fmt.Sprintf("worker lost %d times", o.takeovers+1)); err != nil {
				w.opts.Logger.Warn("jobs: failing orphaned job", "job", o.jobID, "err", err)
			}
			continue
		}
		newTaskID := o.jobID + ".t" + strconv.Itoa(o.takeovers+1)
		claimed, err := w.store.claim(ctx, o, newTaskID)
		if err != nil || !claimed {
			continue
		}
		if _, err := w.client.EnqueueContext(ctx, asynq.NewTask(taskType, info.Payload), taskOptions(w.opts, o.queue, newTaskID)...); err != nil {
			w.opts.Logger.Warn("jobs: requeueing orphaned job", "job", o.jobID, "err", err)
			w.store.unclaim(ctx, o)
		}
	}
	w.reapStalled(ctx)
}

// reapStalled takes over jobs whose task a dead worker had taken from the
// queue but not yet started: our liveness keys cannot see those (the job
// is not running), asynq can. Its public Inspector marks an active task
// whose lease expired (30 s without its worker's heartbeat) as orphaned;
// asynq's own recoverer would requeue it only 30–90 s later. The job moves
// to a new task, as in reap; the stalled one does nothing when asynq
// eventually runs it again.
func (w *worker) reapStalled(ctx context.Context) {
	for _, kind := range w.opts.Kinds {
		queue := w.opts.queueName(kind)
		active, err := w.inspector.ListActiveTasks(queue, asynq.PageSize(1000))
		if err != nil {
			if !errors.Is(err, asynq.ErrQueueNotFound) && ctx.Err() == nil {
				w.opts.Logger.Warn("jobs: listing active tasks", "queue", queue, "err", err)
			}
			continue
		}
		for _, t := range active {
			if !t.IsOrphaned {
				continue
			}
			var p taskPayload
			if json.Unmarshal(t.Payload, &p) != nil || !validID(p.JobID) {
				continue
			}
			rec, err := w.store.load(ctx, p.JobID)
			if err != nil || rec.taskID != t.ID || rec.job.Status != StatusQueued {
				continue // running (reap's case), final, or already taken over
			}
			newTaskID := p.JobID + ".t" + strconv.Itoa(rec.takeovers+1)
			if claimed, err := w.store.claimStalled(ctx, p.JobID, t.ID, newTaskID); err != nil || !claimed {
				continue
			}
			if _, err := w.client.EnqueueContext(ctx, asynq.NewTask(taskType, t.Payload), taskOptions(w.opts, queue, newTaskID)...); err != nil {
				w.opts.Logger.Warn("jobs: requeueing stalled job", "job", p.JobID, "err", err)
				w.store.unclaimStalled(ctx, p.JobID, t.ID)
			}
		}
	}
}

// asynqLogger routes asynq's log lines to slog.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)) }
