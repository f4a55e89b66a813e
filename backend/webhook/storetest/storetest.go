// Package storetest is the contract every webhook.Store passes: the memory
// store and the Redis store run the same tests, so they cannot drift.
// Times are passed explicitly, so scheduling is checked without waiting.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/contentguard/contentguard/backend/webhook"
)

// The dead-letter bounds the factory must give the store: per owner and in
// total.
const (
	MaxDeadLetters      = 3
	MaxDeadLettersTotal = 5
)

// Factory returns an empty store with the dead-letter bounds above.
type Factory func(t *testing.T) webhook.Store

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

const lease = 30 * time.Second

// delivery builds a pending delivery due at due.
func delivery(id, endpointID, jobID string, due time.Time) webhook.Delivery {
	return webhook.Delivery{
		ID: id, EventID: "evt_" + id, Event: webhook.EventBatchCompleted, EndpointID: endpointID, JobID: jobID,
		URL: "https://hooks.example.com/" + id, Secret: "job-secret-0123456789", Body: []byte(`{"id":"` + id + `"}`),
		Status: webhook.StatusPending, CreatedAt: due, NextAttemptAt: &due,
	}
}

func endpoint(id string, at time.Time) webhook.EndpointRecord {
	return webhook.EndpointRecord{
		Endpoint: webhook.Endpoint{ID: id, URL: "https://ep.example.com/" + id, Events: []string{webhook.EventBatchCompleted, webhook.EventBatchFailed}, CreatedAt: at},
		Secret:   "endpoint-secret-" + id,
	}
}

// Run runs the whole contract.
func Run(t *testing.T, newStore Factory) {
	t.Run("Endpoints", func(t *testing.T) { testEndpoints(t, newStore(t)) })
	t.Run("ClaimInDueOrderWithLease", func(t *testing.T) { testClaim(t, newStore(t)) })
	t.Run("EnqueueIdempotentAndBounded", func(t *testing.T) { testEnqueue(t, newStore(t)) })
	t.Run("SettleOutcomes", func(t *testing.T) { testSettle(t, newStore(t)) })
	t.Run("StaleLeaseLoses", func(t *testing.T) { testLease(t, newStore(t)) })
	t.Run("DeadLettersAndRedelivery", func(t *testing.T) { testDeadLetters(t, newStore(t)) })
	t.Run("DeletedEndpoint", func(t *testing.T) { testDeletedEndpoint(t, newStore(t)) })
	t.Run("DeadLettersBoundedInTotal", func(t *testing.T) { testDeadLetterTotal(t, newStore(t)) })
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func enqueue(t *testing.T, s webhook.Store, limit int, ds ...webhook.Delivery) webhook.EnqueueResult {
	t.Helper()
	res, err := s.Enqueue(context.Background(), ds, limit)
	must(t, err)
	return res
}

func claim(t *testing.T, s webhook.Store, now time.Time, max int) []webhook.Delivery {
	t.Helper()
	ds, dropped, err := s.Claim(context.Background(), now, max, lease)
	must(t, err)
	if dropped != 0 {
		t.Fatalf("Claim dropped %d", dropped)
	}
	return ds
}

func ids(ds []webhook.Delivery) string {
	out := ""
	for _, d := range ds {
		out += d.ID + " "
	}
	return out
}

func queueStats(t *testing.T, s webhook.Store) webhook.QueueStats {
	t.Helper()
	st, err := s.QueueStats(context.Background())
	must(t, err)
	return st
}

func stats(t *testing.T, s webhook.Store) webhook.Stats {
	t.Helper()
	st, err := s.Stats(context.Background())
	must(t, err)
	return st
}

func testEndpoints(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	must(t, s.AddEndpoint(ctx, endpoint("wh_b", t0.Add(time.Second)), 2))
	must(t, s.AddEndpoint(ctx, endpoint("wh_a", t0), 2))
	if err := s.AddEndpoint(ctx, endpoint("wh_c", t0), 2); !errors.Is(err, webhook.ErrRegistryFull) {
		t.Fatalf("third endpoint with max 2: %v, want ErrRegistryFull", err)
	}
	eps, err := s.Endpoints(ctx)
	must(t, err)
	if len(eps) != 2 || eps[0].ID != "wh_a" || eps[1].ID != "wh_b" {
		t.Fatalf("Endpoints = %+v, want wh_a then wh_b (oldest first)", eps)
	}
	want := endpoint("wh_a", t0)
	if got := eps[0]; got.URL != want.URL || got.Secret != want.Secret || fmt.Sprint(got.Events) != fmt.Sprint(want.Events) || !got.CreatedAt.Equal(t0) {
		t.Fatalf("endpoint read back as %+v, want %+v", got, want)
	}
	must(t, s.DeleteEndpoint(ctx, "wh_a"))
	if err := s.DeleteEndpoint(ctx, "wh_a"); !errors.Is(err, webhook.ErrNotFound) {
		t.Fatalf("deleting twice: %v, want ErrNotFound", err)
	}
	if st := stats(t, s); len(st.Endpoints) != 1 || st.Endpoints[0].ID != "wh_b" || st.Endpoints[0].URL != "https://ep.example.com/wh_b" {
		t.Fatalf("Stats endpoints = %+v", st.Endpoints)
	}
}

func testClaim(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	must(t, s.AddEndpoint(ctx, endpoint("wh_1", t0), 10))
	enqueue(t, s, 100,
		delivery("dlv_c", "", "job_1", t0.Add(2*time.Second)),
		delivery("dlv_a", "wh_1", "", t0),
		delivery("dlv_b", "", "job_2", t0.Add(time.Second)))
	if st := queueStats(t, s); st.Pending != 3 || !st.OldestDue.Equal(t0) {
		t.Fatalf("QueueStats = %+v, want 3 pending, oldest due %v", st, t0)
	}
	if got := claim(t, s, t0.Add(-time.Millisecond), 10); len(got) != 0 {
		t.Fatalf("claimed %s before anything was due", ids(got))
	}
	got := claim(t, s, t0.Add(time.Second), 10)
	if ids(got) != "dlv_a dlv_b " {
		t.Fatalf("claimed %s, want dlv_a dlv_b (due, most overdue first)", ids(got))
	}
	a := got[0]
	if a.Attempts != 1 || a.Lease == "" || a.URL != "https://ep.example.com/wh_1" || a.Secret != "endpoint-secret-wh_1" || string(a.Body) != `{"id":"dlv_a"}` {
		t.Fatalf("claimed endpoint delivery %+v: want attempt 1, a lease, the endpoint's URL and secret, the body", a)
	}
	if b := got[1]; b.URL != "https://hooks.example.com/dlv_b" || b.Secret != "job-secret-0123456789" || b.JobID != "job_2" {
		t.Fatalf("claimed job delivery %+v: want its own URL and secret", b)
	}
	if more := claim(t, s, t0.Add(2*time.Second), 10); ids(more) != "dlv_c " {
		t.Fatalf("claimed %s while dlv_a and dlv_b are leased, want only dlv_c", ids(more))
	}
	if st := queueStats(t, s); st.Pending != 3 {
		t.Fatalf("claimed deliveries are still pending: %+v", st)
	}
	// The claimer died: after the lease they are claimed again, with
	// another attempt counted.
	again := claim(t, s, t0.Add(time.Second+lease), 1)
	if ids(again) != "dlv_a " || again[0].Attempts != 2 || again[0].Lease == a.Lease {
		t.Fatalf("after the lease: %+v, want dlv_a on attempt 2 under a new lease", again)
	}
}

func testEnqueue(t *testing.T, s webhook.Store) {
	d1, d2, d3 := delivery("dlv_1", "", "job_1", t0), delivery("dlv_2", "", "job_1", t0), delivery("dlv_3", "", "job_1", t0)
	if res := enqueue(t, s, 2, d1, d1); res != (webhook.EnqueueResult{Added: 1, Existing: 1}) {
		t.Fatalf("same ID twice: %+v, want one added, one existing", res)
	}
	if res := enqueue(t, s, 2, d2, d3); res != (webhook.EnqueueResult{Added: 1, Dropped: 1}) {
		t.Fatalf("beyond the limit: %+v, want one added, one dropped", res)
	}
	if st := stats(t, s); st.Totals.Dropped != 1 {
		t.Fatalf("totals %+v, want 1 dropped", st.Totals)
	}
	if st := queueStats(t, s); st.Pending != 2 {
		t.Fatalf("QueueStats %+v, want 2 pending", st)
	}
}

func testSettle(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	must(t, s.AddEndpoint(ctx, endpoint("wh_1", t0), 10))
	enqueue(t, s, 100, delivery("dlv_ok", "wh_1", "", t0), delivery("dlv_retry", "wh_1", "", t0))
	got := claim(t, s, t0, 10)
	at := t0.Add(100 * time.Millisecond)
	must(t, s.Settle(ctx, got[0], webhook.Outcome{At: at, Status: 200, Delivered: true}))
	retryAt := t0.Add(7 * time.Second)
	must(t, s.Settle(ctx, got[1], webhook.Outcome{At: at, Status: 503, Error: "HTTP 503", RetryAt: retryAt}))
	if st := queueStats(t, s); st.Pending != 1 || !st.OldestDue.Equal(retryAt) {
		t.Fatalf("QueueStats %+v, want the retry alone pending, due %v", st, retryAt)
	}
	if early := claim(t, s, retryAt.Add(-time.Millisecond), 10); len(early) != 0 {
		t.Fatalf("claimed %s before its retry time", ids(early))
	}
	retry := claim(t, s, retryAt, 10)
	if len(retry) != 1 || retry[0].ID != "dlv_retry" || retry[0].Attempts != 2 || retry[0].LastStatus != 503 || retry[0].LastError != "HTTP 503" {
		t.Fatalf("retry claimed as %+v, want attempt 2 with the last failure", retry)
	}
	if err := s.Settle(ctx, got[0], webhook.Outcome{At: at, Delivered: true}); !errors.Is(err, webhook.ErrLeaseLost) {
		t.Fatalf("settling a delivered delivery again: %v, want ErrLeaseLost", err)
	}
	st := stats(t, s)
	if st.Totals != (webhook.Totals{Attempts: 2, Succeeded: 1}) {
		t.Fatalf("totals %+v, want 2 attempts, 1 succeeded", st.Totals)
	}
	ep := st.Endpoints[0]
	if ep.Attempts != 2 || ep.Succeeded != 1 || ep.Failed != 0 || ep.LastStatus != 503 || ep.LastError != "HTTP 503" || ep.LastAttemptAt == nil || !ep.LastAttemptAt.Equal(at) {
		t.Fatalf("endpoint stats %+v", ep)
	}
}

func testLease(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	enqueue(t, s, 100, delivery("dlv_1", "", "job_1", t0))
	first := claim(t, s, t0, 1)
	second := claim(t, s, t0.Add(lease), 1) // the first claimer was presumed dead
	if len(first) != 1 || len(second) != 1 {
		t.Fatalf("claims %d, %d", len(first), len(second))
	}
	if err := s.Settle(ctx, first[0], webhook.Outcome{At: t0, Delivered: true}); !errors.Is(err, webhook.ErrLeaseLost) {
		t.Fatalf("late outcome of the first claim: %v, want ErrLeaseLost", err)
	}
	must(t, s.Settle(ctx, second[0], webhook.Outcome{At: t0, Status: 204, Delivered: true}))
	if st := queueStats(t, s); st.Pending != 0 {
		t.Fatalf("QueueStats %+v after delivery", st)
	}
}

func testDeadLetters(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	must(t, s.AddEndpoint(ctx, endpoint("wh_1", t0), 10))
	var all []webhook.Delivery
	for i := range MaxDeadLetters + 1 {
		all = append(all, delivery(fmt.Sprintf("dlv_%d", i), "wh_1", "", t0.Add(time.Duration(i)*time.Second)))
	}
	all = append(all, delivery("dlv_job", "", "job_1", t0))
	enqueue(t, s, 100, all...)
	for i, d := range claim(t, s, t0.Add(time.Hour), 100) {
		must(t, s.Settle(ctx, d, webhook.Outcome{At: t0.Add(time.Duration(i) * time.Minute), Status: 400, Error: "HTTP 400"}))
	}
	dead, err := s.DeadLetters(ctx, "wh_1", 100)
	must(t, err)
	// Newest first, the oldest beyond MaxDeadLetters forgotten.
	if ids(dead) != "dlv_3 dlv_2 dlv_1 " {
		t.Fatalf("dead letters of wh_1: %s, want dlv_3 dlv_2 dlv_1", ids(dead))
	}
	if d := dead[0]; d.Status != webhook.StatusFailed || d.Attempts != 1 || d.LastStatus != 400 || d.NextAttemptAt != nil || string(d.Body) != `{"id":"dlv_3"}` || d.Secret != "" {
		t.Fatalf("dead letter %+v", d)
	}
	if page, _ := s.DeadLetters(ctx, "wh_1", 2); ids(page) != "dlv_3 dlv_2 " {
		t.Fatalf("limit 2: %s", ids(page))
	}
	if job, _ := s.DeadLetters(ctx, "job_1", 10); ids(job) != "dlv_job " {
		t.Fatalf("dead letters of job_1: %s", ids(job))
	}
	if st := queueStats(t, s); st.Pending != 0 || st.DeadLetters != MaxDeadLetters+1 {
		t.Fatalf("QueueStats %+v, want 0 pending, %d dead letters", st, MaxDeadLetters+1)
	}
	if st := stats(t, s); st.Totals.Failed != int64(len(all)) || st.Endpoints[0].Failed != MaxDeadLetters+1 {
		t.Fatalf("stats %+v", st)
	}

	if _, err := s.Redeliver(ctx, "job_1", "dlv_2", t0, 100); !errors.Is(err, webhook.ErrDeliveryNotFound) {
		t.Fatalf("redelivering another owner's dead letter: %v", err)
	}
	if _, err := s.Redeliver(ctx, "wh_1", "dlv_nope", t0, 100); !errors.Is(err, webhook.ErrDeliveryNotFound) {
		t.Fatalf("redelivering an unknown id: %v", err)
	}
	enqueue(t, s, 100, delivery("dlv_busy", "", "job_9", t0.Add(48*time.Hour)))
	if _, err := s.Redeliver(ctx, "wh_1", "dlv_2", t0, 1); !errors.Is(err, webhook.ErrQueueFull) {
		t.Fatalf("redelivering into a full queue: %v", err)
	}
	now := t0.Add(2 * time.Hour)
	re, err := s.Redeliver(ctx, "wh_1", "dlv_2", now, 100)
	must(t, err)
	if re.ID != "dlv_2" || re.Status != webhook.StatusPending || re.Attempts != 0 || re.NextAttemptAt == nil || !re.NextAttemptAt.Equal(now) {
		t.Fatalf("redelivered %+v", re)
	}
	if dead, _ := s.DeadLetters(ctx, "wh_1", 100); ids(dead) != "dlv_3 dlv_1 " {
		t.Fatalf("dead letters after redelivery: %s", ids(dead))
	}
	got := claim(t, s, now, 10)
	if ids(got) != "dlv_2 " || got[0].Attempts != 1 || string(got[0].Body) != `{"id":"dlv_2"}` {
		t.Fatalf("claimed after redelivery: %+v", got)
	}
	if _, err := s.Redeliver(ctx, "wh_1", "dlv_2", now, 100); !errors.Is(err, webhook.ErrDeliveryNotFound) {
		t.Fatalf("redelivering a pending delivery: %v", err)
	}
}

func testDeletedEndpoint(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	must(t, s.AddEndpoint(ctx, endpoint("wh_gone", t0), 10))
	enqueue(t, s, 100, delivery("dlv_dead", "wh_gone", "", t0))
	d := claim(t, s, t0, 1)
	must(t, s.Settle(ctx, d[0], webhook.Outcome{At: t0, Status: 410, Error: "HTTP 410"}))
	enqueue(t, s, 100, delivery("dlv_pending", "wh_gone", "", t0), delivery("dlv_job", "", "job_1", t0))
	must(t, s.DeleteEndpoint(ctx, "wh_gone"))
	got, dropped, err := s.Claim(ctx, t0, 10, lease)
	must(t, err)
	if ids(got) != "dlv_job " || dropped != 1 {
		t.Fatalf("claimed %s and dropped %d, want dlv_job and 1 dropped", ids(got), dropped)
	}
	if dead, _ := s.DeadLetters(ctx, "wh_gone", 10); len(dead) != 0 {
		t.Fatalf("dead letters of a deleted endpoint: %s", ids(dead))
	}
	if st := queueStats(t, s); st.Pending != 1 || st.DeadLetters != 0 {
		t.Fatalf("QueueStats %+v, want only dlv_job pending", st)
	}
	if st := stats(t, s); st.Totals.Dropped != 1 {
		t.Fatalf("totals %+v, want the deleted endpoint's delivery dropped", st.Totals)
	}
}

// testDeadLetterTotal: one dead letter for each of many jobs; the oldest
// are forgotten beyond MaxDeadLettersTotal.
func testDeadLetterTotal(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	n := MaxDeadLettersTotal + 2
	for i := range n {
		enqueue(t, s, 100, delivery(fmt.Sprintf("dlv_%d", i), "", fmt.Sprintf("job_%d", i), t0))
	}
	for i, d := range claim(t, s, t0, 100) {
		must(t, s.Settle(ctx, d, webhook.Outcome{At: t0.Add(time.Duration(i) * time.Second), Status: 400, Error: "HTTP 400"}))
	}
	if st := queueStats(t, s); st.DeadLetters != MaxDeadLettersTotal {
		t.Fatalf("QueueStats %+v, want %d dead letters", st, MaxDeadLettersTotal)
	}
	for i := range n {
		dead, err := s.DeadLetters(ctx, fmt.Sprintf("job_%d", i), 10)
		must(t, err)
		if kept := i >= n-MaxDeadLettersTotal; kept != (len(dead) == 1) {
			t.Fatalf("job_%d has %d dead letters; the %d oldest must be forgotten", i, len(dead), n-MaxDeadLettersTotal)
		}
	}
	if _, err := s.Redeliver(ctx, "job_0", "dlv_0", t0, 100); !errors.Is(err, webhook.ErrDeliveryNotFound) {
		t.Fatalf("redelivering a forgotten dead letter: %v", err)
	}
}
