package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/contentguard/contentguard/backend/webhook"
	"github.com/contentguard/contentguard/backend/webhook/redisstore"
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

// TestFinishAndDeliveriesAreOneStep: a job's final state and its webhook
// deliveries are written in one transaction. A cancel that lands between
// the worker reading the record and committing (here: while the worker
// prepares the deliveries) makes the whole commit fail and be decided
// again: the job ends cancelled with only the cancel's deliveries, never
// completed, and never with the completion's deliveries.
func TestFinishAndDeliveriesAreOneStep(t *testing.T) {
	addr := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := context.Background()
	reg := webhook.NewRegistry(webhook.RegistryOptions{Guard: webhook.Guard{AllowPrivate: true}, Store: redisstore.New(rdb, redisstore.Options{})})
	if _, _, err := reg.Register(ctx, "http://127.0.0.1:9/hook", webhook.Events(), ""); err != nil {
		t.Fatal(err)
	}
	d := webhook.NewDeliverer(reg, webhook.DelivererOptions{Guard: webhook.Guard{AllowPrivate: true}, NoDispatch: true})
	defer d.Close(ctx)
	opts := AsynqOptions{Options: Options{Webhooks: d}}.withDefaults()
	s := store{rdb: rdb, prefix: "t:"}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pending := func() int {
		st, err := d.QueueStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.Pending
	}

	// Completed: the job and its two deliveries (own URL, endpoint).
	done := newID()
	if err := s.create(ctx, Job{ID: done, Kind: KindBatch, CreatedAt: now, WebhookURL: "http://127.0.0.1:9/own"}, "t:batch", time.Hour); err != nil {
		t.Fatal(err)
	}
	job, ok, err := s.finish(ctx, done, done, StatusCompleted, "", now, time.Hour, opts.recorder(nil, "own-secret-0123456789"))
	if err != nil || !ok || job.Status != StatusCompleted {
		t.Fatalf("finish = %+v %v %v", job, ok, err)
	}
	if n := pending(); n != 2 {
		t.Fatalf("%d deliveries recorded with the completion, want 2", n)
	}

	// A cancel lands while the worker prepares its completion.
	raced := newID()
	if err := s.create(ctx, Job{ID: raced, Kind: KindBatch, CreatedAt: now}, "t:batch", time.Hour); err != nil {
		t.Fatal(err)
	}
	cancelled := false
	complete := opts.recorder(nil, "")
	interfering := func(ctx context.Context, tx redis.Pipeliner, job Job) (func(), error) {
		if !cancelled {
			cancelled = true
			if _, changed, err := s.cancel(ctx, raced, now, time.Hour, opts.recorder(nil, "")); err != nil || !changed {
				t.Fatalf("cancel = %v %v", changed, err)
			}
		}
		return complete(ctx, tx, job)
	}
	job, ok, err = s.finish(ctx, raced, raced, StatusCompleted, "", now, time.Hour, interfering)
	if err != nil || ok || job.Status != StatusCancelled {
		t.Fatalf("finish after a concurrent cancel = %+v %v %v; want not applied, job cancelled", job, ok, err)
	}
	if n := pending(); n != 3 {
		t.Fatalf("%d deliveries pending, want 3: the completed job's two and the cancel's one (the endpoint)", n)
	}
	ds, _, err := d.Store().Claim(ctx, now.Add(time.Hour), 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	events := map[string]int{}
	for _, del := range ds {
		events[del.Event]++
	}
	if events[webhook.EventBatchCompleted] != 2 || events[webhook.EventBatchFailed] != 1 {
		t.Fatalf("recorded events %v: want 2 batch_completed (first job) and 1 batch_failed (the cancel)", events)
	}
}
