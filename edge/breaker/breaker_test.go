package breaker_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/contentguard/contentguard/edge/breaker"
	"github.com/contentguard/contentguard/internal/clocktest"
)

// newClock returns a fake clock for the breaker's Now.
func newClock() *clocktest.Clock {
	return clocktest.New(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
}

// transitions records OnStateChange calls as "name:from>to".
type transitions struct {
	mu  sync.Mutex
	got []string
}

func (tr *transitions) record(name string, from, to breaker.State) {
	tr.mu.Lock()
	tr.got = append(tr.got, fmt.Sprintf("%s:%s>%s", name, from, to))
	tr.mu.Unlock()
}

func (tr *transitions) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return fmt.Sprint(tr.got)
}

// request runs one request through b with the given outcome and reports
// whether it was admitted.
func request(b *breaker.Breaker, success bool) bool {
	t, ok, _ := b.Allow()
	if ok {
		b.Done(t, success)
	}
	return ok
}

func TestStateString(t *testing.T) {
	if breaker.Closed.String() != "closed" || breaker.HalfOpen.String() != "half-open" ||
		breaker.Open.String() != "open" || breaker.State(7).String() != "unknown" {
		t.Fatal("State.String")
	}
	if breaker.Closed != 0 || breaker.HalfOpen != 1 || breaker.Open != 2 {
		t.Fatal("metric values changed")
	}
}

func TestConsecutiveFailuresTrip(t *testing.T) {
	c := newClock()
	var tr transitions
	b := breaker.New("up", breaker.Settings{ConsecutiveFailures: 3, OpenFor: time.Minute, Now: c.Now, OnStateChange: tr.record})
	// Two failures, a success, two failures: never three in a row.
	for _, success := range []bool{false, false, true, false, false} {
		if !request(b, success) {
			t.Fatal("refused while closed")
		}
	}
	if b.State() != breaker.Closed {
		t.Fatalf("tripped without 3 failures in a row")
	}
	if st := b.Status(); st.ConsecutiveFailures != 2 || st.Requests != 5 || st.Failures != 4 {
		t.Fatalf("status %+v", st)
	}
	request(b, false)
	if b.State() != breaker.Open {
		t.Fatalf("state %s after 3 failures in a row", b.State())
	}
	c.Advance(20 * time.Second)
	_, ok, retry := b.Allow()
	if ok || retry != 40*time.Second {
		t.Fatalf("open: ok=%v retry=%s, want refusal for the 40s left", ok, retry)
	}
	if st := b.Status(); st.State != breaker.Open || !st.OpenUntil.Equal(c.Now().Add(40*time.Second)) {
		t.Fatalf("status %+v", st)
	}
	if got := tr.String(); got != "[up:closed>open]" {
		t.Fatalf("transitions %s", got)
	}
}

func TestFailureRatioTrip(t *testing.T) {
	c := newClock()
	s := breaker.Settings{FailureRatio: 0.5, MinRequests: 10, Window: 10 * time.Second, OpenFor: time.Minute, Now: c.Now}

	// 9 failures out of 9: below MinRequests, stays closed.
	b := breaker.New("ratio", s)
	for i := 0; i < 9; i++ {
		request(b, false)
	}
	if b.State() != breaker.Closed {
		t.Fatal("tripped below MinRequests")
	}
	// The 10th outcome, a success: 9/10 ≥ 0.5 trips.
	request(b, true)
	if b.State() != breaker.Open {
		t.Fatalf("did not trip at 9/10 failures")
	}

	// Below the ratio: 4 failures in 10 stays closed, 5 in 10 trips.
	b = breaker.New("ratio", s)
	for i := 0; i < 10; i++ {
		request(b, i >= 4)
	}
	if b.State() != breaker.Closed {
		t.Fatal("tripped at 4/10")
	}
	request(b, false) // 5 of 11
	if b.State() != breaker.Closed {
		t.Fatal("tripped at 5/11")
	}
	request(b, false) // 6 of 12
	if b.State() != breaker.Open {
		t.Fatal("did not trip at 6/12")
	}
}

// Outcomes older than the window no longer count.
func TestFailureRatioWindowExpires(t *testing.T) {
	c := newClock()
	b := breaker.New("w", breaker.Settings{FailureRatio: 0.5, MinRequests: 10, Window: 10 * time.Second, Now: c.Now})
	for i := 0; i < 9; i++ {
		request(b, false)
	}
	c.Advance(11 * time.Second) // the 9 failures leave the window
	if st := b.Status(); st.Requests != 0 || st.Failures != 0 {
		t.Fatalf("status after the window: %+v", st)
	}
	for i := 0; i < 9; i++ {
		request(b, true)
	}
	request(b, false) // 1 of 10
	if b.State() != breaker.Closed {
		t.Fatal("tripped on failures outside the window")
	}
	// Half the window later those 10 outcomes still count: failures join
	// them until 9 of 18 reach the ratio.
	c.Advance(5 * time.Second)
	for i := 0; i < 7; i++ {
		request(b, false)
		if b.State() != breaker.Closed {
			t.Fatalf("tripped early at failure %d: %+v", i, b.Status())
		}
	}
	request(b, false)
	if b.State() != breaker.Open {
		t.Fatalf("did not trip at 9/18 within the window: %+v", b.Status())
	}
}

func TestHalfOpenSuccessCloses(t *testing.T) {
	c := newClock()
	var tr transitions
	b := breaker.New("up", breaker.Settings{ConsecutiveFailures: 1, OpenFor: time.Minute, HalfOpenRequests: 2, Now: c.Now, OnStateChange: tr.record})
	request(b, false)
	c.Advance(time.Minute)
	if b.State() != breaker.Open {
		t.Fatal("moved to half-open without an Allow")
	}
	p1, ok1, _ := b.Allow()
	p2, ok2, _ := b.Allow()
	_, ok3, retry := b.Allow()
	if !ok1 || !ok2 || ok3 || retry <= 0 || retry > 5*time.Second {
		t.Fatalf("half-open admitted %v %v %v (retry %s), want two probes and a short refusal", ok1, ok2, ok3, retry)
	}
	if b.State() != breaker.HalfOpen {
		t.Fatalf("state %s", b.State())
	}
	b.Done(p1, true)
	if b.State() != breaker.HalfOpen {
		t.Fatal("closed after one of two probes")
	}
	b.Done(p2, true)
	if b.State() != breaker.Closed {
		t.Fatalf("state %s after both probes succeeded", b.State())
	}
	if got := tr.String(); got != "[up:closed>open up:open>half-open up:half-open>closed]" {
		t.Fatalf("transitions %s", got)
	}
	// Closed again with fresh counts: one failure trips again.
	request(b, false)
	if b.State() != breaker.Open {
		t.Fatal("counts not fresh after closing")
	}
}

func TestHalfOpenFailureReopens(t *testing.T) {
	c := newClock()
	var tr transitions
	b := breaker.New("up", breaker.Settings{ConsecutiveFailures: 1, OpenFor: time.Minute, HalfOpenRequests: 3, Now: c.Now, OnStateChange: tr.record})
	request(b, false)
	c.Advance(time.Minute)
	p1, _, _ := b.Allow()
	p2, _, _ := b.Allow()
	b.Done(p1, true)
	b.Done(p2, false)
	if b.State() != breaker.Open {
		t.Fatalf("state %s after a failed probe", b.State())
	}
	if _, ok, retry := b.Allow(); ok || retry != time.Minute {
		t.Fatalf("re-opened: ok=%v retry=%s, want a full OpenFor", ok, retry)
	}
	if got := tr.String(); got != "[up:closed>open up:open>half-open up:half-open>open]" {
		t.Fatalf("transitions %s", got)
	}
}

// Outcomes of requests admitted before a transition do not count after it.
func TestStaleGenerationIgnored(t *testing.T) {
	c := newClock()
	b := breaker.New("up", breaker.Settings{ConsecutiveFailures: 2, OpenFor: time.Minute, Now: c.Now})
	slow, _, _ := b.Allow() // admitted while closed, answers much later
	request(b, false)
	request(b, false)
	if b.State() != breaker.Open {
		t.Fatal("did not trip")
	}
	c.Advance(time.Minute)
	probe, ok, _ := b.Allow()
	if !ok {
		t.Fatal("no probe")
	}
	b.Done(slow, false) // the old request's failure must not re-open
	if b.State() != breaker.HalfOpen {
		t.Fatalf("stale failure moved the breaker to %s", b.State())
	}
	b.Done(probe, true)
	if b.State() != breaker.Closed {
		t.Fatalf("state %s after the probe succeeded", b.State())
	}
	b.Done(breaker.Ticket{}, false) // the zero Ticket of a refusal never counts
	if st := b.Status(); st.Requests != 0 {
		t.Fatalf("the zero Ticket counted: %+v", st)
	}
	b.Done(probe, false) // a ticket reported twice: its generation is gone
	if b.State() != breaker.Closed {
		t.Fatal("a second Done for the same ticket counted")
	}
}

// A probe whose Done never comes does not keep the breaker half-open forever.
func TestLostProbesAreForgotten(t *testing.T) {
	c := newClock()
	b := breaker.New("up", breaker.Settings{ConsecutiveFailures: 1, OpenFor: time.Minute, Now: c.Now})
	request(b, false)
	c.Advance(time.Minute)
	if _, ok, _ := b.Allow(); !ok { // the lost probe
		t.Fatal("no probe")
	}
	if _, ok, _ := b.Allow(); ok {
		t.Fatal("second probe while the first is outstanding")
	}
	c.Advance(time.Minute)
	probe, ok, _ := b.Allow()
	if !ok {
		t.Fatal("still blocked by a lost probe after OpenFor")
	}
	b.Done(probe, true)
	if b.State() != breaker.Closed {
		t.Fatalf("state %s", b.State())
	}
}

func TestResetAndRegistry(t *testing.T) {
	c := newClock()
	var tr transitions
	r := breaker.NewRegistry(breaker.Settings{ConsecutiveFailures: 1, OpenFor: time.Minute, Now: c.Now, OnStateChange: tr.record})
	if r.Get("b") != r.Get("b") {
		t.Fatal("Get created two breakers for one name")
	}
	request(r.Get("b"), false)
	request(r.Get("a"), false)
	request(r.Get("c"), true)
	snap := r.Snapshot()
	if len(snap) != 3 || snap[0].Name != "a" || snap[1].Name != "b" || snap[2].Name != "c" ||
		snap[0].State != breaker.Open || snap[1].State != breaker.Open || snap[2].State != breaker.Closed || snap[2].Requests != 1 {
		t.Fatalf("snapshot %+v", snap)
	}
	if !r.Reset("b") || r.Get("b").State() != breaker.Closed {
		t.Fatal("Reset(b)")
	}
	if r.Reset("nope") {
		t.Fatal("Reset of an unknown name reported true")
	}
	r.ResetAll()
	for _, st := range r.Snapshot() {
		if st.State != breaker.Closed {
			t.Fatalf("after ResetAll: %+v", st)
		}
	}
	if got := tr.String(); got != "[b:closed>open a:closed>open b:open>closed a:open>closed]" {
		t.Fatalf("transitions %s", got)
	}
	// A request admitted before Reset reports into the void.
	b := r.Get("c")
	old, _, _ := b.Allow()
	b.Reset()
	b.Done(old, false)
	if st := b.Status(); st.Requests != 0 || st.State != breaker.Closed {
		t.Fatalf("outcome from before Reset counted: %+v", st)
	}
}

func TestDefaults(t *testing.T) {
	b := breaker.New("d", breaker.Settings{ConsecutiveFailures: 1})
	request(b, false)
	_, ok, retry := b.Allow()
	if ok || retry <= 59*time.Second || retry > 60*time.Second {
		t.Fatalf("default OpenFor: ok=%v retry=%s", ok, retry)
	}
	// No trip rule: never opens.
	b = breaker.New("off", breaker.Settings{})
	for i := 0; i < 100; i++ {
		request(b, false)
	}
	if b.State() != breaker.Closed || b.Name() != "off" {
		t.Fatal("a breaker without trip rules opened")
	}
}

// Many goroutines race for the half-open probes: exactly HalfOpenRequests
// get one. Run with -race.
func TestConcurrentProbes(t *testing.T) {
	c := newClock()
	b := breaker.New("up", breaker.Settings{ConsecutiveFailures: 1, OpenFor: time.Minute, HalfOpenRequests: 3, Now: c.Now})
	request(b, false)
	c.Advance(time.Minute)
	var mu sync.Mutex
	var tickets []breaker.Ticket
	var wg sync.WaitGroup
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if t, ok, _ := b.Allow(); ok {
				mu.Lock()
				tickets = append(tickets, t)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(tickets) != 3 {
		t.Fatalf("%d probes admitted, want 3", len(tickets))
	}
	for _, tk := range tickets {
		b.Done(tk, true)
	}
	if b.State() != breaker.Closed {
		t.Fatalf("state %s after 3 successful probes", b.State())
	}
}

// Many goroutines hammer one breaker while the clock moves, for the race
// detector; afterwards the breaker still recovers.
func TestConcurrent(t *testing.T) {
	c := newClock()
	b := breaker.New("up", breaker.Settings{ConsecutiveFailures: 5, FailureRatio: 0.5, MinRequests: 20, OpenFor: 100 * time.Millisecond, HalfOpenRequests: 3, Now: c.Now})
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				t, ok, _ := b.Allow()
				if i%50 == 0 {
					c.Advance(10 * time.Millisecond)
				}
				if ok {
					b.Done(t, (i+g)%3 != 0)
				}
				_ = b.Status()
			}
		}(g)
	}
	wg.Wait()
	c.Advance(time.Second)
	for i := 0; i < 4 && b.State() != breaker.Closed; i++ {
		request(b, true)
	}
	if b.State() != breaker.Closed {
		t.Fatalf("did not recover: %+v", b.Status())
	}
}

// A fresh breaker ignores the zero Ticket (what a refused Allow returns).
func TestZeroTicketIgnored(t *testing.T) {
	b := breaker.New("fresh", breaker.Settings{ConsecutiveFailures: 1})
	b.Done(breaker.Ticket{}, false)
	if b.State() != breaker.Closed || b.Status().Requests != 0 {
		t.Fatalf("the zero Ticket counted: %+v", b.Status())
	}
}

// TestReconfigureKeepsStateTakesThresholds: a reloaded policy's thresholds
// apply to existing breakers, whose state and counts survive.
func TestReconfigureKeepsStateTakesThresholds(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	r := breaker.NewRegistry(breaker.Settings{ConsecutiveFailures: 5, OpenFor: time.Minute, Now: clock})
	b := r.Get("up")
	fail := func() {
		tk, ok, _ := b.Allow()
		if !ok {
			t.Fatal("refused while closed")
		}
		b.Done(tk, false)
	}
	fail()
	fail()
	r.Reconfigure(breaker.Settings{ConsecutiveFailures: 3, OpenFor: time.Minute, Now: clock})
	if b.State() != breaker.Closed {
		t.Fatal("reconfigure changed the state")
	}
	fail() // the third in a row: trips under the new threshold, counting the old two
	if b.State() != breaker.Open {
		t.Fatalf("state %v after 3 failures with threshold 3", b.State())
	}
	r.Reconfigure(breaker.Settings{ConsecutiveFailures: 100, OpenFor: time.Hour, Now: clock})
	if b.State() != breaker.Open {
		t.Fatal("reconfigure closed an open breaker")
	}
	now = now.Add(61 * time.Second) // the minute it was opened for has passed
	if _, ok, _ := b.Allow(); !ok || b.State() != breaker.HalfOpen {
		t.Fatalf("open breaker did not half-open at its original time: %v", b.State())
	}
	// A breaker created after Reconfigure has the new settings: 99 failures
	// in a row do not trip it.
	nb := r.Get("new")
	for i := 0; i < 99; i++ {
		tk, _, _ := nb.Allow()
		nb.Done(tk, false)
	}
	if nb.State() != breaker.Closed {
		t.Fatal("a breaker created after Reconfigure has the old settings")
	}
}

// A released ticket counts nothing when closed and frees its half-open slot
// without closing or reopening the breaker.
func TestReleaseCountsNothing(t *testing.T) {
	c := newClock()
	var tr transitions
	b := breaker.New("up", breaker.Settings{ConsecutiveFailures: 2, OpenFor: time.Minute, HalfOpenRequests: 1, Now: c.Now, OnStateChange: tr.record})
	for i := 0; i < 10; i++ {
		tk, ok, _ := b.Allow()
		if !ok {
			t.Fatal("closed breaker refused")
		}
		b.Release(tk)
	}
	if st := b.Status(); st.State != breaker.Closed || st.Requests != 0 || st.ConsecutiveFailures != 0 {
		t.Fatalf("released tickets were counted: %+v", st)
	}
	request(b, false)
	request(b, false)
	c.Advance(time.Minute)
	p, ok, _ := b.Allow()
	if !ok {
		t.Fatal("no half-open probe")
	}
	if _, ok, _ := b.Allow(); ok {
		t.Fatal("second probe admitted with HalfOpenRequests 1")
	}
	b.Release(p)
	if b.State() != breaker.HalfOpen {
		t.Fatalf("release moved the breaker to %s", b.State())
	}
	p, ok, _ = b.Allow()
	if !ok {
		t.Fatal("released slot not given to the next request")
	}
	b.Done(p, true)
	if got := tr.String(); got != "[up:closed>open up:open>half-open up:half-open>closed]" {
		t.Fatalf("transitions %s", got)
	}
}
