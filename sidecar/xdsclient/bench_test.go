package xdsclient_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/contentguard/contentguard/internal/benchcpu"
	"github.com/contentguard/contentguard/internal/grpctest"
	"github.com/contentguard/contentguard/internal/polltest"
	"github.com/contentguard/contentguard/policy/policyfile"
	"github.com/contentguard/contentguard/sidecar"
	"github.com/contentguard/contentguard/sidecar/xdsclient"
	"github.com/contentguard/contentguard/xds"
	"github.com/contentguard/contentguard/xds/policypb"
)

// subscribers is the fleet size of BenchmarkPolicyChange100.
const subscribers = 100

// BenchmarkPolicyChange100: 100 subscribers of one control plane over
// Delta ADS on loopback; each iteration changes the policy and waits until
// every subscriber has it. It reports the time from the control plane's
// refresh to each subscriber receiving the new policy (received-*) and to
// having it in force (applied-*), p50 and p99 over all subscribers and
// iterations, and the heap per subscriber.
//
//   - xds: the subscribers only take the policy (the xDS client, its
//     stream, the control plane's state for the node): the push itself.
//
//   - sidecars: each subscriber is a sidecar.Server that decodes,
//     validates and builds an engine and swaps it in. All 100 share this
//     process's two cores, where in a cluster each has its own: the last
//     one waits for 99 others' engines to be built.
//
//     go test -run '^$' -bench PolicyChange100 -benchtime 50x ./sidecar/xdsclient/
func BenchmarkPolicyChange100(b *testing.B) {
	b.Run("xds", func(b *testing.B) { benchPolicyChange(b, false) })
	b.Run("sidecars", func(b *testing.B) { benchPolicyChange(b, true) })
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
	addr := grpctest.Serve(b, "", cp.Register)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var mu sync.Mutex
	var start time.Time
	var latencies, received []time.Duration
	want := ""   // hash of the policy each sidecar must reach
	applied := 0 // sidecars that have it in force

	before := heap()
	var wg sync.WaitGroup
	for i := 0; i < subscribers; i++ {
		h, err := xdsclient.NewHandoff(addr, b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		var srv *sidecar.Server
		apply := func(p *policypb.Policy) error {
			mu.Lock()
			if p.GetSha256() == want {
				received = append(received, time.Since(start))
			}
			mu.Unlock()
			if sidecars {
				if err := h.Apply(p); err != nil {
					return err
				}
			}
			mu.Lock()
			if p.GetSha256() == want {
				latencies = append(latencies, time.Since(start))
				applied++
			}
			mu.Unlock()
			return nil
		}
		c, err := xdsclient.New(xdsclient.Options{Server: addr, NodeID: fmt.Sprintf("bench-%03d", i), Apply: apply})
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.Run(ctx) }()
		if !sidecars {
			continue
		}
		p, err := h.First(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if srv, err = sidecar.New(ctx, sidecar.Options{Policy: p}); err != nil {
			b.Fatal(err)
		}
		defer srv.Close()
		if err := h.Attach(srv); err != nil {
			b.Fatal(err)
		}
	}
	if !polltest.Until(30*time.Second, func() bool { return len(cp.Nodes()) == subscribers }) {
		b.Fatalf("%d of %d nodes connected", len(cp.Nodes()), subscribers)
	}
	perSubscriber := float64(heap()-before) / subscribers

	b.ResetTimer()
	stopCPU := benchcpu.Report(b)
	for i := 0; i < b.N; i++ {
		paths := []string{"/a", fmt.Sprintf("/v%d", i)}
		doc := policyWith("http://127.0.0.1:8081", paths...)
		writeFile(b, file, doc)
		if _, err := src.Load(); err != nil {
			b.Fatal(err)
		}
		mu.Lock()
		want = src.Entries()[0].Policy.Hash
		applied = 0
		start = time.Now()
		mu.Unlock()
		cp.Refresh()
		if !polltest.Until(30*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return applied == subscribers }) {
			b.Fatalf("iteration %d: %d of %d sidecars applied the change", i, applied, subscribers)
		}
	}
	stopCPU()
	b.StopTimer()
	b.ReportMetric(percentile(latencies, 0.50), "applied-p50-ms")
	b.ReportMetric(percentile(latencies, 0.99), "applied-p99-ms")
	b.ReportMetric(percentile(received, 0.50), "received-p50-ms")
	b.ReportMetric(percentile(received, 0.99), "received-p99-ms")
	b.ReportMetric(perSubscriber, "heap-B/subscriber")
	cancel()
	wg.Wait()
}

// percentile is the q-quantile of ds, in milliseconds.
func percentile(ds []time.Duration, q float64) float64 {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return float64(ds[int(q*float64(len(ds)-1))]) / float64(time.Millisecond)
}

// heap is the live heap after a collection.
func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
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
