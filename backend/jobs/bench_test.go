package jobs

import (
	"context"
	"encoding/json"
	"runtime"
	"testing"
)

// BenchmarkMemorySubmitGet measures the queue's own overhead per job:
// submit, run a trivial runner, poll until it is completed.
func BenchmarkMemorySubmitGet(b *testing.B) {
	q, err := NewMemory(func(ctx context.Context, kind string, in json.RawMessage, p func(float64)) (json.RawMessage, error) {
		return in, nil
	}, MemoryOptions{Workers: 2, QueueSize: 1024, MaxJobs: 1 << 22})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close(context.Background())
	input := json.RawMessage(`{"content":"the quick brown fox"}`)
	b.ReportAllocs()
	for b.Loop() {
		j, err := q.Submit(context.Background(), Spec{Kind: KindAnalyze, Input: input})
		if err != nil {
			b.Fatal(err)
		}
		for {
			got, err := q.Get(context.Background(), j.ID)
			if err != nil {
				b.Fatal(err)
			}
			if got.Status.Finished() {
				break
			}
			runtime.Gosched()
		}
	}
}
