package jobs

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/contentguard/contentguard/internal/polltest"
	"github.com/contentguard/contentguard/internal/redistest"
)

// BenchmarkRecoveryAfterKill measures, with the default settings, how long
// after a worker's SIGKILL its job runs again somewhere else (one sample
// per case; run with -benchtime 1x):
//
//	running:           the job had started; our takeover (WorkerTTL 15 s)
//	stalled:           the task was taken but the job not started; our
//	                   takeover of the task asynq's Inspector reports orphaned
//	stalled-asynq-only: the same, recovered by asynq's own lease recoverer
//	                   (what asynq alone would do; not configurable in v0.26)
//
//	go test -run '^$' -bench RecoveryAfterKill -benchtime 1x -timeout 20m ./backend/jobs/
func BenchmarkRecoveryAfterKill(b *testing.B) {
	b.Run("running", func(b *testing.B) {
		for range b.N {
			addr := redistest.Start(b)
			api := newBenchQueue(b, addr, nil)
			j, err := api.Submit(context.Background(), Spec{Kind: KindBatch, Input: json.RawMessage(`{"numbers":[1,2,3,4,5,6,7,8,9,10],"step_ms":100}`)})
			if err != nil {
				b.Fatal(err)
			}
			w := exec.Command(os.Args[0], "-test.run=^$")
			w.Env = append(os.Environ(), envWorkerRedis+"=redis://"+addr, envWorkerTTL+"=15s")
			if err := w.Start(); err != nil {
				b.Fatal(err)
			}
			if !polltest.Until(time.Minute, func() bool {
				got, err := api.Get(context.Background(), j.ID)
				return err == nil && got.Status == StatusRunning && got.Progress > 0
			}) {
				b.Fatal("the job never started")
			}
			killed := time.Now()
			_ = w.Process.Signal(syscall.SIGKILL)
			_ = w.Wait()
			newBenchQueue(b, addr, slowSum)
			reportRecovery(b, api, j.ID, killed)
		}
	})
	b.Run("stalled", func(b *testing.B) {
		for range b.N {
			addr := redistest.Start(b)
			api := newBenchQueue(b, addr, nil)
			j, err := api.Submit(context.Background(), Spec{Kind: KindBatch, Input: json.RawMessage(`{"numbers":[1],"step_ms":1}`)})
			if err != nil {
				b.Fatal(err)
			}
			killed := stallOneTask(b, addr)
			newBenchQueue(b, addr, slowSum)
			reportRecovery(b, api, j.ID, killed)
		}
	})
	b.Run("stalled-asynq-only", func(b *testing.B) {
		for range b.N {
			addr := redistest.Start(b)
			api := newBenchQueue(b, addr, nil)
			if _, err := api.Submit(context.Background(), Spec{Kind: KindBatch}); err != nil {
				b.Fatal(err)
			}
			killed := stallOneTask(b, addr)
			ran := make(chan time.Time, 1)
			srv := asynq.NewServer(asynq.RedisClientOpt{Addr: addr}, asynq.Config{
				Concurrency: 1, Queues: map[string]int{"contentguard:" + KindBatch: 1}, LogLevel: asynq.ErrorLevel,
				TaskCheckInterval: 200 * time.Millisecond, DelayedTaskCheckInterval: 200 * time.Millisecond,
				RetryDelayFunc: func(int, error, *asynq.Task) time.Duration { return 0 },
			})
			if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
				select {
				case ran <- time.Now():
				default:
				}
				return nil
			})); err != nil {
				b.Fatal(err)
			}
			select {
			case at := <-ran:
				b.ReportMetric(at.Sub(killed).Seconds(), "s-to-recover")
			case <-time.After(5 * time.Minute):
				b.Fatal("asynq never recovered the task")
			}
			srv.Shutdown()
		}
	})
}

func newBenchQueue(b *testing.B, addr string, runner Runner) *Asynq {
	q, err := NewAsynq(asynq.RedisClientOpt{Addr: addr}, runner, AsynqOptions{Concurrency: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = q.Close(context.Background()) })
	return q
}

// reportRecovery waits for the job to complete and reports the seconds
// from the kill.
func reportRecovery(b *testing.B, q Queue, id string, killed time.Time) {
	b.Helper()
	if !polltest.Until(5*time.Minute, func() bool {
		got, err := q.Get(context.Background(), id)
		return err == nil && got.Status == StatusCompleted
	}) {
		b.Fatal("the job never completed")
	}
	b.ReportMetric(time.Since(killed).Seconds(), "s-to-recover")
}
