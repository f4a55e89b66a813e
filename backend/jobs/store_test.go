package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/contentguard/contentguard/internal/redistest"
)

// TestStoreFencesSupersededRuns drives the job record's scripts on a real
// Redis: a run whose worker is presumed dead loses the job to a takeover,
// and nothing it does afterwards changes the job.
func TestStoreFencesSupersededRuns(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Start(t)})
	defer rdb.Close()
	ctx := context.Background()
	s := store{rdb: rdb, prefix: "t:"}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	id := newID()
	if err := s.create(ctx, Job{ID: id, Kind: KindBatch, CreatedAt: now}, "t:batch", time.Hour); err != nil {
		t.Fatal(err)
	}
	mustBool := func(ok bool, err error) bool {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !mustBool(s.start(ctx, id, id, "w1", now)) {
		t.Fatal("first run could not start")
	}
	if err := s.beat(ctx, "w1", time.Hour); err != nil {
		t.Fatal(err)
	}
	if o, err := s.orphans(ctx); err != nil || len(o) != 0 {
		t.Fatalf("orphans with a live worker = %v, %v", o, err)
	}
	rdb.Del(ctx, s.workerKey("w1")) // the worker dies
	orphans, err := s.orphans(ctx)
	if err != nil || len(orphans) != 1 || orphans[0].jobID != id || orphans[0].worker != "w1" || orphans[0].taskID != id {
		t.Fatalf("orphans = %+v, %v", orphans, err)
	}
	if !mustBool(s.claim(ctx, orphans[0], id+".t1")) {
		t.Fatal("claim failed")
	}
	if mustBool(s.claim(ctx, orphans[0], id+".t1b")) {
		t.Fatal("a second reaper claimed the same orphan")
	}
	// The old run wakes up: all its writes are refused.
	if err := s.progress(ctx, id, id, 0.9); err != nil {
		t.Fatal(err)
	}
	if mustBool(s.requeue(ctx, id, id, "old run failed")) {
		t.Fatal("old run requeued the job")
	}
	if _, ok, err := s.finish(ctx, id, id, StatusCompleted, "", now, time.Hour, nil); err != nil || ok {
		t.Fatalf("old run finished the job: %v %v", ok, err)
	}
	if mustBool(s.start(ctx, id, id, "w1", now)) {
		t.Fatal("old task restarted the job")
	}
	rec, err := s.load(ctx, id)
	if err != nil || rec.job.Status != StatusQueued || rec.taskID != id+".t1" || rec.takeovers != 1 || rec.job.Progress != 0 {
		t.Fatalf("record after takeover = %+v, %v", rec, err)
	}
	// The new task runs it to completion.
	if !mustBool(s.start(ctx, id, id+".t1", "w2", now)) {
		t.Fatal("new task could not start")
	}
	job, ok, err := s.finish(ctx, id, id+".t1", StatusCompleted, "", now.Add(time.Second), time.Minute, nil)
	if err != nil || !ok || job.Status != StatusCompleted || job.Progress != 1 || job.FinishedAt == nil {
		t.Fatalf("finish = %+v %v %v", job, ok, err)
	}
	if ttl := rdb.PTTL(ctx, s.jobKey(id)).Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("finished record TTL %v, want the retention", ttl)
	}
	if n := rdb.SCard(ctx, s.runningKey()).Val(); n != 0 {
		t.Fatalf("running set has %d members after finish", n)
	}
	if _, changed, err := s.cancel(ctx, id, now, time.Minute, nil); err != nil || changed {
		t.Fatalf("cancel of a completed job changed it: %v %v", changed, err)
	}
}
