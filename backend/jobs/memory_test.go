package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/contentguard/contentguard/internal/clocktest"
)

func newMemoryQueue(t *testing.T, runner Runner, opts Options) Queue {
	q, err := NewMemory(runner, MemoryOptions{Options: opts, Workers: 1, QueueSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	closeQueue(t, q)
	return q
}

func TestMemoryContract(t *testing.T) { testQueueContract(t, newMemoryQueue) }

func TestMemoryQueueFull(t *testing.T) {
	g := newGateRunner()
	defer close(g.release)
	obs := newCountingObserver()
	q, err := NewMemory(g.run, MemoryOptions{Options: Options{Observer: obs}, Workers: 1, QueueSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	closeQueue(t, q)
	first, _ := q.Submit(context.Background(), Spec{Kind: KindBatch})
	waitJob(t, q, first.ID, "running", func(j Job) bool { return j.Status == StatusRunning })
	for i := 0; i < 2; i++ {
		if _, err := q.Submit(context.Background(), Spec{Kind: KindBatch}); err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
	}
	if _, err := q.Submit(context.Background(), Spec{Kind: KindBatch}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Submit beyond QueueSize = %v, want ErrQueueFull", err)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if last := obs.depth[len(obs.depth)-1]; last != 2 {
		t.Errorf("queue depth reported %v, want 2 last", obs.depth)
	}
}

func TestMemoryRetentionEvictsFinishedJobs(t *testing.T) {
	clk := clocktest.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	run := func(ctx context.Context, kind string, in json.RawMessage, p func(float64)) (json.RawMessage, error) {
		return json.RawMessage(`{"ok":true}`), nil
	}
	q, err := NewMemory(run, MemoryOptions{Options: Options{Retention: time.Minute, Now: clk.Now}, Workers: 1, QueueSize: 2, MaxJobs: 3})
	if err != nil {
		t.Fatal(err)
	}
	closeQueue(t, q)
	var ids []string
	for i := 0; i < 3; i++ {
		j, err := q.Submit(context.Background(), Spec{Kind: KindAnalyze})
		if err != nil {
			t.Fatal(err)
		}
		waitJob(t, q, j.ID, "finished", finished)
		ids = append(ids, j.ID)
	}
	// MaxJobs bounds the store: retained jobs count until they expire.
	if _, err := q.Submit(context.Background(), Spec{Kind: KindAnalyze}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Submit with a full store = %v, want ErrQueueFull", err)
	}
	clk.Advance(59 * time.Second)
	if _, err := q.Get(context.Background(), ids[0]); err != nil {
		t.Fatalf("job evicted before its retention: %v", err)
	}
	clk.Advance(2 * time.Second)
	for _, id := range ids {
		if _, err := q.Get(context.Background(), id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(%s) after retention = %v, want ErrNotFound", id, err)
		}
	}
	if _, err := q.Submit(context.Background(), Spec{Kind: KindAnalyze}); err != nil {
		t.Fatalf("Submit after eviction = %v", err)
	}
}

func TestMemoryRunnerPanicFailsJob(t *testing.T) {
	q := newMemoryQueue(t, func(ctx context.Context, kind string, in json.RawMessage, p func(float64)) (json.RawMessage, error) {
		p(2) // out of range: clamped, not trusted
		panic("index out of range")
	}, Options{})
	j, _ := q.Submit(context.Background(), Spec{Kind: KindBatch})
	done := waitJob(t, q, j.ID, "finished", finished)
	if done.Status != StatusFailed || !strings.Contains(done.Error, "panicked") {
		t.Fatalf("job = %+v", done)
	}
}

func TestMemoryTimeout(t *testing.T) {
	g := newGateRunner()
	defer close(g.release)
	q := newMemoryQueue(t, g.run, Options{JobTimeout: 20 * time.Millisecond})
	j, _ := q.Submit(context.Background(), Spec{Kind: KindBatch})
	done := waitJob(t, q, j.ID, "finished", finished)
	if done.Status != StatusFailed || !strings.Contains(done.Error, "timed out") {
		t.Fatalf("job = %+v", done)
	}
}

func TestMemoryCloseCancelsRunningJobs(t *testing.T) {
	g := newGateRunner()
	defer close(g.release)
	q, _ := NewMemory(g.run, MemoryOptions{Workers: 1})
	j, _ := q.Submit(context.Background(), Spec{Kind: KindBatch})
	waitJob(t, q, j.ID, "running", func(j Job) bool { return j.Status == StatusRunning })
	if err := q.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := q.Get(context.Background(), j.ID); got.Status != StatusCancelled {
		t.Fatalf("job after Close = %+v", got)
	}
	if _, err := q.Submit(context.Background(), Spec{Kind: KindBatch}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Submit after Close = %v", err)
	}
}

func TestMemoryOptionsChecked(t *testing.T) {
	if _, err := NewMemory(nil, MemoryOptions{}); err == nil {
		t.Error("nil runner accepted")
	}
	if _, err := NewMemory(newGateRunner().run, MemoryOptions{QueueSize: 10, MaxJobs: 5}); err == nil {
		t.Error("MaxJobs below QueueSize accepted")
	}
}
