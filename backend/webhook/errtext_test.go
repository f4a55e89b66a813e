package webhook

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// resolverAt answers like a real resolver would for a name it cannot
// resolve: a *net.DNSError naming the resolver's own address.
type resolverAt struct{ server string }

func (r resolverAt) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	return nil, &net.DNSError{Err: "no such host", Name: host, Server: r.server, IsNotFound: true}
}

// TestRegistrationErrorsNameNoInternalAddress: a webhook host that does not
// resolve, or resolves to a private address, is refused with a reason — not
// with the resolver's address or the private address it resolved to.
func TestRegistrationErrorsNameNoInternalAddress(t *testing.T) {
	for _, c := range []struct {
		name     string
		resolver Resolver
		hidden   string
		reason   string
	}{
		{"unresolvable", resolverAt{server: "10.96.0.10:53"}, "10.96.0.10", "does not resolve"},
		{"private answer", &staticResolver{fallback: addrs("10.20.30.40")}, "10.20.30.40", "private, loopback or reserved"},
	} {
		reg := NewRegistry(RegistryOptions{Guard: Guard{Resolver: c.resolver}})
		code, _, out := call(t, NewHandler(reg, nil, testResponder{}), "POST", "/api/v1/webhooks/register",
			`{"url":"https://hooks.example.com/cg","events":["batch_completed"]}`)
		detail := fmt.Sprint(out["detail"])
		if code != 422 || !strings.Contains(detail, c.reason) || !strings.Contains(detail, "hooks.example.com") {
			t.Errorf("%s: %d %q, want 422 saying %q about the host", c.name, code, detail, c.reason)
		}
		if strings.Contains(fmt.Sprint(out), c.hidden) {
			t.Errorf("%s: the answer shows %s: %v", c.name, c.hidden, out)
		}
	}
}

// TestDeliveryErrorNamesNoAddress: a failed delivery's last_error (served
// by GET /webhooks/stats) says what failed, not which address refused.
func TestDeliveryErrorNamesNoAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	// Accept and reset every connection: a network failure on a port that
	// stays ours for the whole test.
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// Read the whole head first: the client then waits for an
			// answer and meets the reset (not a write error, not an EOF).
			br := bufio.NewReader(c)
			for {
				line, err := br.ReadString('\n')
				if err != nil || line == "\r\n" {
					break
				}
			}
			_ = c.(*net.TCPConn).SetLinger(0)
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close() })
	h := newHarness(t, DelivererOptions{MaxAttempts: 1})
	ep, _, err := h.reg.Register(context.Background(), "http://"+addr+"/hook", []string{EventBatchFailed}, "")
	if err != nil {
		t.Fatal(err)
	}
	id, err := h.d.Send(context.Background(), Target{URL: ep.URL, Secret: "0123456789abcdef", EndpointID: ep.ID}, EventBatchFailed, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec := h.settled(t, id, 1); rec.LastError != "connection reset" {
		t.Errorf("the delivery's last_error %q, want %q", rec.LastError, "connection reset")
	}
	reg, d := h.reg, h.d
	_, _, out := call(t, NewHandler(reg, d, testResponder{}), "GET", "/api/v1/webhooks/stats", "")
	var lastError string
	if data, ok := out["data"].(map[string]any); ok {
		if eps, ok := data["endpoints"].([]any); ok && len(eps) == 1 {
			lastError = fmt.Sprint(eps[0].(map[string]any)["last_error"])
		}
	}
	if lastError != "connection reset" {
		t.Errorf("last_error %q, want %q: %v", lastError, "connection reset", out)
	}
}

// TestDescribe: a refused address is named as such; the rest is
// neterr.Describe's (tested there).
func TestDescribe(t *testing.T) {
	forbidden := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 80}, Err: fmt.Errorf("x: %w", ErrForbiddenAddress)}
	if got := Describe(forbidden); got != "the address is not allowed (private, loopback or reserved)" {
		t.Errorf("Describe(%v) = %q", forbidden, got)
	}
	if got := Describe(&net.DNSError{Err: "no such host", Name: "x.test", Server: "10.0.0.2:53", IsNotFound: true}); got != "the host name does not resolve" {
		t.Errorf("a lookup failure: %q", got)
	}
}
