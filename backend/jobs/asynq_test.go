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

	"github.com/contentguard/contentguard/backend/webhook"
	"github.com/contentguard/contentguard/internal/redistest"
)

// Environment of the worker child process (see TestMain).
const (
	envWorkerRedis = "CONTENTGUARD_JOBS_TEST_WORKER_REDIS"
	workerTTL      = time.Second
)

// TestMain doubles as a worker process: the crash test starts this test
// binary again with envWorkerRedis set, and kills it with SIGKILL.
func TestMain(m *testing.M) {
	if url := os.Getenv(envWorkerRedis); url != "" {
		os.Exit(runTestWorker(url))
	}
	os.Exit(m.Run())
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
	err := RunWorker(ctx, redisURL, slowSum, AsynqOptions{Concurrency: 1, WorkerTTL: workerTTL, PollInterval: 20 * time.Millisecond})
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
// serves the API; each has its own registry. A job submitted through B
// reaches its own webhook (sent by the worker) and the endpoints registered
// with both replicas (through the Redis event channel). A job cancelled
// through B announces batch_failed the same way.
func TestAsynqWebhooksAcrossReplicas(t *testing.T) {
	addr := redistest.Start(t)
	type delivery struct{ path, event string }
	got := make(chan delivery, 16)
	const secret = "shared-test-secret-0123"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !webhook.Verify([]byte(secret), body, r.Header.Get(webhook.HeaderSignature)) {
			t.Errorf("%s: bad signature", r.URL.Path)
		}
		got <- delivery{r.URL.Path, r.Header.Get(webhook.HeaderEvent)}
	}))
	defer srv.Close()

	replica := func(path string, runner Runner) *Asynq {
		guard := webhook.Guard{AllowPrivate: true}
		reg := webhook.NewRegistry(webhook.RegistryOptions{Guard: guard})
		if _, _, err := reg.Register(context.Background(), srv.URL+path, webhook.Events(), secret); err != nil {
			t.Fatal(err)
		}
		d := webhook.NewDeliverer(reg, webhook.DelivererOptions{Guard: guard})
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
	if _, err := q.Submit(context.Background(), Spec{Kind: KindBatch}); err != nil {
		t.Fatalf("other kinds have their own queue: %v", err)
	}
	if _, err := NewAsynq(asynq.RedisClientOpt{Addr: "127.0.0.1:1"}, nil, AsynqOptions{}); err == nil {
		t.Fatal("NewAsynq without a Redis succeeded")
	}
}
