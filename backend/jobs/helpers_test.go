package jobs

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/contentguard/contentguard/backend/internal/envelopetest"
	"github.com/contentguard/contentguard/internal/polltest"
)

type testResponder = envelopetest.Responder

// countingObserver records metric calls.
type countingObserver struct {
	mu        sync.Mutex
	submitted map[string]int
	finished  map[string]int // kind/status
	depth     []int
}

func newCountingObserver() *countingObserver {
	return &countingObserver{submitted: map[string]int{}, finished: map[string]int{}}
}

func (o *countingObserver) JobSubmitted(kind string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.submitted[kind]++
}

func (o *countingObserver) JobFinished(kind string, status Status, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if d < 0 {
		panic("negative duration")
	}
	o.finished[kind+"/"+string(status)]++
}

func (o *countingObserver) QueueDepth(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.depth = append(o.depth, n)
}

func (o *countingObserver) finishedCount(key string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.finished[key]
}

// waitJob polls q until the job satisfies cond (a hang guard, not a timing
// assertion).
func waitJob(t *testing.T, q Queue, id string, what string, cond func(Job) bool) Job {
	t.Helper()
	var j Job
	var err error
	if !polltest.Until(20*time.Second, func() bool {
		j, err = q.Get(context.Background(), id)
		return err == nil && cond(j)
	}) {
		t.Fatalf("gave up waiting for job %s to be %s; last %+v, %v", id, what, j, err)
	}
	return j
}

func finished(j Job) bool { return j.Status.Finished() }

// gateRunner runs jobs that report progress 0.5 and then wait for release
// (or their context). It echoes the input as {"echo": input}.
type gateRunner struct {
	release chan struct{}
	mu      sync.Mutex
	started int
}

func newGateRunner() *gateRunner { return &gateRunner{release: make(chan struct{})} }

func (g *gateRunner) run(ctx context.Context, kind string, input json.RawMessage, progress func(float64)) (json.RawMessage, error) {
	g.mu.Lock()
	g.started++
	g.mu.Unlock()
	progress(0.5)
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return json.Marshal(map[string]any{"kind": kind, "echo": input})
}

func (g *gateRunner) startedCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.started
}

func closeQueue(t *testing.T, q Queue) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := q.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}
