package xdsclient_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/contentguard/contentguard/internal/benchcpu"
	"github.com/contentguard/contentguard/policy/policyfile"
	"github.com/contentguard/contentguard/sidecar"
	"github.com/contentguard/contentguard/sidecar/xdsclient"
	"github.com/contentguard/contentguard/xds"
	"github.com/contentguard/contentguard/xds/policypb"
)

// subscribers is the fleet size of BenchmarkPolicyChange100.
const subscribers = 100

// BenchmarkPolicyChange100: 100 subscribers of one control plane over
// Delta ADS on loopback; each iteration changes the policy file and the
// clock runs from the control plane reading it (Source.Load, then Refresh,
// as Server.Watch does) until every subscriber has it in force. Reported:
//
//   - applied-p50-ms, applied-p99-ms: change → in force, per subscriber,
//     over all subscribers and iterations (100 × b.N samples);
//   - all-p50-ms, all-p99-ms: change → the last of the 100 in force, over
//     iterations;
//   - cpu-ns/op: the process's CPU per change: the control plane, the 100
//     clients, their ACKs and the garbage collector;
//   - runq-ns/op: how long the process's threads waited for a core per
//     change (Linux's run-queue time, summed over threads): waiting, not
//     work, and on a shared machine mostly behind other processes;
//   - gc/op: collections per change;
//   - heap-B/subscriber, stack-B/subscriber, goroutines/subscriber: what a
//     connected subscriber holds, both ends (client and control plane).
//
// Each change starts from a quiet system: the next one is made only when
// the control plane has received all 100 ACKs of the last, so no change
// pays for its predecessor's tail.
//
//   - xds: the subscribers only take the policy (the xDS client, its
//     stream, the control plane's state for the node): the push itself.
//
//   - sidecars: each subscriber is a sidecar.Server that decodes,
//     validates and builds an engine and swaps it in. All 100 share this
//     process's two cores, where in a cluster each has its own: the last
//     one waits for 99 others' engines to be built.
//
// CPU profiles carry the label side=control-plane or side=subscriber on
// every goroutine (gRPC's included) and on the control plane's reload and
// refresh, so `go tool pprof -tags` splits the two ends; what is left
// unlabelled is the garbage collector, the scheduler and the benchmark's
// own file writes.
//
//	go test -run '^$' -bench PolicyChange100 -benchtime 200x ./sidecar/xdsclient/
func BenchmarkPolicyChange100(b *testing.B) {
	b.Run("xds", func(b *testing.B) { benchPolicyChange(b, false) })
	b.Run("sidecars", func(b *testing.B) { benchPolicyChange(b, true) })
}

// fleet is what the subscribers of one benchmark share: the change they
// are waiting for and when it was made, and where each puts its latency.
type fleet struct {
	t0      time.Time                 // monotonic origin of the clock below
	want    atomic.Pointer[string]    // hash of the policy of the change under way
	started atomic.Int64              // when it was made, ns since t0
	applied atomic.Int32              // subscribers that have it in force
	done    chan struct{}             // the last one got it
	latency [subscribers]atomic.Int64 // ns from the change to each in force
}

// apply records that subscriber i put policy p in force.
func (f *fleet) apply(i int, p *policypb.Policy) {
	want := f.want.Load()
	if want == nil || p.GetSha256() != *want {
		return // the first policy, or one the client got again
	}
	f.latency[i].Store(int64(time.Since(f.t0)) - f.started.Load())
	if f.applied.Add(1) == subscribers {
		f.done <- struct{}{}
	}
}

// acks counts the requests the control plane receives, to tell when every
// subscriber has acknowledged a change.
type acks struct {
	n      atomic.Int64
	target atomic.Int64
	done   chan struct{}
}

func (a *acks) interceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &countingStream{ServerStream: ss, acks: a})
}

// reach arms done for when n requests in all have come.
func (a *acks) reach(n int64) {
	a.target.Store(n)
	if a.n.Load() >= n {
		a.signal()
	}
}

func (a *acks) signal() {
	select {
	case a.done <- struct{}{}:
	default: // RecvMsg and reach both saw it
	}
}

type countingStream struct {
	grpc.ServerStream
	acks *acks
}

func (s *countingStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if err == nil && s.acks.n.Add(1) == s.acks.target.Load() {
		s.acks.signal()
	}
	return err
}

func benchPolicyChange(b *testing.B, sidecars bool) {
	file := filepath.Join(b.TempDir(), "policy.yaml")
	writeFile(b, file, policyWith("http://127.0.0.1:8081", "/a"))
	src, err := xds.NewSource(file)
	if err != nil {
		b.Fatal(err)
	}
	cp, err := xds.NewServer(xds.ServerOptions{Source: src, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	acked := &acks{done: make(chan struct{}, 1)}
	acked.target.Store(-1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	g := grpc.NewServer(append(xds.GRPCServerOptions(), grpc.StreamInterceptor(acked.interceptor))...)
	cp.Register(g)
	go pprof.Do(context.Background(), pprof.Labels("side", "control-plane"), func(context.Context) { _ = g.Serve(ln) })
	defer g.Stop()
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	f := &fleet{t0: time.Now(), done: make(chan struct{}, 1)}
	before := memory()
	var wg sync.WaitGroup
	for i := 0; i < subscribers; i++ {
		h, err := xdsclient.NewHandoff(addr, b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		apply := func(p *policypb.Policy) error {
			if sidecars {
				if err := h.Apply(p); err != nil {
					return err
				}
			}
			f.apply(i, p)
			return nil
		}
		c, err := xdsclient.New(xdsclient.Options{Server: addr, NodeID: fmt.Sprintf("bench-%03d", i), Apply: apply})
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go pprof.Do(ctx, pprof.Labels("side", "subscriber"), func(ctx context.Context) { defer wg.Done(); _ = c.Run(ctx) })
		if !sidecars {
			continue
		}
		p, err := h.First(ctx)
		if err != nil {
			b.Fatal(err)
		}
		srv, err := sidecar.New(ctx, sidecar.Options{Policy: p})
		if err != nil {
			b.Fatal(err)
		}
		defer srv.Close()
		if err := h.Attach(srv); err != nil {
			b.Fatal(err)
		}
	}
	// Connected: every node has a stream and has acknowledged its first
	// policy (its first request, then the ACK).
	acked.reach(2 * subscribers)
	wait(b, acked.done, "the first ACKs")
	after := memory()

	var all []time.Duration
	each := make([]time.Duration, 0, subscribers*b.N)
	var gcBefore runtime.MemStats
	runtime.ReadMemStats(&gcBefore)
	b.ResetTimer()
	stopCPU := benchcpu.Report(b)
	waitedBefore := runQueueWait()
	for i := 0; i < b.N; i++ {
		doc := policyWith("http://127.0.0.1:8081", "/a", fmt.Sprintf("/v%d", i))
		sum := sha256.Sum256([]byte(doc))
		want := hex.EncodeToString(sum[:])
		writeFile(b, file, doc)
		f.applied.Store(0)
		f.want.Store(&want)
		acked.reach(acked.n.Load() + subscribers)
		f.started.Store(int64(time.Since(f.t0)))
		var changed bool
		pprof.Do(ctx, pprof.Labels("side", "control-plane"), func(context.Context) {
			if changed, err = src.Load(); err == nil && changed {
				cp.Refresh()
			}
		})
		if err != nil || !changed {
			b.Fatalf("the control plane did not see the change: %v", err)
		}
		wait(b, f.done, fmt.Sprintf("iteration %d: all subscribers to apply the change", i))
		last := time.Duration(0)
		for j := range f.latency {
			d := time.Duration(f.latency[j].Load())
			each = append(each, d)
			last = max(last, d)
		}
		all = append(all, last)
		wait(b, acked.done, fmt.Sprintf("iteration %d: all subscribers to ACK the change", i))
	}
	stopCPU()
	b.ReportMetric(float64(runQueueWait()-waitedBefore)/float64(b.N), "runq-ns/op")
	b.StopTimer()
	var gcAfter runtime.MemStats
	runtime.ReadMemStats(&gcAfter)
	b.ReportMetric(percentile(each, 0.50), "applied-p50-ms")
	b.ReportMetric(percentile(each, 0.99), "applied-p99-ms")
	b.ReportMetric(percentile(all, 0.50), "all-p50-ms")
	b.ReportMetric(percentile(all, 0.99), "all-p99-ms")
	b.ReportMetric(float64(gcAfter.NumGC-gcBefore.NumGC)/float64(b.N), "gc/op")
	b.ReportMetric(float64(after.heap-before.heap)/subscribers, "heap-B/subscriber")
	b.ReportMetric(float64(after.stack-before.stack)/subscribers, "stack-B/subscriber")
	b.ReportMetric(float64(after.goroutines-before.goroutines)/subscribers, "goroutines/subscriber")
	cancel()
	wg.Wait()
}

// wait bounds a wait against hangs; it is no timing assertion.
func wait(b *testing.B, done <-chan struct{}, what string) {
	b.Helper()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		b.Fatalf("not within 30 s: %s", what)
	}
}

// percentile is the q-quantile of ds, in milliseconds.
func percentile(ds []time.Duration, q float64) float64 {
	slices.Sort(ds)
	return float64(ds[int(q*float64(len(ds)-1))]) / float64(time.Millisecond)
}

// runQueueWait is how long this process's threads have waited for a
// core, as Linux counts it (/proc/self/task/*/schedstat, second field);
// 0 where there is no such file.
func runQueueWait() time.Duration {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0
	}
	var total int64
	for _, t := range tasks {
		data, err := os.ReadFile("/proc/self/task/" + t.Name() + "/schedstat")
		if err != nil {
			continue
		}
		if f := strings.Fields(string(data)); len(f) == 3 {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			total += n
		}
	}
	return time.Duration(total)
}

type mem struct{ heap, stack, goroutines int64 }

// memory is the live heap after a collection, the goroutine stacks and
// the goroutines.
func memory() mem {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return mem{heap: int64(m.HeapAlloc), stack: int64(m.StackInuse), goroutines: int64(runtime.NumGoroutine())}
}

// BenchmarkApply: one sidecar puts a policy from the control plane in
// force (decode, validate, build the engine, swap), the part of a change
// each sidecar does on its own core.
//
//	go test -run '^$' -bench 'Apply$' -benchmem ./sidecar/xdsclient/
func BenchmarkApply(b *testing.B) {
	docs := [2][]byte{[]byte(policyWith("http://127.0.0.1:8081", "/a")), []byte(policyWith("http://127.0.0.1:8081", "/a", "/b"))}
	p, err := policyfile.Parse("bench", docs[0])
	if err != nil {
		b.Fatal(err)
	}
	srv, err := sidecar.New(context.Background(), sidecar.Options{Policy: p})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := srv.Apply("xds://bench/policy", ".", docs[(i+1)%2]); err != nil {
			b.Fatal(err)
		}
	}
}
