package breaker_test

import (
	"testing"

	"github.com/contentguard/contentguard/internal/yaegitest"
)

// TestUnderYaegi runs the package in the Yaegi interpreter, as the Traefik
// plugin does: a breaker trips, refuses, probes, closes, and the registry
// resets and lists it.
func TestUnderYaegi(t *testing.T) {
	i := yaegitest.New(t, yaegitest.Package("github.com/contentguard/contentguard/edge/breaker", "."))
	yaegitest.Eval(t, i, `
import (
	"fmt"
	"time"

	"github.com/contentguard/contentguard/edge/breaker"
)

func run() string {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	out := ""
	r := breaker.NewRegistry(breaker.Settings{
		ConsecutiveFailures: 2,
		OpenFor:             time.Minute,
		Now:                 func() time.Time { return now },
		OnStateChange:       func(name string, from, to breaker.State) { out += name + ":" + from.String() + ">" + to.String() + " " },
	})
	b := r.Get("backend")
	for i := 0; i < 2; i++ {
		t, ok, _ := b.Allow()
		if ok {
			b.Done(t, false)
		}
	}
	_, ok, retry := b.Allow()
	out += fmt.Sprintf("%v/%s ", ok, retry)
	now = now.Add(time.Minute)
	t, ok, _ := b.Allow()
	b.Done(t, true)
	out += fmt.Sprintf("%v/%s ", ok, b.State().String()) // fmt does not see interpreted String methods
	r.Get("aaa")
	t, _, _ = r.Get("aaa").Allow()
	r.Get("aaa").Done(t, false)
	t, _, _ = r.Get("aaa").Allow()
	r.Get("aaa").Done(t, false)
	for _, st := range r.Snapshot() {
		out += st.Name + "=" + st.State.String() + " "
	}
	r.ResetAll()
	out += fmt.Sprint(int(r.Get("aaa").State()))
	return out
}
`)
	v := yaegitest.Eval(t, i, "run()")
	want := "backend:closed>open false/1m0s backend:open>half-open backend:half-open>closed true/closed " +
		"aaa:closed>open aaa=open backend=closed aaa:open>closed 0"
	if got := v.String(); got != want {
		t.Fatalf("under Yaegi:\n got %s\nwant %s", got, want)
	}
}

// BenchmarkUnderYaegi measures an interpreted Allow+Done on a closed breaker,
// the Traefik plugin's cost per proxied request.
func BenchmarkUnderYaegi(b *testing.B) {
	i := yaegitest.New(b, yaegitest.Package("github.com/contentguard/contentguard/edge/breaker", "."))
	yaegitest.Eval(b, i, `
import "github.com/contentguard/contentguard/edge/breaker"

var br = breaker.New("up", breaker.Settings{ConsecutiveFailures: 5, FailureRatio: 0.5, MinRequests: 20})

func loop(n int) {
	for i := 0; i < n; i++ {
		t, ok, _ := br.Allow()
		if ok {
			br.Done(t, true)
		}
	}
}
`)
	v := yaegitest.Eval(b, i, "loop")
	loop := v.Interface().(func(int))
	b.ReportAllocs()
	b.ResetTimer()
	loop(b.N)
}
