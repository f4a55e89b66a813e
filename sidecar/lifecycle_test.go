package sidecar_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contentguard/contentguard/internal/syncbuf"
	"github.com/contentguard/contentguard/sidecar"
)

// policyMarked is a policy whose answers name it: every response (and the
// forwarded request) carries the request ID under X-Policy-<mark> as well.
func policyMarked(mark string) string {
	return fmt.Sprintf(`
apiVersion: contentguard.dev/v1
kind: EdgePolicy
metadata: {name: policy-%[1]s, version: "%[1]s"}
spec:
  upstream: {url: http://127.0.0.1:9, timeout: 5s}
  requestID: {header: X-Request-ID, alsoHeaders: [X-Policy-%[1]s]}
  routes:
    - name: route-%[1]s
      match: {pathPrefix: /}
      auth: none
`, mark)
}

var invalidPolicies = []string{
	"apiVersion: contentguard.dev/v1\nkind: EdgePolicy\nmetadata: {name: x}\nspec:\n  routes:\n    - name: r\n      match: {pathPrefix: /}\n      auth: none\n      bogus: 1\n",
	"apiVersion: contentguard.dev/v1\nkind: EdgePolicy\nspec: [not, a, map\n",
	"",
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	// Write beside and rename: the file is never seen half-written.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestReloadUnderLoad swaps between two valid policies (and refuses invalid
// ones) while clients keep sending: no request fails, and every response —
// and the request the upstream saw — was judged by exactly one policy.
func TestReloadUnderLoad(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "policy.yaml")
	writeFile(t, file, policyMarked("A"))
	up := startUpstream(t)
	sc := startSidecar(t, sidecar.Options{Policy: loadPolicy(t, file), PolicyFile: file, Upstream: up.URL, WatchInterval: time.Hour})

	var stop atomic.Bool
	var sent, failures atomic.Int64
	var mu sync.Mutex
	var problems []string
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer client.CloseIdleConnections()
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				resp, err := client.Get("http://" + sc.addr + "/work")
				sent.Add(1)
				if err != nil {
					failures.Add(1)
					mu.Lock()
					problems = append(problems, err.Error())
					mu.Unlock()
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				a, b := resp.Header.Get("X-Policy-A"), resp.Header.Get("X-Policy-B")
				id := resp.Header.Get("X-Request-ID")
				if resp.StatusCode != 200 || (a == "") == (b == "") || a+b != id {
					failures.Add(1)
					mu.Lock()
					problems = append(problems, fmt.Sprintf("status %d A=%q B=%q id=%q", resp.StatusCode, a, b, id))
					mu.Unlock()
				}
			}
		}()
	}
	valid, invalid := 0, 0
	for i := 0; i < 40; i++ {
		var err error
		switch i % 4 {
		case 0:
			writeFile(t, file, policyMarked("B"))
			err = sc.srv.Reload()
			valid++
		case 2:
			writeFile(t, file, policyMarked("A"))
			err = sc.srv.Reload()
			valid++
		default:
			writeFile(t, file, invalidPolicies[i%len(invalidPolicies)])
			if sc.srv.Reload() == nil {
				t.Fatal("an invalid policy was accepted")
			}
			invalid++
		}
		if err != nil {
			t.Fatalf("valid reload %d: %v", i, err)
		}
		// Requests run between every two reloads, however slow the
		// machine: at least three more before the next swap.
		next := sent.Load() + 3
		waitFor(t, 20*time.Second, func() bool { return sent.Load() >= next })
	}
	stop.Store(true)
	wg.Wait()
	if failures.Load() > 0 {
		t.Fatalf("%d of %d requests failed or mixed policies, e.g. %v", failures.Load(), sent.Load(), problems[:min(5, len(problems))])
	}
	if sent.Load() < 100 {
		t.Fatalf("only %d requests ran during the reloads", sent.Load())
	}
	for _, g := range up.take() {
		a, b := g.Header.Get("X-Policy-A"), g.Header.Get("X-Policy-B")
		if (a == "") == (b == "") {
			t.Fatalf("the upstream saw a request judged by both or neither policy: %v", g.Header)
		}
	}
	if got := counterValue(t, sc, sidecar.MetricPolicyReloads); got != float64(valid) {
		t.Fatalf("policy_reloads_total = %v, want %d", got, valid)
	}
	if got := counterValue(t, sc, sidecar.MetricPolicyReloadError); got != float64(invalid) {
		t.Fatalf("policy_reload_errors_total = %v, want %d", got, invalid)
	}
	if name := sc.srv.Policy().Metadata.Name; name != "policy-A" {
		t.Fatalf("after the last valid reload (A) and invalid ones, policy %q is in force", name)
	}
	t.Logf("%d requests during %d reloads and %d refused reloads", sent.Load(), valid, invalid)
}

// counterValue reads a sidecar counter (without labels) by name.
func counterValue(t testing.TB, sc *running, name string) float64 {
	t.Helper()
	mfs, err := sc.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestWatchReloadsOnChange: the poller picks up a changed file, logs and
// counts an invalid one once while keeping the policy, and recovers.
func TestWatchReloadsOnChange(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "policy.yaml")
	writeFile(t, file, policyMarked("A"))
	up := startUpstream(t)
	var logs syncbuf.Buffer
	sc := startSidecar(t, sidecar.Options{Policy: loadPolicy(t, file), PolicyFile: file, Upstream: up.URL,
		WatchInterval: 10 * time.Millisecond, Logger: newJSONLogger(&logs)})

	writeFile(t, file, policyMarked("B"))
	waitFor(t, 10*time.Second, func() bool { return sc.srv.Policy().Metadata.Name == "policy-B" })
	if r := get(t, sc.addr, "/x", "", nil); r.Header.Get("X-Policy-B") == "" {
		t.Fatalf("after reload: %v", r.Header)
	}
	writeFile(t, file, invalidPolicies[0])
	waitFor(t, 10*time.Second, func() bool { return counterValue(t, sc, sidecar.MetricPolicyReloadError) == 1 })
	time.Sleep(100 * time.Millisecond) // ten more polls: the same broken file is not retried
	if n := counterValue(t, sc, sidecar.MetricPolicyReloadError); n != 1 {
		t.Fatalf("policy_reload_errors_total = %v, want 1", n)
	}
	if sc.srv.Policy().Metadata.Name != "policy-B" {
		t.Fatal("an invalid file replaced the policy")
	}
	if !strings.Contains(logs.String(), "policy.yaml:9:7: spec.routes[0].bogus") {
		t.Fatalf("the positioned error is not logged:\n%s", logs.String())
	}
	var info struct {
		Name, Hash, Source string
		LoadedAt           string `json:"loaded_at"`
	}
	adminJSON(t, sc, "GET", "/admin/policy", &info)
	if info.Name != "policy-B" || info.Hash != sc.srv.Policy().Hash || info.Source != file || info.LoadedAt == "" {
		t.Fatalf("/admin/policy = %+v", info)
	}
	// A policy from a file has no xDS subscription to report.
	if resp := adminDo(t, sc, "GET", "/admin/xds"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/admin/xds without --xds: %d, want 404", resp.StatusCode)
	}
	writeFile(t, file, policyMarked("A"))
	waitFor(t, 10*time.Second, func() bool { return sc.srv.Policy().Metadata.Name == "policy-A" })
}

// TestGracefulShutdown: cancelling Serve turns /readyz to 503 and lets every
// in-flight request finish before Serve returns; new connections are refused.
func TestGracefulShutdown(t *testing.T) {
	up := startUpstream(t)
	up.script(200, 400*time.Millisecond, false)
	sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, basicPolicyLongTimeout), Upstream: up.URL, DrainDelay: 200 * time.Millisecond})
	if resp := adminDo(t, sc, "GET", "/readyz"); resp.StatusCode != 200 {
		t.Fatalf("readyz before shutdown: %d", resp.StatusCode)
	}
	const n = 8
	results := make(chan int, n)
	for i := 0; i < n; i++ {
		go func() {
			r, err := trySend(sc.addr, rawRequest{Method: "GET", Target: fmt.Sprintf("/slow/%d", i)}, 10*time.Second)
			if err != nil {
				results <- -1
				return
			}
			results <- r.Status
		}()
	}
	waitFor(t, 5*time.Second, func() bool { return up.count() == n })
	sc.cancel()
	waitFor(t, 5*time.Second, func() bool {
		resp, err := http.Get("http://" + sc.admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	for i := 0; i < n; i++ {
		if s := <-results; s != 200 {
			t.Fatalf("in-flight request ended with %d", s)
		}
	}
	if err := <-sc.done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	sc.done = nil
	if _, err := trySend(sc.addr, rawRequest{Target: "/late"}, time.Second); err == nil {
		t.Fatal("a request was accepted after shutdown")
	}
}

const basicPolicyLongTimeout = `
apiVersion: contentguard.dev/v1
kind: EdgePolicy
metadata: {name: drain}
spec:
  upstream: {url: http://127.0.0.1:9, timeout: 5s}
  routes:
    - name: open
      match: {pathPrefix: /}
      auth: none
`

// TestReloadAppliesBreakerThresholds: the breakers keep their state across a
// reload and take the new policy's thresholds.
func TestReloadAppliesBreakerThresholds(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "policy.yaml")
	doc := func(failures int) string {
		return fmt.Sprintf(`
apiVersion: contentguard.dev/v1
kind: EdgePolicy
metadata: {name: breaker-%d}
spec:
  upstream: {url: http://127.0.0.1:9, timeout: 2s}
  circuitBreaker: {consecutiveFailures: %d, openFor: 1m, failOn: [502, 503, 504, timeout, connection]}
  routes:
    - name: all
      match: {pathPrefix: /}
      auth: none
`, failures, failures)
	}
	writeFile(t, file, doc(100))
	up := startUpstream(t)
	up.script(http.StatusBadGateway, 0, false)
	sc := startSidecar(t, sidecar.Options{Policy: loadPolicy(t, file), PolicyFile: file, Upstream: up.URL, WatchInterval: time.Hour})
	for i := 0; i < 2; i++ {
		if r := get(t, sc.addr, "/x", "", nil); r.Status != http.StatusBadGateway {
			t.Fatalf("request %d: %d", i, r.Status)
		}
	}
	writeFile(t, file, doc(3))
	if err := sc.srv.Reload(); err != nil {
		t.Fatal(err)
	}
	// The two failures before the reload count: the third trips it.
	if r := get(t, sc.addr, "/x", "", nil); r.Status != http.StatusBadGateway {
		t.Fatalf("third: %d", r.Status)
	}
	if r := get(t, sc.addr, "/x", "", nil); r.Status != http.StatusServiceUnavailable || problemReason(t, r) != "circuit_open" {
		t.Fatalf("after three failures under a threshold of three: %d %s", r.Status, r.Body)
	}
}
