package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/contentguard/contentguard/internal/polltest"
)

// newQueueFunc builds a queue with one worker slot running runner.
type newQueueFunc func(t *testing.T, runner Runner, opts Options) Queue

// testQueueContract checks behaviour every Queue must share.
func testQueueContract(t *testing.T, newQueue newQueueFunc) {
	t.Run("completes with progress and result", func(t *testing.T) {
		g := newGateRunner()
		obs := newCountingObserver()
		q := newQueue(t, g.run, Options{Observer: obs})
		j, err := q.Submit(context.Background(), Spec{Kind: KindAnalyze, Input: json.RawMessage(`{"content":"a b a"}`)})
		if err != nil {
			t.Fatal(err)
		}
		if j.Status != StatusQueued || !validID(j.ID) || j.CreatedAt.IsZero() || j.StartedAt != nil {
			t.Fatalf("submitted job = %+v", j)
		}
		running := waitJob(t, q, j.ID, "running at 50%", func(j Job) bool { return j.Status == StatusRunning && j.Progress == 0.5 })
		if running.StartedAt == nil || running.FinishedAt != nil || running.Result != nil {
			t.Errorf("running job = %+v", running)
		}
		close(g.release)
		done := waitJob(t, q, j.ID, "finished", finished)
		if done.Status != StatusCompleted || done.Progress != 1 || done.FinishedAt == nil || done.Error != "" {
			t.Fatalf("finished job = %+v", done)
		}
		var res struct {
			Kind string
			Echo struct{ Content string }
		}
		if err := json.Unmarshal(done.Result, &res); err != nil || res.Kind != KindAnalyze || res.Echo.Content != "a b a" {
			t.Fatalf("result %s (%v): runner's output not kept", done.Result, err)
		}
		if obs.submitted[KindAnalyze] != 1 {
			t.Errorf("observer saw submissions %v", obs.submitted)
		}
		if !polltest.Until(20*time.Second, func() bool { return obs.finishedCount("analyze/completed") == 1 }) {
			t.Fatalf("observer saw %d analyze/completed, want 1", obs.finishedCount("analyze/completed"))
		}
	})

	t.Run("runner error fails the job", func(t *testing.T) {
		q := newQueue(t, func(ctx context.Context, kind string, in json.RawMessage, p func(float64)) (json.RawMessage, error) {
			return nil, fmt.Errorf("%w: document 3 is empty", ErrPermanent)
		}, Options{})
		j, err := q.Submit(context.Background(), Spec{Kind: KindBatch})
		if err != nil {
			t.Fatal(err)
		}
		done := waitJob(t, q, j.ID, "finished", finished)
		if done.Status != StatusFailed || !strings.Contains(done.Error, "document 3 is empty") || done.Result != nil {
			t.Fatalf("job = %+v", done)
		}
		if _, err := q.Cancel(context.Background(), j.ID); !errors.Is(err, ErrFinished) {
			t.Fatalf("Cancel of a failed job = %v, want ErrFinished", err)
		}
	})

	t.Run("cancel running and queued jobs", func(t *testing.T) {
		g := newGateRunner()
		defer close(g.release)
		q := newQueue(t, g.run, Options{})
		first, err := q.Submit(context.Background(), Spec{Kind: KindDedup})
		if err != nil {
			t.Fatal(err)
		}
		waitJob(t, q, first.ID, "running", func(j Job) bool { return j.Status == StatusRunning })
		second, err := q.Submit(context.Background(), Spec{Kind: KindDedup})
		if err != nil {
			t.Fatal(err)
		}
		c, err := q.Cancel(context.Background(), second.ID)
		if err != nil || c.Status != StatusCancelled {
			t.Fatalf("Cancel(queued) = %+v, %v", c, err)
		}
		c, err = q.Cancel(context.Background(), first.ID)
		if err != nil {
			t.Fatalf("Cancel(running) = %v", err)
		}
		done := waitJob(t, q, first.ID, "cancelled", func(j Job) bool { return j.Status == StatusCancelled })
		if done.FinishedAt == nil || done.Result != nil {
			t.Errorf("cancelled job = %+v", done)
		}
		if again, err := q.Cancel(context.Background(), first.ID); err != nil || again.Status != StatusCancelled {
			t.Errorf("second Cancel = %+v, %v; want the cancelled job again", again, err)
		}
		if j := waitJob(t, q, second.ID, "cancelled", finished); j.Status != StatusCancelled {
			t.Errorf("queued job after cancel = %+v", j)
		}
		if n := g.startedCount(); n != 1 {
			t.Errorf("runner started %d times; the job cancelled while queued must never run", n)
		}
	})

	t.Run("bad specs and unknown ids", func(t *testing.T) {
		q := newQueue(t, newGateRunner().run, Options{})
		for _, c := range []struct {
			spec Spec
			want error
		}{
			{Spec{Kind: "mine_bitcoin"}, ErrUnknownKind},
			{Spec{Kind: ""}, ErrUnknownKind},
			{Spec{Kind: KindBatch, Input: json.RawMessage(`{"jobs":[`)}, ErrInvalidSpec},
			{Spec{Kind: KindBatch, WebhookURL: "https://hooks.example.com/", WebhookSecret: "0123456789abcdef"}, ErrWebhooksOff},
			{Spec{Kind: KindBatch, WebhookSecret: "0123456789abcdef"}, ErrInvalidSpec},
		} {
			if _, err := q.Submit(context.Background(), c.spec); !errors.Is(err, c.want) {
				t.Errorf("Submit(%+v) = %v, want %v", c.spec, err, c.want)
			}
		}
		for _, id := range []string{"job_000000000000000000000000", "nope"} {
			if _, err := q.Get(context.Background(), id); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get(%q) = %v, want ErrNotFound", id, err)
			}
			if _, err := q.Cancel(context.Background(), id); !errors.Is(err, ErrNotFound) {
				t.Errorf("Cancel(%q) = %v, want ErrNotFound", id, err)
			}
		}
	})
}
