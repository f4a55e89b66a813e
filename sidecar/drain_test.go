package sidecar_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contentguard/contentguard/sidecar"
)

// TestDrainLosesNoRequest: clients keep sending POSTs (which no HTTP client
// retries by itself) over kept-alive connections to replica A while A is
// told to stop (Serve's context ends: what SIGTERM does) and a load
// balancer sends new connections to replica B from then on. During A's drain
// delay its answers say Connection: close, so each client leaves A after
// the answer it was waiting for, and a connection idle for a while is
// closed early, while A still serves: no request is lost. Both paths.
func TestDrainLosesNoRequest(t *testing.T) {
	for _, path := range []struct {
		name    string
		disable bool
	}{{"fast", false}, {"net/http", true}} {
		t.Run(path.name, func(t *testing.T) {
			const delay = 3 * time.Second
			up := startUpstream(t)
			a := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, policyMarked("A")), Upstream: up.URL,
				DrainDelay: delay, DisableFastPath: path.disable})
			b := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, policyMarked("B")), Upstream: up.URL,
				DisableFastPath: path.disable})

			// The load balancer: new connections go to A until A is told to
			// stop, then to B (an endpoint removed from a Service).
			var aOut atomic.Bool
			dialer := &net.Dialer{Timeout: 5 * time.Second}
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
				MaxIdleConnsPerHost: 16,
				DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
					target := a.addr
					if aOut.Load() {
						target = b.addr
					}
					return dialer.DialContext(ctx, network, target)
				},
			}}
			defer client.CloseIdleConnections()

			// A client that went quiet on a kept-alive connection to A.
			idleClosed := make(chan struct{})
			idle, err := net.Dial("tcp", a.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer idle.Close()
			br := bufio.NewReader(idle)
			if resp := keepAliveExchange(t, idle, br, "/quiet"); resp.StatusCode != 200 || resp.Close {
				t.Fatalf("the quiet client's request: %d, Connection: close %v", resp.StatusCode, resp.Close)
			}
			go func() {
				_, _ = br.ReadByte() // returns when A closes the connection
				close(idleClosed)
			}()

			var fromA, fromB, lastOfA atomic.Int64
			load := startLoad(8, func(i int) error {
				body := fmt.Sprintf("request %d", i)
				req, _ := http.NewRequest("POST", "http://edge.test/work", io.NopCloser(strings.NewReader(body)))
				req.ContentLength = int64(len(body)) // no GetBody: never retried
				resp, err := client.Do(req)
				if err != nil {
					return err
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode != 200:
					return fmt.Errorf("status %d", resp.StatusCode)
				case resp.Header.Get("X-Policy-A") != "":
					fromA.Add(1)
					if resp.Close {
						lastOfA.Add(1)
					}
				default:
					fromB.Add(1)
				}
				return nil
			})
			waitFor(t, 10*time.Second, func() bool { return fromA.Load() >= 200 })
			aOut.Store(true)
			a.cancel() // SIGTERM
			select {
			case <-idleClosed:
			case err := <-a.done:
				a.done = nil
				t.Fatalf("A stopped (%v) before it closed the quiet connection", err)
			case <-time.After(10 * time.Second):
				t.Fatal("the quiet connection was not closed during the drain delay")
			}
			// Closed early: A still takes a new connection (a client the load
			// balancer had not told yet) and answers it, with Connection: close.
			if late := keepAliveGet(t, a.addr, "/late"); late.StatusCode != 200 || !late.Close {
				t.Fatalf("a new kept-alive connection to A during its drain delay: %d, Connection: close %v", late.StatusCode, late.Close)
			}
			a.serveReturns(t, 15*time.Second, "A did not stop after its drain delay")
			atB := fromB.Load()
			waitFor(t, 10*time.Second, func() bool { return fromB.Load() >= atB+200 })
			if failures := load.halt(); len(failures) > 0 {
				t.Fatalf("%d requests lost through the drain, e.g. %q", len(failures), failures[:min(5, len(failures))])
			}
			if lastOfA.Load() == 0 {
				t.Fatal("no answer of A during the drain said Connection: close")
			}
			t.Logf("%d requests answered by A (%d of them with Connection: close), %d by B, none lost", fromA.Load(), lastOfA.Load(), fromB.Load())
		})
	}
}

// keepAliveGet sends one GET on a new connection that asks to be kept alive,
// and returns the answer (its body read).
func keepAliveGet(t testing.TB, addr, target string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return keepAliveExchange(t, c, bufio.NewReader(c), target)
}

// keepAliveExchange sends a GET on c, without Connection: close, and reads
// the answer through br.
func keepAliveExchange(t testing.TB, c net.Conn, br *bufio.Reader, target string) *http.Response {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: edge.test\r\n\r\n", target)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// load is requests sent in a loop from several goroutines until halted.
type load struct {
	stop     atomic.Bool
	wg       sync.WaitGroup
	mu       sync.Mutex
	failures []string
}

// startLoad runs workers goroutines, each calling send(i) for i = 0, 1, …
// and keeping the errors, until halt.
func startLoad(workers int, send func(i int) error) *load {
	l := &load{}
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; !l.stop.Load(); i++ {
				if err := send(i); err != nil {
					l.mu.Lock()
					l.failures = append(l.failures, err.Error())
					l.mu.Unlock()
				}
			}
		}()
	}
	return l
}

// halt stops the load, waits for the last requests and returns the errors.
func (l *load) halt() []string {
	l.stop.Store(true)
	l.wg.Wait()
	return l.failures
}
