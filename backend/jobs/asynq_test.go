package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/contentguard/contentguard/backend/webhook"
	"github.com/contentguard/contentguard/backend/webhook/redisstore"
	"github.com/contentguard/contentguard/internal/polltest"
	"github.com/contentguard/contentguard/internal/redistest"
)

// Environment of the worker child processes (see TestMain).
const (
	envWorkerRedis = "CONTENTGUARD_JOBS_TEST_WORKER_REDIS"
	envStallRedis  = "CONTENTGUARD_JOBS_TEST_STALL_REDIS"
	envWorkerTTL   = "CONTENTGUARD_JOBS_TEST_WORKER_TTL" // the worker's WorkerTTL [workerTTL]
	workerTTL      = time.Second
)

// TestMain doubles as a worker process: the crash tests start this test
// binary again with envWorkerRedis (a worker) or envStallRedis (a bare
// asynq server that takes one task and hangs before running it) set, and
// kill it with SIGKILL.
func TestMain(m *testing.M) {
	if url := os.Getenv(envWorkerRedis); url != "" {
		os.Exit(runTestWorker(url))
	}
	if addr := os.Getenv(envStallRedis); addr != "" {
		os.Exit(runStallingServer(addr))
	}
	os.Exit(m.Run())
}

// stallOneTask runs a stalling server (runStallingServer) until it has
// taken a task, SIGKILLs it and returns the time of the kill.
func stallOneTask(tb testing.TB, addr string) time.Time {
	tb.Helper()
	stall := exec.Command(os.Args[0], "-test.run=^$")
	stall.Env = append(os.Environ(), envStallRedis+"="+addr)
	out, err := stall.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := stall.Start(); err != nil {
		tb.Fatal(err)
	}
	line := make([]byte, len("taken\n"))
	if _, err := io.ReadFull(out, line); err != nil || string(line) != "taken\n" {
		tb.Fatalf("stalling server said %q, %v", line, err)
	}
	killed := time.Now()
	_ = stall.Process.Signal(syscall.SIGKILL)
	_ = stall.Wait()
	return killed
}

// runStallingServer takes tasks from the batch queue like a worker, says
// "taken" on stdout and hangs: a worker that dies between taking a task
// and starting its job.
func runStallingServer(addr string) int {
	srv := asynq.NewServer(asynq.RedisClientOpt{Addr: addr}, asynq.Config{
		Concurrency: 1, Queues: map[string]int{"contentguard:" + KindBatch: 1},
		TaskCheckInterval: 20 * time.Millisecond, LogLevel: asynq.ErrorLevel,
	})
	err := srv.Run(asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		fmt.Println("taken")
		<-ctx.Done()
		return ctx.Err()
	}))
	if err != nil {
		fmt.Fprintln(os.Stderr, "stalling server:", err)
		return 1
	}
	return 0
}

// slowSum is the work of the crash test: it adds up input.numbers, one
// number per step of input.step_ms, reporting progress after each.
func slowSum(ctx context.Context, kind string, input json.RawMessage, progress func(float64)) (json.RawMessage, error) {
	var in struct {
		Numbers []int `json:"numbers"`
		StepMS  int   `json:"step_ms"`
	}
	if err := json.Unmarshal(input, &in); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPermanent, err)
	}
	sum := 0
	for i, n := range in.Numbers {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(in.StepMS) * time.Millisecond):
		}
		sum += n
		progress(float64(i+1) / float64(len(in.Numbers)))
	}
	return json.Marshal(map[string]int{"sum": sum, "count": len(in.Numbers)})
}

func runTestWorker(redisURL string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ttl := workerTTL
	if v := os.Getenv(envWorkerTTL); v != "" {
		ttl, _ = time.ParseDuration(v)
	}
	err := RunWorker(ctx, redisURL, slowSum, AsynqOptions{Concurrency: 1, WorkerTTL: ttl, PollInterval: 20 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	return 0
}

func newAsynqQueue(t *testing.T, runner Runner, opts Options) Queue {
	addr := redistest.Start(t)
	q, err := NewAsynq(asynq.RedisClientOpt{Addr: addr}, runner, AsynqOptions{
		Options: opts, Concurrency: 1, PollInterval: 20 * time.Millisecond, WorkerTTL: workerTTL,
		RetryDelay: func(int) time.Duration { return 10 * time.Millisecond },
	})
	if err != nil {
		t.Fatal(err)
	}
	closeQueue(t, q)
	return q
}

func TestAsynqContract(t *testing.T) { testQueueContract(t, newAsynqQueue) }

func TestAsynqRetriesThenCompletes(t *testing.T) {
	var calls atomic.Int32
	q := newAsynqQueue(t, func(ctx context.Context, kind string, in json.RawMessage, p func(float64)) (json.RawMessage, error) {
		if calls.Add(1) < 3 {
			return nil, errors.New("backend hiccup")
		}
		return json.RawMessage(`{"ok":true}`), nil
	}, Options{})
	j, err := q.Submit(context.Background(), Spec{Kind: KindBatch})
	if err != nil {
		t.Fatal(err)
	}
	done := waitJob(t, q, j.ID, "finished", finished)
	if done.Status != StatusCompleted || string(done.Result) != `{"ok":true}` || done.Error != "" || calls.Load() != 3 {
		t.Fatalf("job = %+v after %d runs; want completed on the 3rd", done, calls.Load())
	}
}

func TestAsynqRetriesExhausted(t *testing.T) {
	var calls atomic.Int32
	q := newAsynqQueue(t, func(ctx context.Context, kind string, in json.RawMessage, p func(float64)) (json.RawMessage, error) {
		calls.Add(1)
		return nil, errors.New("always broken")
	}, Options{})
	j, _ := q.Submit(context.Background(), Spec{Kind: KindBatch})
	done := waitJob(t, q, j.ID, "finished", finished)
	if done.Status != StatusFailed || done.Error != "always broken" || calls.Load() != 4 {
		t.Fatalf("job = %+v after %d runs; want failed after 1+3 retries", done, calls.Load())
	}
}

// TestAsynqSurvivesWorkerCrash: a worker process is SIGKILLed in the middle
// of a job; another worker takes the job over and finishes it with the
// right result, and the jobs queued behind it all complete too.
func TestAsynqSurvivesWorkerCrash(t *testing.T) {
	addr := redistest.Start(t)
	redisURL := "redis://" + addr
	api, err := NewAsynq(asynq.RedisClientOpt{Addr: addr}, nil, AsynqOptions{})
	if err != nil {
		t.Fatal(err)
	}
	closeQueue(t, api)

	startWorker := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envWorkerRedis+"="+redisURL)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		})
		return cmd
	}

	numbers := make([]int, 20)
	want := 0
	for i := range numbers {
		numbers[i] = i*i + 1
		want += numbers[i]
	}
	submit := func(step int) Job {
		in, _ := json.Marshal(map[string]any{"numbers": numbers, "step_ms": step})
		j, err := api.Submit(context.Background(), Spec{Kind: KindBatch, Input: in})
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	// 20 steps of 150ms: the test has 2s between seeing a quarter done and
	// the job's end to kill the worker, however slowly it gets to run.
	slow := submit(150)
	var queued []Job
	for i := 0; i < 3; i++ {
		queued = append(queued, submit(1))
	}

	first := startWorker()
	waitJob(t, api, slow.ID, "a quarter done", func(j Job) bool { return j.Status == StatusRunning && j.Progress >= 0.25 })
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	if j, _ := api.Get(context.Background(), slow.ID); j.Status.Finished() {
		t.Fatalf("job finished although its worker was killed: %+v", j)
	}

	startWorker()
	for _, j := range append([]Job{slow}, queued...) {
		done := waitJob(t, api, j.ID, "finished", finished)
		var res struct{ Sum, Count int }
		if err := json.Unmarshal(done.Result, &res); err != nil || done.Status != StatusCompleted || res.Sum != want || res.Count != len(numbers) {
			t.Fatalf("job %s = %+v (result %s), want completed with sum %d", j.ID, done, done.Result, want)
		}
	}
	rec, err := api.store.load(context.Background(), slow.ID)
	if err != nil || rec.takeovers != 1 {
		t.Fatalf("slow job record %+v, %v: want exactly one takeover", rec, err)
	}
}

// TestAsynqWebhooksAcrossReplicas: replica A runs the worker, replica B only
// serves the API; both keep webhooks in the same Redis store, and endpoints
// are registered through each. A job submitted through B reaches its own
// webhook and both endpoints, each exactly once, whichever process sends.
// A job cancelled through B announces batch_failed the same way.
func TestAsynqWebhooksAcrossReplicas(t *testing.T) {
	addr := redistest.Start(t)
	type delivery struct{ path, event string }
	got := make(chan delivery, 16)
	const secret = "shared-test-secret-0123"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if webhook.VerifyRequest([]byte(secret), body, r.Header, time.Now(), webhook.DefaultTolerance) != nil {
			t.Errorf("%s: bad signature", r.URL.Path)
		}
		got <- delivery{r.URL.Path, r.Header.Get(webhook.HeaderEvent)}
	}))
	defer srv.Close()

	var regs []*webhook.Registry
	replica := func(path string, runner Runner) *Asynq {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { _ = rdb.Close() })
		guard := webhook.Guard{AllowPrivate: true}
		reg := webhook.NewRegistry(webhook.RegistryOptions{Guard: guard, Store: redisstore.New(rdb, redisstore.Options{})})
		if _, _, err := reg.Register(context.Background(), srv.URL+path, webhook.Events(), secret); err != nil {
			t.Fatal(err)
		}
		regs = append(regs, reg)
		d := webhook.NewDeliverer(reg, webhook.DelivererOptions{Guard: guard, PollInterval: 10 * time.Millisecond})
		t.Cleanup(func() { _ = d.Close(context.Background()) })
		q, err := NewAsynq(asynq.RedisClientOpt{Addr: addr}, runner, AsynqOptions{
			Options: Options{Webhooks: d}, Concurrency: 1, PollInterval: 20 * time.Millisecond, WorkerTTL: workerTTL,
		})
		if err != nil {
			t.Fatal(err)
		}
		closeQueue(t, q)
		return q
	}
	g := newGateRunner()
	replica("/a", g.run)
	b := replica("/b", nil)
	for i, reg := range regs {
		if eps, err := reg.List(context.Background()); err != nil || len(eps) != 2 {
			t.Fatalf("replica %d lists %d endpoints (%v), want both replicas' registrations", i, len(eps), err)
		}
	}

	expect := func(want map[delivery]bool) {
		t.Helper()
		for len(want) > 0 {
			select {
			case d := <-got:
				if !want[d] {
					t.Fatalf("unexpected delivery %+v; still waiting for %v", d, want)
				}
				delete(want, d)
			case <-time.After(20 * time.Second):
				t.Fatalf("deliveries missing: %v", want)
			}
		}
	}
	j, err := b.Submit(context.Background(), Spec{Kind: KindDedup, WebhookURL: srv.URL + "/job", WebhookSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, b, j.ID, "running", func(j Job) bool { return j.Status == StatusRunning })
	close(g.release)
	waitJob(t, b, j.ID, "finished", finished)
	ev := webhook.EventSimilarityCompleted
	expect(map[delivery]bool{{"/job", ev}: true, {"/a", ev}: true, {"/b", ev}: true})

	// A job waiting in a paused queue is cancelled through B.
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: addr})
	defer insp.Close()
	if err := insp.PauseQueue(b.opts.queueName(KindBatch)); err != nil {
		t.Fatal(err)
	}
	j2, err := b.Submit(context.Background(), Spec{Kind: KindBatch, WebhookURL: srv.URL + "/job", WebhookSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := b.Cancel(context.Background(), j2.ID); err != nil || c.Status != StatusCancelled {
		t.Fatalf("Cancel = %+v, %v", c, err)
	}
	ev = webhook.EventBatchFailed
	expect(map[delivery]bool{{"/job", ev}: true, {"/a", ev}: true, {"/b", ev}: true})
	if _, err := insp.GetTaskInfo(b.opts.queueName(KindBatch), j2.ID); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Fatalf("cancelled pending task still in asynq: %v", err)
	}
	select {
	case d := <-got:
		t.Fatalf("a delivery arrived twice: %+v", d)
	default:
	}
}

// TestAsynqRefusesAWebhookStoreInAnotherRedis: job events are recorded in
// the jobs' transaction, which cannot span two servers.
func TestAsynqRefusesAWebhookStoreInAnotherRedis(t *testing.T) {
	jobsRedis, hooksRedis := redistest.Start(t), redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: hooksRedis})
	defer rdb.Close()
	reg := webhook.NewRegistry(webhook.RegistryOptions{Store: redisstore.New(rdb, redisstore.Options{})})
	d := webhook.NewDeliverer(reg, webhook.DelivererOptions{NoDispatch: true})
	defer d.Close(context.Background())
	if _, err := NewAsynq(asynq.RedisClientOpt{Addr: jobsRedis}, nil, AsynqOptions{Options: Options{Webhooks: d}}); err == nil {
		t.Fatal("NewAsynq accepted a webhook store in another Redis")
	}
}

func TestAsynqBacklogBound(t *testing.T) {
	addr := redistest.Start(t)
	q, err := NewAsynq(asynq.RedisClientOpt{Addr: addr}, nil, AsynqOptions{MaxPending: 2})
	if err != nil {
		t.Fatal(err)
	}
	closeQueue(t, q)
	for i := 0; i < 2; i++ {
		if _, err := q.Submit(context.Background(), Spec{Kind: KindAnalyze}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := q.Submit(context.Background(), Spec{Kind: KindAnalyze}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Submit beyond MaxPending = %v, want ErrQueueFull", err)
	}
	// Another replica reads the backlog from asynq (Inspector), not from
	// what it submitted itself.
	other, err := NewAsynq(asynq.RedisClientOpt{Addr: addr}, nil, AsynqOptions{MaxPending: 2})
	if err != nil {
		t.Fatal(err)
	}
	closeQueue(t, other)
	if _, err := other.Submit(context.Background(), Spec{Kind: KindAnalyze}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Submit through another replica = %v, want ErrQueueFull", err)
	}
	if _, err := q.Submit(context.Background(), Spec{Kind: KindBatch}); err != nil {
		t.Fatalf("other kinds have their own queue: %v", err)
	}
	if _, err := NewAsynq(asynq.RedisClientOpt{Addr: "127.0.0.1:1"}, nil, AsynqOptions{}); err == nil {
		t.Fatal("NewAsynq without a Redis succeeded")
	}
}

// TestAsynqRetryDelayCountsFromOne: asynq v0.26 calls RetryDelayFunc with n
// = the number of retries so far (0 before the first retry, see its
// processor.go), and AsynqOptions.RetryDelay is documented as 1-based: the
// adapter must add one, or the default backoff treats the first retry as
// "retry 0" and waits up to its 5-minute cap.
func TestAsynqRetryDelayCountsFromOne(t *testing.T) {
	addr := redistest.Start(t)
	var calls atomic.Int32
	seen := make(chan int, 8)
	q, err := NewAsynq(asynq.RedisClientOpt{Addr: addr}, func(ctx context.Context, kind string, in json.RawMessage, p func(float64)) (json.RawMessage, error) {
		if calls.Add(1) < 3 {
			return nil, errors.New("flaky")
		}
		return json.RawMessage(`{}`), nil
	}, AsynqOptions{
		Concurrency: 1, PollInterval: 20 * time.Millisecond, WorkerTTL: workerTTL,
		RetryDelay: func(n int) time.Duration { seen <- n; return 10 * time.Millisecond },
	})
	if err != nil {
		t.Fatal(err)
	}
	closeQueue(t, q)
	j, err := q.Submit(context.Background(), Spec{Kind: KindBatch})
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, q, j.ID, "completed", func(j Job) bool { return j.Status == StatusCompleted })
	if first, second := <-seen, <-seen; first != 1 || second != 2 {
		t.Fatalf("RetryDelay saw n = %d, %d; want 1, 2", first, second)
	}
}

// TestAsynqFirstRetryWithinBaseDelay runs the default backoff end to end on
// real time: a job that fails once is run again within the base delay (1 s)
// plus 2 s of polling slack. Before the fix it waited 62–299 s.
func TestAsynqFirstRetryWithinBaseDelay(t *testing.T) {
	addr := redistest.Start(t)
	runs := make(chan time.Time, 4)
	var calls atomic.Int32
	q, err := NewAsynq(asynq.RedisClientOpt{Addr: addr}, func(ctx context.Context, kind string, in json.RawMessage, p func(float64)) (json.RawMessage, error) {
		runs <- time.Now()
		if calls.Add(1) == 1 {
			return nil, errors.New("first run fails")
		}
		return json.RawMessage(`{}`), nil
	}, AsynqOptions{Concurrency: 1, PollInterval: 20 * time.Millisecond, WorkerTTL: workerTTL})
	if err != nil {
		t.Fatal(err)
	}
	closeQueue(t, q)
	j, err := q.Submit(context.Background(), Spec{Kind: KindBatch})
	if err != nil {
		t.Fatal(err)
	}
	first := <-runs
	var second time.Time
	select {
	case second = <-runs:
	case <-time.After(time.Minute):
		t.Fatal("no retry within a minute of the first failure")
	}
	if wait := second.Sub(first); wait > DefaultRetryBase+2*time.Second {
		t.Fatalf("first retry after %v, want within the base delay %v + 2s", wait, DefaultRetryBase)
	}
	waitJob(t, q, j.ID, "completed", func(j Job) bool { return j.Status == StatusCompleted })
}

// TestAsynqTakesOverAStalledTask: a worker takes a job's task and is
// SIGKILLed before starting the job (so no liveness key covers it). Once
// asynq's Inspector reports the task orphaned (its 30 s lease expired), a
// live worker moves the job to a new task and runs it, sooner than asynq's
// own recoverer (60–120 s after the kill).
func TestAsynqTakesOverAStalledTask(t *testing.T) {
	addr := redistest.Start(t)
	api, err := NewAsynq(asynq.RedisClientOpt{Addr: addr}, nil, AsynqOptions{})
	if err != nil {
		t.Fatal(err)
	}
	closeQueue(t, api)
	j, err := api.Submit(context.Background(), Spec{Kind: KindBatch, Input: json.RawMessage(`{"numbers":[1,2,3],"step_ms":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	killed := stallOneTask(t, addr)

	worker, err := NewAsynq(asynq.RedisClientOpt{Addr: addr}, slowSum, AsynqOptions{Concurrency: 1, PollInterval: 20 * time.Millisecond, WorkerTTL: workerTTL})
	if err != nil {
		t.Fatal(err)
	}
	closeQueue(t, worker)
	var done Job
	if !polltest.Until(2*time.Minute, func() bool {
		done, err = api.Get(context.Background(), j.ID)
		return err == nil && done.Status.Finished()
	}) {
		t.Fatalf("job never finished: %+v, %v", done, err)
	}
	rec, err := api.store.load(context.Background(), j.ID)
	if err != nil || done.Status != StatusCompleted || string(done.Result) != `{"count":3,"sum":6}` || rec.taskID != j.ID+".t1" || rec.takeovers != 1 {
		t.Fatalf("job %+v (record %+v, %v): want completed on the taken-over task %s.t1", done, rec, err, j.ID)
	}
	t.Logf("recovered %v after the kill", time.Since(killed).Round(time.Second))
}

// TestAsynqWorkerReportsBacklog: workers report the jobs waiting in all
// queues (read through asynq's Inspector) as QueueDepth.
func TestAsynqWorkerReportsBacklog(t *testing.T) {
	addr := redistest.Start(t)
	api, err := NewAsynq(asynq.RedisClientOpt{Addr: addr}, nil, AsynqOptions{})
	if err != nil {
		t.Fatal(err)
	}
	closeQueue(t, api)
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: addr})
	defer insp.Close()
	for _, k := range []string{KindBatch, KindDedup} {
		if _, err := api.Submit(context.Background(), Spec{Kind: k}); err != nil {
			t.Fatal(err)
		}
		if err := insp.PauseQueue(api.opts.queueName(k)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := api.Submit(context.Background(), Spec{Kind: KindBatch}); err != nil {
		t.Fatal(err)
	}
	obs := newCountingObserver()
	w, err := NewAsynq(asynq.RedisClientOpt{Addr: addr}, newGateRunner().run, AsynqOptions{
		Options: Options{Observer: obs}, Concurrency: 1, PollInterval: 20 * time.Millisecond, WorkerTTL: workerTTL,
	})
	if err != nil {
		t.Fatal(err)
	}
	closeQueue(t, w)
	if !polltest.Until(20*time.Second, func() bool {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return len(obs.depth) > 0 && obs.depth[len(obs.depth)-1] == 3
	}) {
		t.Fatalf("reported depths %v, want 3 jobs waiting", obs.depth)
	}
}
